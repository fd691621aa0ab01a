"""Sweep, Explain and Compare tabs against the core; PlanModel history; the token spinbox; previews."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from kvdesk.core.calculator import calculate, sweep
from kvdesk.core.units import GIB
from kvdesk.gui.plan_model import PlanModel
from kvdesk.gui.token_spinbox import TokenSpinBox, next_power_of_two
from tests.gui.conftest import generic_plan


# -- Sweep ----------------------------------------------------------------------------------------
def test_sweep_curves_are_the_core_max_concurrency(qtbot: Any) -> None:
    from kvdesk.gui.sweep_tab import SweepTab, sweep_axes, sweep_dtypes

    model = PlanModel(generic_plan(context=16384, batch=2))
    tab = SweepTab(model)
    qtbot.addWidget(tab)
    tab.show()
    qtbot.waitExposed(tab)
    plan = model.plan
    contexts, batches = sweep_axes(plan, model.breakdown.max_batch)
    dtypes = sweep_dtypes(plan)
    assert dtypes == ["auto", "fp8", "q4_0"]  # the plan's own 16-bit type stands in for f16
    expected = sweep(plan, contexts, batches, dtypes).max_batch()
    for i, curve in enumerate(tab.curves[: len(dtypes)]):
        x, y = curve.getData()
        assert np.allclose(x, np.log2(contexts)) and np.array_equal(y, expected[i])
    # at the plan's own context, the curve of its KV type is the core's max_batch
    idx = int(np.flatnonzero(contexts == plan.workload.context)[0])
    assert expected[0][idx] == min(model.breakdown.max_batch, batches[-1])
    mx, my = tab.marker.getData()
    assert (mx[0], my[0]) == (np.log2(16384), 2.0)


def test_fits_map_is_the_core_verdict_grid(qtbot: Any) -> None:
    from kvdesk.gui.sweep_tab import SweepTab, map_contexts, sweep_axes

    model = PlanModel(generic_plan(context=16384, batch=2))
    tab = SweepTab(model)
    qtbot.addWidget(tab)
    tab.show()
    qtbot.waitExposed(tab)
    contexts = np.round(map_contexts(model.plan)).astype(np.int64)
    _, batches = sweep_axes(model.plan, model.breakdown.max_batch)
    drawn = tab.image.image.T  # rows: contexts, columns: concurrency
    assert {0, 1, 2} <= set(np.unique(drawn).tolist())  # fits, tight and spills all appear
    for i in (0, len(contexts) // 2, len(contexts) - 1):
        for b in (1, 4, int(batches[-1])):
            bd = calculate(model.plan.with_workload(context=int(contexts[i]), batch=b))
            expected = 2 if not bd.fits else (1 if bd.headroom_bytes < 0.05 * bd.budget_bytes else 0)
            assert drawn[i, b - 1] == expected, (contexts[i], b)


def test_sweep_refreshes_only_when_visible(qtbot: Any) -> None:
    from kvdesk.gui.sweep_tab import SweepTab

    model = PlanModel(generic_plan())
    tab = SweepTab(model)
    qtbot.addWidget(tab)
    model.update_workload(batch=4)
    assert tab.last is None  # hidden: nothing computed
    tab.show()
    qtbot.waitExposed(tab)
    assert tab.last is not None and tab.marker.getData()[1][0] == 4


# -- Explain --------------------------------------------------------------------------------------
def test_explain_shows_formula_numbers_and_every_rule(qtbot: Any) -> None:
    from kvdesk.gui.explain_panel import ExplainPanel

    model = PlanModel(generic_plan(context=4096, batch=2))
    panel = ExplainPanel(model)
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitExposed(panel)
    text = panel.text.toPlainText()
    bd = calculate(model.plan)
    assert "4,096 ctx" in text and "2 batch" in text and f"{bd.k_cache_bytes + bd.v_cache_bytes:,} B" in text
    for rule in bd.rules:
        assert rule.title in text
        if rule.source:
            assert rule.source in text
    model.update_workload(context=8192)
    assert "8,192 ctx" in panel.text.toPlainText()


# -- Compare --------------------------------------------------------------------------------------
def test_compare_pins_and_variants_match_the_core(qtbot: Any) -> None:
    from kvdesk.gui.compare_tab import ROWS, CompareTab, variants

    model = PlanModel(generic_plan(context=32768))
    tab = CompareTab(model)
    qtbot.addWidget(tab)
    tab.show()
    qtbot.waitExposed(tab)
    tab.pin_current()
    q8 = variants(model.plan)["KV q8_0"]
    tab.add_plan("KV q8_0", q8)
    model.update_workload(context=65536)
    assert tab.table.columnCount() == 3
    headers = [tab.table.horizontalHeaderItem(j).text() for j in range(3)]
    assert headers == ["Current", "Pinned 1", "KV q8_0"]
    kv_row = ROWS.index("KV cache")
    for j, plan in enumerate([model.plan, generic_plan(context=32768), q8]):
        bd = calculate(plan)
        assert tab.table.item(ROWS.index("Max concurrency"), j).text() == f"{bd.max_batch:,}"
        assert tab.bars["kv"].opts["height"][j] == pytest.approx(bd.kv_cache_bytes / GIB)
        assert tab.bars["weights"].opts["height"][j] == pytest.approx(bd.weights_bytes / GIB)
    assert tab.table.item(kv_row, 1).text() == "4.00 GiB"  # 2 × 32 × 8 × 128 × 32768 × 2 B
    tab.clear()
    assert tab.table.columnCount() == 1


# -- PlanModel ------------------------------------------------------------------------------------
def test_plan_model_history_and_dirty(qtbot: Any, tmp_path: Any) -> None:
    model = PlanModel(generic_plan())
    seen: list[bool] = []
    model.dirty_changed.connect(seen.append)
    assert model.update_workload(context=1000)
    assert model.update_workload(batch=2)
    assert model.dirty and seen == [True]
    assert model.undo() and model.plan.workload.batch == 1
    assert model.undo() and model.plan == generic_plan() and not model.dirty and seen == [True, False]
    assert not model.undo()
    assert model.redo() and model.plan.workload.context == 1000
    model.mark_saved(tmp_path / "p.kvplan")
    assert not model.dirty and model.path == tmp_path / "p.kvplan"
    assert model.update_workload(context=2000) and not model.can_redo  # a new edit drops the redo branch


def test_plan_model_refuses_bad_values(qtbot: Any) -> None:
    model = PlanModel(generic_plan())
    before = model.plan
    refused: list[str] = []
    model.rejected.connect(refused.append)
    assert not model.update_workload(context=0)
    assert not model.update_workload(kv_dtype_k="q3_weird")
    assert not model.update(gpu_count=0)
    assert model.plan == before and len(refused) == 3
    assert "q3_weird" in refused[1]
    assert model.update_workload(context=2048) and model.error == ""


# -- TokenSpinBox ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "value"), [("32k", 32768), ("32K", 32768), ("1M", 1 << 20), ("8192", 8192),
                                             ("1.5k", 1536), ("100,000", 100000)])
def test_token_spinbox_reads_suffixes(qtbot: Any, text: str, value: int) -> None:
    box = TokenSpinBox()
    qtbot.addWidget(box)
    assert box.valueFromText(text) == value
    state, _t, _p = box.validate(text, len(text))
    assert state.name == "Acceptable"


def test_token_spinbox_rejects_garbage(qtbot: Any) -> None:
    box = TokenSpinBox()
    qtbot.addWidget(box)
    assert box.validate("abc", 3)[0].name == "Invalid"
    assert box.validate("32kk", 4)[0].name == "Invalid"
    assert box.textFromValue(65536) == "64k" and box.textFromValue(1000) == "1000"


@pytest.mark.parametrize(("start", "steps", "end"), [(4096, 1, 8192), (5000, 1, 8192), (5000, -1, 4096),
                                                     (4096, -1, 2048), (1, -1, 1), (3, 2, 8)])
def test_powers_of_two(start: int, steps: int, end: int) -> None:
    assert next_power_of_two(start, steps) == end


# -- every panel runs alone -----------------------------------------------------------------------
@pytest.mark.parametrize("panel", ["memory_chart", "verdict_banner", "plan_form", "engine_settings", "sweep_tab",
                                   "explain_panel", "compare_tab"])
def test_panel_previews_run_alone(panel: str) -> None:
    env = dict(os.environ, KVDESK_PREVIEW_SMOKE="1", QT_QPA_PLATFORM="offscreen")
    done = subprocess.run([sys.executable, "-m", f"kvdesk.gui.{panel}"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
