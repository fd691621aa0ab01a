"""LogCheckPanel: paste/open a real engine log, see it beside the plan, calibrate the overhead."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog

from kvdesk.core.defaults import default_plan
from kvdesk.core.gpu import custom_gpu
from kvdesk.gui.log_check import LogCheckPanel, format_difference
from kvdesk.gui.plan_model import PlanModel

GIB = 1 << 30
LOGS = Path(__file__).resolve().parents[1] / "data" / "logs"
VLLM = LOGS / "vllm_0.19_llama31_8b_h100.log"


@pytest.fixture
def model() -> PlanModel:
    plan = default_plan().with_engine(name="vllm", gpu_memory_utilization=0.95)
    return PlanModel(plan.model_copy(update={"gpu": custom_gpu(79.19, "H100")}).with_workload(context=8192))


@pytest.fixture
def panel(qtbot, model: PlanModel) -> LogCheckPanel:  # type: ignore[no-untyped-def]
    p = LogCheckPanel(model)
    qtbot.addWidget(p)
    p.resize(800, 600)
    p.show()
    return p


def rows(panel: LogCheckPanel) -> dict[str, list[str]]:
    t = panel.table
    return {t.item(r, 0).text().strip(): [t.item(r, c).text() for c in (1, 2, 3)] for r in range(t.rowCount())}


def test_pasted_log_shows_figures_beside_the_plan(qtbot, panel: LogCheckPanel, model: PlanModel) -> None:  # type: ignore[no-untyped-def]
    assert panel.summary.text() == "No log yet." and not panel.calibrate_button.isEnabled()
    qtbot.keyClicks(panel.editor, "x")  # typing schedules a debounced check
    panel.editor.setPlainText(VLLM.read_text())
    qtbot.waitUntil(lambda: panel.comparison is not None and panel.observed.engine == "vllm", timeout=3000)
    table = rows(panel)
    assert table["GPU KV cache size"][0] == "476,016"
    assert table["Weights (sum over GPUs)"][0] == "14.99 GiB"
    assert table["Weights (sum over GPUs)"][1] == f"{model.breakdown.weights_bytes / GIB:.2f} GiB"
    assert panel.summary.text().startswith("vllm log · 10 memory line(s) of 23")
    assert panel.calibrate_button.isEnabled()


def test_calibrate_and_clear(qtbot, panel: LogCheckPanel, model: PlanModel) -> None:  # type: ignore[no-untyped-def]
    assert panel.open_path(VLLM)
    before = panel.comparison.figure("overhead_bytes")  # type: ignore[union-attr]
    assert before is not None and before.difference
    qtbot.mouseClick(panel.calibrate_button, _left())
    cal = model.plan.calibration
    assert cal is not None and cal.source == VLLM.name
    assert cal.overhead_delta_bytes == round(before.difference)
    after = panel.comparison.figure("overhead_bytes")  # type: ignore[union-attr]
    assert after is not None and abs(after.difference or 0) <= 1  # the table refreshed on plan change
    assert panel.calibration_label.text().startswith(f"Calibrated from {VLLM.name}: overhead −")
    qtbot.mouseClick(panel.clear_button, _left())
    assert model.plan.calibration is None and "Not calibrated" in panel.calibration_label.text()


def test_open_dialog_is_patched_and_bad_files_say_why(qtbot, panel: LogCheckPanel, monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = LOGS / "llamacpp_b6209_rpc_llama31_70b.log"
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(log), ""))
    qtbot.mouseClick(panel.open_button, _left())
    assert panel.observed is not None and panel.observed.kv_bytes == 1280 << 20
    assert "RPC[172.31.27.42:50052]" in rows(panel)
    assert not panel.open_path(tmp_path / "missing.log")
    assert "log file not found" in panel.summary.text()


def test_garbage_and_huge_paste(qtbot, panel: LogCheckPanel, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    panel.set_text("\x00\x01 nothing here \udcff" * 50)
    assert "no llama.cpp, Ollama or vLLM memory lines found" in panel.summary.text()
    big = tmp_path / "big.log"
    big.write_text(VLLM.read_text() + "noise\n" * 400_000)
    with qtbot.waitSignal(panel.parsed, timeout=30000):
        assert panel.open_path(big)
        assert panel.summary.text().startswith("Reading big.log")  # parsed off the UI thread
    assert panel.editor.toPlainText().startswith("(big.log:") and panel.observed.kv_tokens == 476016  # type: ignore[union-attr]


def test_difference_format() -> None:
    from kvdesk.core.logparse_compare import Figure

    assert format_difference(Figure(name="x", label="x", observed=3 * GIB, predicted=2 * GIB)) == "+1.00 GiB (+50.0%)"
    assert format_difference(Figure(name="x", label="x", unit="tokens", observed=90, predicted=100)) == "−10 (−10.0%)"
    assert format_difference(Figure(name="x", label="x", observed=1)) == "—"


def _left():  # type: ignore[no-untyped-def]
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton
