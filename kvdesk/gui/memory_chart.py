"""MemoryChart: stacked bars per GPU device (weights, KV cache, compute/overhead, free) against the budget.

What does not fit is drawn beyond the budget line as a hatched "spill to system RAM" segment.
Plot items are created once and updated with ``setOpts`` / ``setData`` on every change.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import QVBoxLayout, QWidget

from kvdesk.core.breakdown import Breakdown
from kvdesk.core.units import GIB
from kvdesk.core.verdict import SPILLING_ENGINES
from kvdesk.gui.plan_model import PlanModel
from kvdesk.gui.theme import ChartColors, theme_manager

SEGMENTS: tuple[tuple[str, str], ...] = (
    ("weights", "Weights"),
    ("kv", "KV cache"),
    ("overhead", "Compute / overhead"),
    ("free", "Free"),
)
BAR_WIDTH = 0.6
HEADROOM, HEADROOM_MIN = 1.3, 1.2  # y-axis top over the tallest bar: room for total labels and the legend
BUDGET_HALF = BAR_WIDTH / 2 + 0.12  # the budget line sticks out this far on each side of a bar
MAX_LABELLED_DEVICES = 8
SPILL_LABEL = "Spill to system RAM"
OVER_LABEL = "Over budget — engine will not start"  # vLLM refuses to start rather than offload (core.verdict)


def segment_bytes(bd: Breakdown) -> dict[str, np.ndarray]:
    """Bytes of each segment per device, stacked in SEGMENTS order; 'spill' is what exceeds the budget."""
    dev = bd.per_device
    weights = np.array([d.weights_bytes for d in dev], dtype=np.float64)
    kv = np.array([d.kv_cache_bytes + d.recurrent_state_bytes for d in dev], dtype=np.float64)
    overhead = np.array([d.overhead_bytes for d in dev], dtype=np.float64)
    budget = np.array([d.budget_bytes for d in dev], dtype=np.float64)
    total = weights + kv + overhead
    return {
        "weights": weights,
        "kv": kv,
        "overhead": overhead,
        "free": np.maximum(budget - total, 0.0),
        "spill": np.maximum(total - budget, 0.0),
        "budget": budget,
        "total": total,
    }


Label = tuple[float, float, str, str]  # x, y, text, colour


def _spread(labels: list[Label], gap: float) -> list[Label]:
    """Push labels of one bar apart vertically so that none overlaps the one below it."""
    out: list[Label] = []
    floor = -np.inf
    for x, y, text, color in sorted(labels, key=lambda t: t[1]):
        y = max(y, floor + gap)
        out.append((x, y, text, color))
        floor = y
    return out


def text_on(background: str) -> str:
    """Black or white, whichever reads better on ``background`` (relative luminance)."""
    c = QColor(background)
    luminance = 0.2126 * c.redF() + 0.7152 * c.greenF() + 0.0722 * c.blueF()
    return "#000000" if luminance > 0.5 else "#ffffff"


class _PaintCounter(QObject):
    """Counts paint events of the plot's viewport (benchmarks wait for the repaint)."""

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self.count = 0

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.count += 1
        return False


