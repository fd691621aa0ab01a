"""SweepTab: max concurrency vs context (one curve per KV dtype, the current plan marked), and a
fits / tight / spills map over context × concurrency for the plan's KV dtype.

Both come from one vectorised ``sweep()`` per refresh; the tab refreshes only while visible.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from kvdesk.core.calculator import Sweep, sweep
from kvdesk.core.dtypes import kv_type, normalize_dtype_name
from kvdesk.core.errors import KvdeskError
from kvdesk.core.plan import Plan
from kvdesk.core.units import format_tokens
from kvdesk.gui.plan_model import PlanModel, describe_error
from kvdesk.gui.refresh_when_visible import RefreshWhenVisible
from kvdesk.gui.theme import theme_manager

ENGINE_DTYPES = {
    "vllm": ["auto", "fp8"],
    "llama.cpp": ["f16", "q8_0", "q4_0"],
    "ollama": ["f16", "q8_0", "q4_0"],
    "generic": ["f16", "fp8", "q4_0"],
}
N_CONTEXTS = 40
MAX_SWEEP_BATCH = 1024  # every concurrency level 1…N is evaluated (the map's rows are uniform)


def map_contexts(plan: Plan) -> npt.NDArray[np.float64]:
    """Geometric contexts, 256 … beyond the native limit (uniform in log2: the map's columns)."""
    top = max(plan.model.native_context or 0, 2 * plan.workload.context, 8192)
    return np.geomspace(256, top, N_CONTEXTS)


def sweep_axes(plan: Plan, max_batch: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Contexts (the map's, plus the plan's own) and batches (1 … past the current max)."""
    w = plan.workload
    contexts = np.unique(np.append(np.round(map_contexts(plan)).astype(np.int64), w.context))
    b_top = int(min(MAX_SWEEP_BATCH, max(32, 4 * max_batch, 2 * w.batch)))
    return contexts, np.arange(1, b_top + 1, dtype=np.int64)


def sweep_dtypes(plan: Plan) -> list[str]:
    """The engine's usual KV types; the plan's own replaces the one of equal cost, or is added first."""
    current = plan.workload.kv_dtype_k
    names = list(ENGINE_DTYPES.get(plan.engine.name, ["f16", "q8_0"]))
    if normalize_dtype_name(current) in [normalize_dtype_name(n) for n in names]:
        return names
    cost = kv_type(current, plan.model.dtype).bytes_per_value
    for i, name in enumerate(names):
        if kv_type(name, plan.model.dtype).bytes_per_value == cost:
            names[i] = current
            return names
    return [current, *names]


def _mix(color: str, background: str, weight: float = 0.7) -> tuple[int, int, int, int]:
    """``color`` toned down towards the background, so a large map does not glare."""
    a, b = pg.mkColor(color), pg.mkColor(background)
    mixed = [round(weight * x + (1 - weight) * y) for x, y in zip(a.getRgb()[:3], b.getRgb()[:3], strict=True)]
    return mixed[0], mixed[1], mixed[2], 255


def _log2_ticks(contexts: npt.NDArray[np.int64]) -> list[tuple[float, str]]:
    lo, hi = int(np.floor(np.log2(contexts[0]))), int(np.ceil(np.log2(contexts[-1])))
    return [(float(e), format_tokens(1 << e)) for e in range(lo, hi + 1)]


class SweepTab(RefreshWhenVisible):
    def __init__(self, model: PlanModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.curves_plot = pg.PlotWidget()
        self.curves_plot.setToolTip("How many sequences fit at each context length, per KV cache type.")
        self.map_plot = pg.PlotWidget()
        self.map_plot.setToolTip("Green: fits · amber: under 5 % headroom · red: spills to system RAM.")
        for plot, title, left in ((self.curves_plot, "Max concurrency vs context", "sequences"),
                                  (self.map_plot, "Fits / spills map", "sequences")):
            item = plot.getPlotItem()
            item.setTitle(title)
            item.setLabel("left", left)
            item.setLabel("bottom", "context (tokens)")
            item.setMenuEnabled(False)
            item.hideButtons()
            item.showGrid(x=True, y=True, alpha=0.2)
        self.legend = self.curves_plot.getPlotItem().addLegend(offset=(-10, 10), labelTextSize="9pt")
        self.curves: list[pg.PlotDataItem] = []
        self.marker = pg.ScatterPlotItem(size=12, symbol="o", name="this plan")
        self.curves_plot.addItem(self.marker)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.map_plot.addItem(self.image)
        self.map_marker = pg.ScatterPlotItem(size=12, symbol="x")
        self.map_plot.addItem(self.map_marker)
        self.status = QLabel()
        self.status.setWordWrap(True)
        plots = QHBoxLayout()
        plots.addWidget(self.curves_plot, 1)
        plots.addWidget(self.map_plot, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(plots, 1)
        layout.addWidget(self.status)
        self.last: Sweep | None = None
        self._stale = True
        model.changed.connect(self._changed)
        theme_manager().changed.connect(self._changed)

    def refresh(self) -> None:
        self._stale = False
        plan, bd = self.model.plan, self.model.breakdown
        contexts, batches = sweep_axes(plan, bd.max_batch)
        dtypes = sweep_dtypes(plan)
        try:
            result = sweep(plan, contexts, batches, dtypes)
            current = sweep(plan, np.round(map_contexts(plan)).astype(np.int64), batches)
        except (KvdeskError, ValueError, KeyError, ImportError) as exc:
            self.status.setText(f"Sweep unavailable: {describe_error(exc)}")
            return
        self.last = result
        self._apply_colors()
        self._draw_curves(result, plan)
        self._draw_map(current, plan)
        self.status.setText(
            f"Map: green fits · amber under 5 % headroom · red spills to system RAM. Curves stop at "
            f"{int(batches[-1])} sequences. Marker: this plan ({format_tokens(plan.workload.context)}, "
            f"{plan.workload.batch} seq); {len(contexts)} contexts × {len(batches)} levels × {len(dtypes)} KV types."
        )

    def _apply_colors(self) -> None:
        colors = theme_manager().colors
        for plot in (self.curves_plot, self.map_plot):
            plot.setBackground(colors.background)
            item = plot.getPlotItem()
            item.titleLabel.setText(item.titleLabel.text, color=colors.foreground)
            for name in ("left", "bottom"):
                axis = item.getAxis(name)
                axis.setTextPen(pg.mkPen(colors.foreground))
                axis.setPen(pg.mkPen(colors.grid))
                axis.setLabel(axis.labelText, color=colors.foreground)
        self.legend.setLabelTextColor(colors.foreground)
        self.marker.setBrush(pg.mkBrush(colors.foreground))
        self.map_marker.setPen(pg.mkPen(colors.foreground, width=3))

    def _draw_curves(self, result: Sweep, plan: Plan) -> None:
        colors = theme_manager().colors
        x = np.log2(result.contexts.astype(np.float64))
        max_b = result.max_batch()
        while len(self.curves) < len(result.kv_dtypes):
            curve = pg.PlotDataItem()
            self.curves_plot.addItem(curve)
            self.curves.append(curve)
        self.legend.clear()
        for i, curve in enumerate(self.curves):
            if i >= len(result.kv_dtypes):
                curve.setVisible(False)
                continue
            curve.setVisible(True)
            color = colors.curves[i % len(colors.curves)]
            curve.setData(x, max_b[i].astype(np.float64), pen=pg.mkPen(color, width=2), stepMode=None)
            self.legend.addItem(curve, f"KV {result.kv_dtypes[i]}")
        self.legend.addItem(self.marker, "this plan")
        w = plan.workload
        self.marker.setData([float(np.log2(w.context))], [float(w.batch)])
        self.curves_plot.getPlotItem().getAxis("bottom").setTicks([_log2_ticks(result.contexts)])

    def _draw_map(self, current: Sweep, plan: Plan) -> None:
        colors = theme_manager().colors
        total = current.total_bytes[0]
        budget = float(current.budget_bytes)
        state = np.where(total > budget, 2, np.where(total > 0.95 * budget, 1, 0)).astype(np.uint8)
        lut = np.array([_mix(c, colors.background) for c in (colors.fits, colors.tight, colors.spills)], dtype=np.uint8)
        self.image.setImage(state.T, lut=lut, levels=(0, 2), autoLevels=False)
        x = np.log2(map_contexts(plan))
        b = current.batches
        self.image.setRect(pg.QtCore.QRectF(x[0], float(b[0]) - 0.5, x[-1] - x[0], float(b[-1] - b[0]) + 1))
        w = plan.workload
        self.map_marker.setData([float(np.log2(w.context))], [float(w.batch)])
        self.map_plot.getPlotItem().getAxis("bottom").setTicks([_log2_ticks(current.contexts)])


if __name__ == "__main__":
    from kvdesk.gui.preview import preview

    preview(SweepTab)
