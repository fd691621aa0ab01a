"""CompareTab: two or more plans side by side — the live plan plus pinned ones — as numbers and bars.

"Pin current" keeps a copy of the plan as it is now; the variant menu adds the current plan with one
thing changed (KV type, GPU count, context). Columns are recomputed with the core on every refresh.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import (
    QHBoxLayout,
    QMenu,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from kvdesk.core.breakdown import Breakdown
from kvdesk.core.calculator import calculate
from kvdesk.core.plan import Plan
from kvdesk.core.units import GIB, format_bytes, format_tokens
from kvdesk.gui.memory_chart import BAR_WIDTH
from kvdesk.gui.plan_model import _COMPUTE_ERRORS, PlanModel, describe_error
from kvdesk.gui.refresh_when_visible import RefreshWhenVisible
from kvdesk.gui.theme import theme_manager
from kvdesk.gui.verdict_banner import verdict

ROWS = ("Model", "GPU", "Engine", "Context × seqs", "KV type", "Weights", "KV cache", "Overhead", "Total",
        "Budget", "Verdict", "Max context", "Max concurrency", "Decode ms/token")


@dataclass
class Column:
    title: str
    plan: Plan
    breakdown: Breakdown | None
    error: str = ""


def column_values(c: Column) -> list[str]:
    p, bd = c.plan, c.breakdown
    w = p.workload
    head = [p.model.name, f"{p.gpu_count}× {p.gpu.name}", p.engine.name,
            f"{format_tokens(w.context)} × {w.batch}", f"{w.kv_dtype_k}/{w.kv_dtype_v}"]
    if bd is None:
        return [*head, *["—"] * (len(ROWS) - len(head) - 4), f"error: {c.error}", "—", "—", "—"]
    return [*head, format_bytes(bd.weights_bytes), format_bytes(bd.kv_cache_bytes + bd.recurrent_state_bytes),
            format_bytes(bd.overhead_bytes), format_bytes(bd.total_bytes), format_bytes(bd.budget_bytes),
            verdict(bd)[1], f"{bd.max_context:,}", f"{bd.max_batch:,}", f"{bd.decode_ms_per_token:.2f}"]


def variants(plan: Plan) -> dict[str, Plan]:
    w = plan.workload
    out = {
        "KV q8_0": plan.with_workload(kv_dtype_k="q8_0", kv_dtype_v="q8_0"),
        "KV q4_0": plan.with_workload(kv_dtype_k="q4_0", kv_dtype_v="q4_0"),
        "KV fp8": plan.with_workload(kv_dtype_k="fp8", kv_dtype_v="fp8"),
        "2× context": plan.with_workload(context=min(w.context * 2, 1 << 26)),
        "2× sequences": plan.with_workload(batch=min(w.batch * 2, 1 << 16)),
        f"{plan.gpu_count * 2}× GPU": plan.model_copy(update={"gpu_count": min(plan.gpu_count * 2, 1024)}),
    }
    return out


class CompareTab(RefreshWhenVisible):
    def __init__(self, model: PlanModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.pinned: list[tuple[str, Plan]] = []
        self.pin_button = QPushButton("Pin current plan")
        self.pin_button.setToolTip("Keep a copy of the plan as it is now, to compare later edits against it.")
        self.variant_button = QToolButton()
        self.variant_button.setText("Add variant")
        self.variant_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.variant_button.setToolTip("Add the current plan with one thing changed.")
        self.variant_menu = QMenu(self)
        self.variant_menu.aboutToShow.connect(self._fill_variants)
        self.variant_button.setMenu(self.variant_menu)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Remove all pinned plans.")
        buttons = QHBoxLayout()
        for b in (self.pin_button, self.variant_button, self.clear_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        self.table = QTableWidget(len(ROWS), 1)
        self.table.setVerticalHeaderLabels(list(ROWS))
        self.table.setToolTip("The live plan (first column) next to pinned plans.")
        self.plot = pg.PlotWidget()
        self.plot.setToolTip("Totals per plan: weights, KV cache and overhead against each plan's budget.")
        item = self.plot.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        item.setMouseEnabled(x=False, y=False)
        item.setLabel("left", "memory (GiB)")
        self.bars = {k: pg.BarGraphItem(x=[0], height=[0], y0=[0], width=BAR_WIDTH, name=label)
                     for k, label in (("weights", "Weights"), ("kv", "KV cache"), ("overhead", "Overhead"))}
        self.legend = item.addLegend(offset=(10, 5), labelTextSize="9pt", colCount=4)
        for bar in self.bars.values():
            item.addItem(bar)
        self.budget = pg.PlotDataItem(connect="pairs", name="Budget")
        item.addItem(self.budget)
        splitter = QSplitter()
        splitter.addWidget(self.table)
        splitter.addWidget(self.plot)
        splitter.setSizes([500, 400])
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(splitter, 1)
        self.pin_button.clicked.connect(self.pin_current)
        self.clear_button.clicked.connect(self.clear)
        self._stale = True
        model.changed.connect(self._changed)
        theme_manager().changed.connect(self._changed)

    # -- pinned plans ---------------------------------------------------------------------------
    def pin_current(self) -> None:
        self.add_plan(f"Pinned {len(self.pinned) + 1}", self.model.plan)

    def add_plan(self, title: str, plan: Plan) -> None:
        self.pinned.append((title, plan))
        self._changed()

    def clear(self) -> None:
        self.pinned.clear()
        self._changed()

    def _fill_variants(self) -> None:
        self.variant_menu.clear()
        for title, plan in variants(self.model.plan).items():
            action = self.variant_menu.addAction(title)
            action.triggered.connect(lambda _c=False, t=title, p=plan: self.add_plan(t, p))

    def columns(self) -> list[Column]:
        cols = [Column("Current", self.model.plan, self.model.breakdown)]
        for title, plan in self.pinned:
            try:
                cols.append(Column(title, plan, calculate(plan)))
            except _COMPUTE_ERRORS as exc:
                cols.append(Column(title, plan, None, describe_error(exc)))
        return cols

    # -- refresh --------------------------------------------------------------------------------
    def refresh(self) -> None:
        self._stale = False
        cols = self.columns()
        self.table.setColumnCount(len(cols))
        self.table.setHorizontalHeaderLabels([c.title for c in cols])
        for j, col in enumerate(cols):
            for i, text in enumerate(column_values(col)):
                self.table.setItem(i, j, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        self._draw(cols)

    def _draw(self, cols: list[Column]) -> None:
        colors = theme_manager().colors
        self.plot.setBackground(colors.background)
        n = len(cols)
        x = np.arange(n, dtype=np.float64)
        seg = {k: np.zeros(n) for k in ("weights", "kv", "overhead", "budget")}
        for j, c in enumerate(cols):
            if c.breakdown is not None:
                bd = c.breakdown
                seg["weights"][j] = bd.weights_bytes / GIB
                seg["kv"][j] = (bd.kv_cache_bytes + bd.recurrent_state_bytes) / GIB
                seg["overhead"][j] = bd.overhead_bytes / GIB
                seg["budget"][j] = bd.budget_bytes / GIB
        bottom = np.zeros(n)
        brushes = {"weights": colors.weights, "kv": colors.k_cache, "overhead": colors.overhead}
        for key, bar in self.bars.items():
            bar.setOpts(x=x, y0=bottom.copy(), height=seg[key], width=BAR_WIDTH, brush=brushes[key],
                        pen=pg.mkPen(colors.background))
            bottom += seg[key]
        half = BAR_WIDTH / 2 + 0.1
        self.budget.setData(np.repeat(x, 2) + np.tile([-half, half], n), np.repeat(seg["budget"], 2),
                            pen=pg.mkPen(colors.budget, width=2, style=pg.QtCore.Qt.PenStyle.DashLine))
        item = self.plot.getPlotItem()
        item.getAxis("bottom").setTicks([[(j, c.title) for j, c in enumerate(cols)]])
        for name in ("left", "bottom"):
            axis = item.getAxis(name)
            axis.setTextPen(pg.mkPen(colors.foreground))
            if axis.labelText:
                axis.setLabel(axis.labelText, color=colors.foreground)
        self.legend.setLabelTextColor(colors.foreground)
        for _sample, label in self.legend.items:
            label.setText(label.text)
        top = float(max(bottom.max(initial=0), seg["budget"].max(initial=0), 1e-3))
        item.setRange(xRange=(-0.6, n - 0.4), yRange=(0, top * 1.2), padding=0)


if __name__ == "__main__":
    from kvdesk.gui.preview import preview

    preview(CompareTab)
