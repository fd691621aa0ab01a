"""Guards the PySide6 6.12.0 crash (refcount bug in none_dealloc after ~100 repaints on Python 3.11).

If a PySide6 upgrade brings it back, this test dies with a segfault instead of passing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QApplication

from kvdesk.gui.memory_chart import MemoryChart
from kvdesk.gui.plan_model import PlanModel
from tests.gui.conftest import generic_plan

REPAINTS = 300


def test_plain_pyqtgraph_plot_survives_hundreds_of_repaints(qtbot: Any) -> None:
    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    curve = plot.plot()
    bars = pg.BarGraphItem(x=[0, 1], height=[1, 2], width=0.5)
    plot.addItem(bars)
    plot.show()
    qtbot.waitExposed(plot)
    x = np.arange(64, dtype=float)
    for i in range(REPAINTS):
        curve.setData(x, np.sin(x / 7 + i))
        bars.setOpts(height=[1 + i % 5, 2 + i % 3])
        plot.repaint()
        QApplication.processEvents()
    assert curve.getData()[1] is not None
    assert list(bars.opts["height"]) == [1 + (REPAINTS - 1) % 5, 2 + (REPAINTS - 1) % 3]


def test_memory_chart_survives_hundreds_of_plan_changes(qtbot: Any) -> None:
    model = PlanModel(generic_plan())
    chart = MemoryChart(model)
    qtbot.addWidget(chart)
    chart.show()
    qtbot.waitExposed(chart)
    painted = chart.paints.count
    for i in range(REPAINTS):
        model.update_workload(context=4096 + 256 * i)
        chart.plot.repaint()
        QApplication.processEvents()
    assert chart.paints.count >= painted + REPAINTS
    assert model.plan.workload.context == 4096 + 256 * (REPAINTS - 1)
