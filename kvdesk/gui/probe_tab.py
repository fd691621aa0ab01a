"""ProbeTab: does the plan fit on this machine's GPUs *now*? Plus the engine-log reality check.

Per probed device: a bar of memory held by other processes / free, the plan's need for that device
laid over it (starting where the free memory starts), and a verdict. Probing runs on a QThreadPool
worker with a timeout, so a slow driver or tool never freezes the window.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence

from PySide6.QtCore import QObject, QRectF, QRunnable, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from kvdesk.core.probe import Backend, ProbedDevice, ProbeReport, device_verdict, probe_devices
from kvdesk.core.probe.models import DeviceVerdict
from kvdesk.core.units import format_bytes
from kvdesk.gui.log_check import LogCheckPanel
from kvdesk.gui.plan_model import PlanModel
from kvdesk.gui.theme import current_colors, theme_manager

DEFAULT_TIMEOUT_S = 20.0


class _Relay(QObject):
    done = Signal(int, object)  # generation, ProbeReport


class ProbeJob(QRunnable):
    """Runs ``probe_devices`` off the UI thread and hands the report back through a queued signal."""

    def __init__(self, generation: int, relay: _Relay, backends: Sequence[Backend] | None) -> None:
        super().__init__()
        self.generation, self.relay, self.backends = generation, relay, backends

    def run(self) -> None:
        report = probe_devices(self.backends)
        with contextlib.suppress(RuntimeError):  # the tab was closed while probing
            self.relay.done.emit(self.generation, report)


class MemoryBar(QWidget):
    """[held by others | free] with the plan's need drawn from the start of the free memory."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(34)
        self.capacity = self.held = self.need = 0

    def set_values(self, capacity: int, held: int, need: int) -> None:
        self.capacity, self.held, self.need = max(0, capacity), max(0, held), max(0, need)
        self.setToolTip(
            f"Held by other processes: {format_bytes(self.held)}\n"
            f"Free: {format_bytes(max(0, self.capacity - self.held))}\n"
            f"This plan needs: {format_bytes(self.need)}"
        )
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        c = current_colors()
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        full = max(self.capacity, self.held + self.need, 1) * 1.02
        w, h = self.width() - 2, self.height() - 2
        x_of = lambda b: 1 + w * b / full  # noqa: E731
        p.fillRect(QRectF(x_of(0), 5, x_of(self.capacity) - 1, h - 10), QColor(c.free))
        p.fillRect(QRectF(x_of(0), 5, x_of(self.held) - 1, h - 10), QColor(c.grid).darker(125))
        if self.need:
            start, end, cap = x_of(self.held), x_of(self.held + self.need), x_of(self.capacity)
            inside = QColor(c.weights)
            inside.setAlpha(170)
            p.fillRect(QRectF(start, 9, min(end, cap) - start, h - 18), inside)
            if end > cap:
                p.fillRect(QRectF(cap, 9, end - cap, h - 18), QColor(c.spill))
            p.setPen(QPen(QColor(c.foreground), 1.5))
            p.drawRect(QRectF(start, 9, end - start, h - 18))
        p.setPen(QPen(QColor(c.foreground), 2))
        p.drawLine(int(x_of(self.capacity)), 1, int(x_of(self.capacity)), h + 1)
        p.end()