class MemoryChart(QWidget):
    def __init__(self, model: PlanModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MemoryChart")
        self.model = model
        self.plot = pg.PlotWidget()
        self.plot.setToolTip(
            "Memory per GPU: weights, KV cache and compute/overhead stacked against the usable budget "
            "(line). Anything above the line spills to system RAM."
        )
        item = self.plot.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        item.setMouseEnabled(x=False, y=False)
        item.setLabel("left", "memory", units="GiB")
        item.getAxis("left").enableAutoSIPrefix(False)
        # no pyqtgraph grid: its alpha-blended lines cost ~5 ms per repaint offscreen (values are labelled)
        self.legend = item.addLegend(offset=(10, 5), labelTextSize="9pt", colCount=3)
        self.bars: dict[str, pg.BarGraphItem] = {}
        for key, label in (*SEGMENTS, ("spill", SPILL_LABEL)):
            bar = pg.BarGraphItem(x=[0], height=[0], y0=[0], width=BAR_WIDTH, name=label)
            item.addItem(bar)
            self.bars[key] = bar
        self.budget_line = pg.PlotDataItem(connect="pairs", name="Budget")
        item.addItem(self.budget_line)
        self.budget_label = pg.TextItem(anchor=(1, 0.5))
        item.addItem(self.budget_label)
        self.labels: list[pg.TextItem] = []
        self.total_labels: list[pg.TextItem] = []
        self.paints = _PaintCounter(self)
        self.plot.viewport().installEventFilter(self.paints)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        self._colors: ChartColors | None = None
        self._n_devices = -1
        self._budget_key: tuple[float, ...] = ()
        self._range: tuple[int, float] | None = None
        self.apply_theme()  # draws the plan too
        model.changed.connect(self.refresh)
        theme_manager().changed.connect(self.apply_theme)

    # -- public for tests -----------------------------------------------------------------------
    def segment_heights_gib(self) -> dict[str, list[float]]:
        """The drawn height of each segment per device, in GiB (read back from the bar items)."""
        out = {k: [float(h) for h in np.atleast_1d(bar.opts["height"])] for k, bar in self.bars.items()}
        spill = [0.0] * len(out["weights"])  # the spill bar holds only the devices that spill: place them back
        for x, h in zip(np.atleast_1d(self.bars["spill"].opts["x"]), out["spill"], strict=True):
            spill[round(float(x))] = h
        out["spill"] = spill
        return out

    def budget_gib(self) -> list[float]:
        _, y = self.budget_line.getData()
        return [] if y is None else [float(v) for v in y[::2]]

    # -- updates --------------------------------------------------------------------------------
    def apply_theme(self) -> None:
        colors = theme_manager().colors
        self._colors = colors
        self.plot.setBackground(colors.background)
        item = self.plot.getPlotItem()
        for name in ("left", "bottom"):
            axis = item.getAxis(name)
            axis.setPen(pg.mkPen(colors.grid))
            axis.setTextPen(pg.mkPen(colors.foreground))
            if axis.labelText:
                axis.setLabel(axis.labelText, units=axis.labelUnits or None, color=colors.foreground)
        edge = pg.mkPen(colors.background, width=1)
        for key, bar in self.bars.items():
            if key == "spill":
                brush = QBrush(QColor(colors.spill), Qt.BrushStyle.BDiagPattern)
                bar.setOpts(brush=brush, pen=pg.mkPen(colors.spill, width=2))
            elif key == "free":
                bar.setOpts(brush=colors.free, pen=pg.mkPen(colors.grid, width=1))
            else:
                bar.setOpts(brush=getattr(colors, key if key != "kv" else "k_cache"), pen=edge)
        self.budget_line.setPen(pg.mkPen(colors.budget, width=2, style=Qt.PenStyle.DashLine))
        self.budget_label.setColor(colors.foreground)
        self.legend.setLabelTextColor(colors.foreground)
        for _sample, label in self.legend.items:
            label.setText(label.text)  # LabelItem re-renders its colour only on setText
        self.legend.setBrush(pg.mkBrush(QColor(colors.background)))
        self.legend.setPen(pg.mkPen(colors.grid))
        self.refresh()

    def refresh(self) -> None:
        seg = segment_bytes(self.model.breakdown)
        n = len(seg["budget"])
        x = np.arange(n, dtype=np.float64)
        g = {k: v / GIB for k, v in seg.items()}
        bottom = np.zeros(n)
        for key, _ in SEGMENTS:
            self.bars[key].setOpts(x=x, y0=bottom.copy(), height=g[key], width=BAR_WIDTH)
            bottom = bottom + g[key]
        spilled = g["spill"] > 0  # only bars that spill: a zero-height bar's outline would draw over the budget line
        self.bars["spill"].setOpts(x=x[spilled], y0=g["budget"][spilled], height=g["spill"][spilled],
                                   width=BAR_WIDTH)
        half = BUDGET_HALF
        budget_key = tuple(g["budget"].tolist())
        if budget_key != self._budget_key:
            self._budget_key = budget_key
            self.budget_line.setData(np.repeat(x, 2) + np.tile([-half, half], n), np.repeat(g["budget"], 2))
        top = float(max(np.max(g["total"]), np.max(g["budget"]), 1e-3))
        self._set_range(n, top)
        if n != self._n_devices:
            self._n_devices = n
            names = [(i, d.name) for i, d in enumerate(self.model.breakdown.per_device)]
            step = max(1, n // 16)
            self.plot.getPlotItem().getAxis("bottom").setTicks([names[::step]])
        spills = self.model.breakdown.engine in SPILLING_ENGINES  # else the engine refuses to start
        self._set_spill_legend(spills)
        self.budget_label.setText(f"budget {g['budget'][0]:.1f} GiB" if n else "")
        self.budget_label.setPos(-half - 0.01, float(g["budget"][0]) if n else 0)
        self._label(g, top, spills)

    def _spill_legend_label(self) -> pg.LabelItem | None:
        for sample, label in self.legend.items:
            if sample.item is self.bars["spill"]:
                return label
        return None

    def spill_legend_text(self) -> str:
        label = self._spill_legend_label()
        return "" if label is None else str(label.text)

    def _set_spill_legend(self, spills: bool) -> None:
        """What is beyond the budget line: offloaded to RAM (llama.cpp, Ollama) or a refusal to start (vLLM)."""
        text = SPILL_LABEL if spills else OVER_LABEL
        label = self._spill_legend_label()
        if label is not None and label.text != text:
            label.setText(text)

    def _set_range(self, n: int, top: float) -> None:
        """Rescale only when the bars outgrow the view or shrink well inside it (no jitter while typing)."""
        y_top = self._range[1] if self._range else 0.0
        if self._range and self._range[0] == n and top * HEADROOM_MIN <= y_top <= top * 1.6:
            return
        self._range = (n, top * HEADROOM)
        x_hi = n - 1 + (1.1 if n == 1 else 0.6)
        x_lo = -1.0 if n == 1 else -0.85
        self.plot.getPlotItem().setRange(xRange=(x_lo, x_hi), yRange=(0, top * HEADROOM), padding=0)

    def _label(self, g: dict[str, np.ndarray], top: float, spills: bool) -> None:
        """Value labels: beside the bar with names for one or two devices, inside tall segments otherwise."""
        n_all = len(g["budget"])
        n = min(n_all, MAX_LABELLED_DEVICES)
        beside = n_all == 1
        texts: list[Label] = []
        totals: list[Label] = []
        names = dict(SEGMENTS)
        colors = self._colors or theme_manager().colors
        fg = colors.foreground
        inside = {"weights": text_on(colors.weights), "kv": text_on(colors.k_cache),
                  "overhead": text_on(colors.overhead)}
        for i in range(n):
            y = 0.0
            column: list[Label] = []
            for key, _ in SEGMENTS[:3]:
                h = float(g[key][i])
                if beside and h > 0:
                    column.append((i + BUDGET_HALF + 0.03, y + h / 2, f"{names[key]} {h:.2f} GiB", fg))
                elif h > 0.06 * top:
                    column.append((i, y + h / 2, f"{h:.2f}", inside[key]))
                y += h
            texts += _spread(column, 0.04 * top)
            spill = float(g["spill"][i])
            over = "spill" if spills else "over by"
            head = f"used {g['total'][i]:.2f} GiB" + (f" — {over} {spill:.2f}" if spill > 0 else "")
            totals.append((i, max(y, float(g["budget"][i])), head, fg))
        self._place(self.labels, texts, anchor=(0.0 if beside else 0.5, 0.5), bold=False)
        self._place(self.total_labels, totals, anchor=(0.5, 1.0), bold=True)

    def _place(self, pool: list[pg.TextItem], items: list[Label], anchor: tuple[float, float],
               bold: bool) -> None:
        colors = self._colors or theme_manager().colors
        while len(pool) < len(items):
            label = pg.TextItem(anchor=anchor, color=colors.foreground)
            if bold:
                font = QFont()
                font.setBold(True)
                label.setFont(font)
            self.plot.getPlotItem().addItem(label)
            pool.append(label)
        for label, (x, y, text, color) in zip(pool, items, strict=False):
            if label.anchor != pg.Point(anchor):
                label.setAnchor(anchor)
            label.setColor(color)
            label.setText(text)
            label.setPos(x, y)
            label.setVisible(True)
        for label in pool[len(items):]:
            label.setVisible(False)


if __name__ == "__main__":
    from kvdesk.gui.preview import preview

    preview(MemoryChart)
