"""Click-through: type a context, pick a GPU, switch the KV dtype — chart and verdict follow the core."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt

from kvdesk.core.breakdown import Breakdown
from kvdesk.core.calculator import calculate
from kvdesk.core.catalog import find_gpu

GIB = 1 << 30


def expected_heights(bd: Breakdown) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {k: [] for k in ("weights", "kv", "overhead", "free", "spill")}
    for d in bd.per_device:
        used = d.weights_bytes + d.kv_cache_bytes + d.recurrent_state_bytes + d.overhead_bytes
        out["weights"].append(d.weights_bytes / GIB)
        out["kv"].append((d.kv_cache_bytes + d.recurrent_state_bytes) / GIB)
        out["overhead"].append(d.overhead_bytes / GIB)
        out["free"].append(max(d.budget_bytes - used, 0) / GIB)
        out["spill"].append(max(used - d.budget_bytes, 0) / GIB)
    return out


def assert_chart_matches_core(window: Any) -> Breakdown:
    bd = calculate(window.model.plan)  # recomputed independently of the window
    drawn = window.chart.segment_heights_gib()
    for key, values in expected_heights(bd).items():
        assert drawn[key] == pytest.approx(values, rel=1e-12, abs=1e-12), key
    assert window.chart.budget_gib() == pytest.approx([d.budget_bytes / GIB for d in bd.per_device])
    return bd


def type_context(qtbot: Any, window: Any, text: str) -> None:
    box = window.form.context
    box.setFocus()
    box.selectAll()
    qtbot.keyClicks(box, text)
    qtbot.keyClick(box, Qt.Key.Key_Return)


def test_typed_context_drives_chart_and_verdict(qtbot: Any, window: Any) -> None:
    type_context(qtbot, window, "32k")
    assert window.model.plan.workload.context == 32768
    bd = assert_chart_matches_core(window)
    assert bd.fits
    assert window.banner.headline.text() == f"Fits — {bd.headroom_bytes / GIB:.1f} GiB headroom"
    assert window.banner.limits.text() == (
        f"Max context at 1 sequence: {bd.max_context:,} tokens   ·   "
        f"Max concurrency at 32,768 tokens: {bd.max_batch:,} sequence{'s' if bd.max_batch != 1 else ''}"
    )


def test_fits_turns_into_spills_at_the_core_threshold(qtbot: Any, window: Any) -> None:
    limit = window.model.breakdown.max_context
    assert 8192 < limit < window.model.plan.model.native_context  # the budget, not the model, is the limit
    type_context(qtbot, window, str(limit))
    bd = assert_chart_matches_core(window)
    assert bd.fits and window.banner.state in ("fits", "tight")
    assert window.chart.segment_heights_gib()["spill"] == [0.0]
    # one token per sequence less than a token of KV is left: that is "tight"
    assert 0 <= bd.headroom_bytes < bd.kv_bytes_per_token
    assert window.banner.headline.text() == f"Tight — under 5 % headroom ({bd.headroom_bytes / GIB:.1f} GiB)"

    type_context(qtbot, window, str(limit + 1))
    bd = assert_chart_matches_core(window)
    assert not bd.fits
    spill = window.chart.segment_heights_gib()["spill"][0]
    assert spill * GIB == pytest.approx(bd.spill_bytes) and spill > 0
    assert window.banner.state == "spills"
    assert window.banner.headline.text().startswith(f"Spills {bd.spill_bytes / GIB:.1f} GiB to system RAM — decode ~")


@pytest.mark.qt_log_ignore("This plugin does not support")  # offscreen: no raise()/keyboard grab for popups
def test_pick_gpu_by_typing_to_search(qtbot: Any, window: Any) -> None:
    picker = window.form.gpu_picker
    entry = find_gpu("h100-sxm-80gb")
    line = picker.lineEdit()
    line.selectAll()
    qtbot.keyClicks(line, "h100 sxm")  # case-insensitive, matches inside the label
    completer = picker.completer()
    assert completer.completionCount() == 1
    popup = completer.popup()
    popup.setCurrentIndex(completer.completionModel().index(0, 0))
    qtbot.keyClick(popup, Qt.Key.Key_Return)
    assert window.model.plan.gpu_preset_id == entry.id
    assert window.model.plan.gpu == entry.to_spec()
    bd = assert_chart_matches_core(window)
    assert window.chart.budget_gib() == pytest.approx([entry.usable_bytes / GIB])
    assert window.banner.headline.text() == f"Fits — {bd.headroom_bytes / GIB:.1f} GiB headroom"
    assert line.text().startswith("NVIDIA H100")


def test_pick_gpu_from_the_vendor_grouped_list(qtbot: Any, window: Any) -> None:
    picker = window.form.gpu_picker
    texts = [picker.itemText(i) for i in range(picker.count())]
    assert texts[0] == "NVIDIA" and "AMD" in texts and "Apple" in texts  # group headers
    header = texts.index("AMD")
    assert not picker.model().item(header).isEnabled()
    index = picker.findData("mi300x", 257)
    picker.setCurrentIndex(index)
    picker.activated.emit(index)
    assert window.model.plan.gpu_preset_id == "mi300x"
    assert_chart_matches_core(window)


def test_gpu_count_splits_bars_per_device(qtbot: Any, window: Any) -> None:
    window.form.gpu_count.setValue(4)
    assert window.model.plan.gpu_count == 4
    bd = assert_chart_matches_core(window)
    assert len(bd.per_device) == 4


def test_switch_kv_dtype_quantizes_the_cache(qtbot: Any, window: Any) -> None:
    before = window.chart.segment_heights_gib()["kv"][0]
    combo = window.form.kv_dtype
    combo.setCurrentIndex(combo.findData("q8_0"))
    combo.activated.emit(combo.currentIndex())  # what a click on the item emits
    w = window.model.plan.workload
    assert (w.kv_dtype_k, w.kv_dtype_v) == ("q8_0", "q8_0")
    assert_chart_matches_core(window)
    # ggml q8_0: 34 bytes per 32 values, vs 2 bytes per value for the model's bf16
    assert window.chart.segment_heights_gib()["kv"][0] == pytest.approx(before * 34 / 64)


def test_separate_k_and_v_types_under_advanced(qtbot: Any, window: Any) -> None:
    qtbot.mouseClick(window.form.advanced_toggle, Qt.MouseButton.LeftButton)
    assert window.form.advanced_box.isVisible()
    window.form.kv_v.setCurrentIndex(window.form.kv_v.findData("q4_0"))
    window.form.kv_v.activated.emit(window.form.kv_v.currentIndex())
    w = window.model.plan.workload
    assert (w.kv_dtype_k, w.kv_dtype_v) == ("auto", "q4_0")
    bd = assert_chart_matches_core(window)
    assert bd.v_cache_bytes * 64 == bd.k_cache_bytes * 18  # q4_0 18 B / 32 values vs bf16 2 B / value
    assert window.form.kv_dtype.currentIndex() == -1  # the single KV box shows "K … / V …"


def test_kv_heads_override_is_marked_and_resettable(qtbot: Any, window: Any) -> None:
    default = window.model.plan.model.default_kv_heads
    window.form.kv_heads.setValue(default * 2)
    assert window.model.plan.workload.kv_heads_override == default * 2
    assert "override" in window.form.kv_heads_mark.text()
    assert window.form.kv_heads.font().bold() and window.form.kv_heads_reset.isEnabled()
    assert_chart_matches_core(window)
    qtbot.mouseClick(window.form.kv_heads_reset, Qt.MouseButton.LeftButton)
    assert window.model.plan.workload.kv_heads_override is None
    assert window.form.kv_heads.value() == default
    assert window.form.kv_heads_mark.text() == "" and not window.form.kv_heads_reset.isEnabled()


def test_context_box_steps_through_powers_of_two(qtbot: Any, window: Any) -> None:
    box = window.form.context
    box.setValue(5000)
    box.stepBy(1)
    assert window.model.plan.workload.context == 8192
    box.stepBy(2)
    assert window.model.plan.workload.context == 32768
    box.stepBy(-1)
    assert window.model.plan.workload.context == 16384
    assert window.form.native.text() == "native 128k"


def test_unavailable_engine_shows_error_and_keeps_plan(qtbot: Any, window: Any, monkeypatch: Any) -> None:
    from kvdesk.core import engines

    monkeypatch.setitem(engines._REGISTRY, "vllm", "kvdesk.core.engines.not_written_yet:Nope")
    monkeypatch.delitem(engines._CACHE, "vllm", raising=False)
    before = window.model.plan
    combo = window.form.engine_panel.engine
    combo.setCurrentIndex(combo.findData("vllm"))
    combo.activated.emit(combo.currentIndex())
    assert window.model.plan == before
    assert "not available" in window.model.error
    assert "not available" in window.banner.message.text() and window.banner.message.isVisibleTo(window)
    assert combo.currentData() == "generic"  # the form shows the plan that is still in force


def test_model_picker_replaces_model_and_resets_override(qtbot: Any, window: Any) -> None:
    picker = window.form.model_picker
    others = [i for i in picker.ids() if i != window.model.plan.origin.preset_id]
    window.form.kv_heads.setValue(3)
    picker.pick(others[0])
    plan = window.model.plan
    assert plan.origin.preset_id == others[0]
    assert plan.workload.kv_heads_override is None
    assert_chart_matches_core(window)


def test_every_control_has_a_tooltip(window: Any) -> None:
    from PySide6.QtWidgets import QAbstractButton, QAbstractSpinBox, QComboBox

    controls = [w for kind in (QAbstractSpinBox, QComboBox, QAbstractButton)
                for w in window.form.findChildren(kind)]
    assert len(controls) >= 20
    missing = [f"{type(w).__name__} {w.objectName() or getattr(w, 'text', lambda: '')()}"
               for w in controls if not w.toolTip().strip() and not (w.parent() and w.parent().toolTip())]
    assert missing == []


def test_vllm_plan_that_cannot_start_says_does_not_fit(window: Any) -> None:
    # vLLM refuses to start instead of spilling: the banner must not claim "Spills … to system RAM"
    from kvdesk.core.gpu import custom_gpu

    plan = window.model.plan.model_copy(update={"gpu": custom_gpu(8), "gpu_preset_id": None})
    assert window.model.set_plan(plan.with_engine(name="vllm"))
    bd = window.model.breakdown
    assert not bd.fits
    assert window.banner.state == "no_fit"
    assert window.banner.headline.text().startswith("Does not fit — ")
    assert "system RAM" not in window.banner.headline.text()
    # and the chart names what lies beyond the budget line the same way
    from kvdesk.gui.memory_chart import OVER_LABEL, SPILL_LABEL

    assert window.chart.spill_legend_text() == OVER_LABEL
    assert bd.spill_bytes > 0  # 16 GB of weights on an 8 GiB card
    assert any("over by" in label.textItem.toPlainText() for label in window.chart.total_labels)
    assert window.model.set_plan(plan.with_engine(name="llama.cpp"))
    assert window.model.breakdown.spill_bytes > 0 and window.chart.spill_legend_text() == SPILL_LABEL
    assert any("spill" in label.textItem.toPlainText() for label in window.chart.total_labels if label.isVisible())


@pytest.mark.parametrize("engine", ["generic", "llama.cpp", "ollama", "vllm"])
def test_plan_form_is_never_clipped_on_the_right(window: Any, qtbot: Any, engine: str) -> None:
    """Each engine shows other settings; the scroll area must always be wide enough for the whole form."""
    assert window.model.set_plan(window.model.plan.with_engine(name=engine))
    scroll = window.form.parentWidget().parentWidget()
    qtbot.waitUntil(lambda: scroll.viewport().width() >= window.form.minimumSizeHint().width())
    assert window.form.width() <= scroll.viewport().width()


def test_draft_states_spinbox_multiplies_the_recurrent_state(window: Any) -> None:
    """llama.cpp keeps 1 + rs_seq copies of a hybrid model's recurrent state (llama-memory-recurrent.cpp)."""
    from kvdesk.core.calculator import calculate
    from kvdesk.core.catalog import find_model

    plan = window.model.plan.model_copy(update={"model": find_model("qwen3.5-35b-a3b").to_spec()})
    assert window.model.set_plan(plan.with_engine(name="llama.cpp"))
    panel = window.form.engine_panel
    assert not panel.rs_seq.isHidden()
    one = window.model.breakdown.recurrent_state_bytes
    assert one > 0
    panel.rs_seq.setValue(2)
    assert window.model.plan.engine.rs_seq == 2
    assert window.model.breakdown.recurrent_state_bytes == calculate(window.model.plan).recurrent_state_bytes == 3 * one
    assert window.model.set_plan(window.model.plan.with_engine(name="vllm"))
    assert panel.rs_seq.isHidden()  # vLLM has no such setting
    assert window.model.set_plan(window.model.plan.model_copy(update={"model": find_model("llama-3.1-8b").to_spec()}))
    assert window.model.set_plan(window.model.plan.with_engine(name="llama.cpp"))
    assert panel.rs_seq.isHidden()  # no recurrent layers: nothing to copy