class DeviceCard(QFrame):
    use_requested = Signal(object)  # ProbedDevice

    def __init__(self, device: ProbedDevice, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.device = device
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title = QLabel()
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.bar = MemoryBar()
        self.legend = QLabel()
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.verdict = QLabel()
        self.verdict.setObjectName("ProbeVerdict")
        self.verdict.setWordWrap(True)
        self.use_button = QPushButton("Use this GPU")
        self.use_button.setToolTip("Set the plan's GPU to this device with its exact memory")
        self.use_button.clicked.connect(lambda: self.use_requested.emit(self.device))
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.use_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.details)
        layout.addWidget(self.bar)
        layout.addWidget(self.legend)
        layout.addWidget(self.verdict)
        self.result: DeviceVerdict | None = None

    def show_need(self, need: int, plan_device: str | None) -> None:
        d = self.device
        self.result = device_verdict(d, need)
        self.title.setText(f"[{d.index}] {d.name}")
        parts = [f"{format_bytes(d.total_bytes)} total", f"{format_bytes(d.free_bytes)} free"]
        if d.budget_bytes is not None:
            parts.append(f"GPU working-set limit {format_bytes(d.budget_bytes)}")
        parts += [f"{k} {v}" for k, v in (("driver", d.driver_version), ("CUDA", d.cuda_version)) if v]
        if plan_device:
            parts.append(f"plan device: {plan_device}")
        self.details.setText("  ·  ".join(parts) + (f"\n{d.note}" if d.note else ""))
        self.bar.set_values(d.capacity_bytes, self.result.held_bytes, need)
        c = current_colors()
        held_color = QColor(c.grid).darker(125).name()
        swatch = '<span style="color:{}">&#9632;</span> {}'
        items = [
            swatch.format(held_color, f"held by other processes {format_bytes(self.result.held_bytes)}"),
            f'<span style="color:{c.foreground}">&#9633;</span> free {format_bytes(self.result.available_bytes)}',
        ]
        if need:
            items.append(swatch.format(c.weights, f"this plan {format_bytes(need)}"))
            if need > self.result.available_bytes + self.result.held_bytes:
                items.append(swatch.format(c.spill, "beyond the device"))
        self.legend.setText("&nbsp;&nbsp;&nbsp;".join(items))
        color = {"fits_now": c.fits, "fits_idle": c.tight, "no_fit": c.spills}.get(self.result.kind, c.foreground)
        self.verdict.setStyleSheet(f"color: {color}; font-weight: bold;")
        need_text = f"Plan needs {format_bytes(need)}: " if need else ""
        self.verdict.setText(need_text + self.result.message)


class ProbeTab(QWidget):
    probed = Signal(object)  # ProbeReport, after it is shown

    def __init__(
        self,
        plan_model: PlanModel,
        parent: QWidget | None = None,
        backends: Sequence[Backend] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        autostart: bool = True,
    ) -> None:
        super().__init__(parent)
        self.model, self.backends, self.timeout_s = plan_model, backends, timeout_s
        self.report: ProbeReport | None = None
        self.cards: list[DeviceCard] = []
        self.generation = 0
        self.busy = False
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.relay = _Relay(self)
        self.relay.done.connect(self._on_report)
        self.watchdog = QTimer(self, singleShot=True)
        self.watchdog.timeout.connect(self._on_timeout)
        self.auto_timer = QTimer(self)
        self.auto_timer.timeout.connect(self.refresh)
        self._build()
        plan_model.changed.connect(self._update_cards)
        theme_manager().changed.connect(self._update_cards)
        if autostart:
            QTimer.singleShot(0, self.refresh)

    def _build(self) -> None:
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.auto_check = QCheckBox("Auto-refresh every")
        self.auto_check.toggled.connect(self._toggle_auto)
        self.interval = QSpinBox()
        self.interval.setRange(2, 600)
        self.interval.setValue(10)
        self.interval.setSuffix(" s")
        self.interval.valueChanged.connect(self._toggle_auto)
        self.status = QLabel("Not probed yet")
        self.status.setWordWrap(True)
        bar = QHBoxLayout()
        for w in (self.refresh_button, self.auto_check, self.interval):
            bar.addWidget(w)
        bar.addWidget(self.status, 1)
        self.devices_box = QVBoxLayout()
        self.devices_box.setSpacing(8)
        self.empty = QLabel()
        self.empty.setWordWrap(True)
        self.empty.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.devices_box.addWidget(self.empty)
        self.plan_note = QLabel()
        self.plan_note.setWordWrap(True)
        self.plan_note.setVisible(False)
        self.devices_box.addWidget(self.plan_note)
        inner = QWidget()
        col = QVBoxLayout(inner)
        col.addLayout(self.devices_box)
        col.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(inner)
        scroll.setWidgetResizable(True)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addLayout(bar)
        top_layout.addWidget(scroll, 1)
        self.log_panel = LogCheckPanel(self.model)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(self.log_panel)
        split.setSizes([300, 360])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(split)

    # -- probing ------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Start a probe unless one is running (results of a timed-out probe are ignored)."""
        if self.busy:
            return
        self.busy = True
        self.generation += 1
        self.started = time.perf_counter()
        self.refresh_button.setEnabled(False)
        self.status.setText("Probing…")
        self.watchdog.start(int(self.timeout_s * 1000))
        self.pool.start(ProbeJob(self.generation, self.relay, self.backends))

    def _on_timeout(self) -> None:
        self.busy = False
        self.generation += 1  # a late answer from the stuck probe is dropped
        self.refresh_button.setEnabled(True)
        self.status.setText(f"The probe did not answer within {self.timeout_s:g} s (a GPU tool or driver is stuck).")

    def _on_report(self, generation: int, report: ProbeReport) -> None:
        if generation != self.generation:
            return
        self.watchdog.stop()
        self.busy = False
        self.refresh_button.setEnabled(True)
        self.report = report
        took = time.perf_counter() - self.started
        when = time.strftime("%H:%M:%S")
        if report.found:
            self.status.setText(f"{len(report.devices)} device(s) read by {report.backend} at {when} ({took:.1f} s)")
        else:
            self.status.setText(f"No GPU found ({when})")
        self._rebuild_cards()
        self.probed.emit(report)

    def _toggle_auto(self) -> None:
        if self.auto_check.isChecked():
            self.auto_timer.start(self.interval.value() * 1000)
        else:
            self.auto_timer.stop()

    # -- devices ------------------------------------------------------------------------------------
    def _rebuild_cards(self) -> None:
        for card in self.cards:
            self.devices_box.removeWidget(card)
            card.deleteLater()
        self.cards = []
        report = self.report
        if report is None:
            return
        lines = "\n".join(f"  {'✓' if a.ok else '✗'} {a.line()}" for a in report.attempts)
        if report.found:
            self.empty.setText(f"Backends tried:\n{lines}")
            self.empty.setVisible(False)
        else:
            self.empty.setText(f"No GPU found. Tried:\n{lines}")
            self.empty.setVisible(True)
        for dev in report.devices:
            card = DeviceCard(dev)
            card.use_requested.connect(self.use_device)
            self.devices_box.addWidget(card)
            self.cards.append(card)
        self._update_cards()

    def _update_cards(self) -> None:
        per_device = self.model.breakdown.per_device
        missing = len(per_device) - len(self.cards)
        if self.cards and missing > 0:
            names = ", ".join(d.name for d in per_device[len(self.cards) :])
            self.plan_note.setText(
                f"The plan spreads over {len(per_device)} GPUs but only {len(self.cards)} "
                f"{'was' if len(self.cards) == 1 else 'were'} found here: "
                f"nothing to check {names} against."
            )
        self.plan_note.setVisible(bool(self.cards) and missing > 0)
        for i, card in enumerate(self.cards):
            plan_dev = per_device[i] if i < len(per_device) else None
            card.show_need(plan_dev.total_bytes if plan_dev else 0, plan_dev.name if plan_dev else None)

    def use_device(self, device: ProbedDevice) -> bool:
        """Set the plan's GPU to ``device`` with its exact memory (bandwidth from the catalogue)."""
        from kvdesk.core.probe.match import catalog_match

        plan = self.model.plan
        entry = catalog_match(device)
        bandwidth = entry.bandwidth_bytes_per_s if entry else plan.gpu.bandwidth_bytes_per_s
        spec = device.to_gpu_spec(bandwidth_bytes_per_s=bandwidth)
        if entry is None:
            spec = spec.model_copy(update={"note": spec.note + "; bandwidth kept from the previous GPU"})
        return self.model.set_plan(plan.model_copy(update={"gpu": spec, "gpu_preset_id": None}))


if __name__ == "__main__":
    from kvdesk.gui.preview import preview

    raise SystemExit(preview(ProbeTab))
