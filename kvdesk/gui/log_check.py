"""LogCheckPanel: paste or open an engine startup log; its figures beside the plan's, and calibration.

Parsing is pure (``kvdesk.core.logparse``); this panel only shows the comparison and writes a
``Calibration`` into the plan through ``PlanModel.set_plan``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from kvdesk.core.errors import KvdeskError
from kvdesk.core.logparse import ObservedLog, parse_log, read_log_text
from kvdesk.core.logparse_compare import Figure, LogComparison, compare
from kvdesk.core.units import format_bytes
from kvdesk.gui.plan_model import PlanModel
from kvdesk.gui.theme import current_colors

EDITOR_LIMIT = 1 << 20  # bigger logs are parsed from disk, not loaded into the editor
COLUMNS = ("Figure", "Log", "Plan", "Difference")


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "bytes":
        return format_bytes(value)
    if unit == "x":
        return f"{value:,.2f}×"
    if unit == "bytes/token":
        return f"{value:,.0f} B/token"
    return f"{value:,.0f}"


def format_difference(fig: Figure) -> str:
    diff = fig.difference
    if diff is None:
        return "—"
    sign = "+" if diff > 0 else ("−" if diff < 0 else "±")
    text = sign + format_value(abs(diff), fig.unit)
    if fig.predicted:
        share = diff / fig.predicted
        text += " (±0.0%)" if abs(share) < 0.0005 else f" ({share:+.1%})".replace("-", "−")
    return text


class _Relay(QObject):
    parsed = Signal(int, object)  # generation, ObservedLog


class ParseJob(QRunnable):
    """Parses a big log off the UI thread (tens of MB take seconds)."""

    def __init__(self, generation: int, text: str, relay: _Relay) -> None:
        super().__init__()
        self.generation, self.text, self.relay = generation, text, relay

    def run(self) -> None:
        observed = parse_log(self.text)
        with contextlib.suppress(RuntimeError):  # the panel was closed meanwhile
            self.relay.parsed.emit(self.generation, observed)


class LogCheckPanel(QGroupBox):
    parsed = Signal()

    def __init__(self, plan_model: PlanModel, parent: QWidget | None = None) -> None:
        super().__init__("Reality check: the engine's startup log", parent)
        self.model = plan_model
        self.generation = 0
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.relay = _Relay(self)
        self.relay.parsed.connect(self._on_parsed)
        self.observed: ObservedLog | None = None
        self.comparison: LogComparison | None = None
        self.source = ""
        self._file_text: str | None = None
        self.editor = QPlainTextEdit()
        self.editor.setPlaceholderText(
            "Paste a llama.cpp, Ollama or vLLM startup log here (or open one): the lines with "
            "'buffer size', 'KV self size', 'Available KV cache memory', 'GPU KV cache size' …"
        )
        self.editor.setMaximumHeight(110)
        self.editor.textChanged.connect(self._text_edited)
        self.debounce = QTimer(self, singleShot=True, interval=250)
        self.debounce.timeout.connect(self.check)
        self.open_button = QPushButton("Open log…")
        self.open_button.clicked.connect(self.open_dialog)
        self.calibrate_button = QPushButton("Calibrate overhead")
        self.calibrate_button.setToolTip("Store the log's overhead in the plan, so the estimate matches this engine")
        self.calibrate_button.clicked.connect(self.calibrate)
        self.clear_button = QPushButton("Clear calibration")
        self.clear_button.clicked.connect(self.clear_calibration)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.calibration_label = QLabel()
        self.calibration_label.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2, 3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        buttons = QHBoxLayout()
        for w in (self.open_button, self.calibrate_button, self.clear_button):
            buttons.addWidget(w)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.editor)
        layout.addLayout(buttons)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.calibration_label)
        plan_model.changed.connect(self.refresh)
        self.refresh()

    # -- input --------------------------------------------------------------------------------------
    def _text_edited(self) -> None:
        self._file_text = None
        self.source = "pasted log"
        self.debounce.start()

    def set_text(self, text: str, source: str = "pasted log") -> None:
        """Show ``text`` (or a note when it is too big for the editor) and check it now."""
        big = len(text) > EDITOR_LIMIT
        self.editor.blockSignals(True)
        self.editor.setPlainText(f"({source}: {len(text) >> 20} MiB, read from disk)" if big else text)
        self.editor.blockSignals(False)
        self._file_text = text if big else None
        self.source = source
        self.check()

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open an engine log", "", "Logs (*.log *.txt);;All files (*)")
        if path:
            self.open_path(Path(path))

    def open_path(self, path: Path) -> bool:
        try:
            text = read_log_text(path)
        except KvdeskError as exc:
            self.summary.setText(str(exc))
            return False
        self.set_text(text, source=path.name)
        return True

    def check(self) -> None:
        """Parse the text now (small) or on a worker thread (big); ``parsed`` fires when done."""
        text = self._file_text if self._file_text is not None else self.editor.toPlainText()
        self.generation += 1
        if len(text) > EDITOR_LIMIT:
            self.summary.setText(f"Reading {self.source} ({len(text) >> 20} MiB)…")
            self.pool.start(ParseJob(self.generation, text, self.relay))
            return
        self._on_parsed(self.generation, parse_log(text) if text.strip() else None)

    def _on_parsed(self, generation: int, observed: ObservedLog | None) -> None:
        if generation != self.generation:
            return  # a newer text replaced this one
        self.observed = observed
        self.refresh()
        self.parsed.emit()

    # -- output -------------------------------------------------------------------------------------
    def refresh(self) -> None:
        plan = self.model.plan
        cal = plan.calibration
        self.calibration_label.setText(
            f"Calibrated from {cal.source or 'a log'}: overhead {'+' if cal.overhead_delta_bytes >= 0 else '−'}"
            f"{format_bytes(abs(cal.overhead_delta_bytes))}"
            if cal
            else "Not calibrated: overhead is kvdesk's estimate."
        )
        self.clear_button.setEnabled(cal is not None)
        obs = self.observed
        if obs is None:
            self.comparison = None
            self.summary.setText("No log yet.")
            self.table.setRowCount(0)
            self.calibrate_button.setEnabled(False)
            return
        self.comparison = compare(obs, plan, self.model.breakdown)
        head = f"{obs.engine} log · {obs.lines_matched} memory line(s) of {obs.lines_read}"
        self.summary.setText(" — ".join([head, *self.comparison.warnings]))
        self._fill_table(self.comparison)
        self.calibrate_button.setEnabled(self.comparison.calibration is not None)

    def _fill_table(self, comp: LogComparison) -> None:
        rows: list[tuple[str, Figure | None]] = [(f.label, f) for f in comp.figures]
        for dev in comp.per_device:
            where = dev.device + (f" ↔ {dev.plan_device}" if dev.plan_device else "")
            rows.append((where, None))
            rows += [(f"    {f.label}", f) for f in dev.figures]
        if comp.settings:
            rows.append(("Settings in the log", None))
            rows += [(f"    {f.label}", f) for f in comp.settings]
        self.table.setRowCount(len(rows))
        colors = current_colors()
        for r, (label, fig) in enumerate(rows):
            cells = [label, "", "", ""]
            if fig is not None:
                cells[1:] = [
                    format_value(fig.observed, fig.unit),
                    format_value(fig.predicted, fig.unit),
                    format_difference(fig),
                ]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if fig is None:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                elif c == 3 and fig.difference and fig.predicted and abs(fig.difference / fig.predicted) > 0.05:
                    item.setForeground(QColor(colors.tight))
                self.table.setItem(r, c, item)

    # -- calibration --------------------------------------------------------------------------------
    def calibrate(self) -> bool:
        comp = self.comparison
        if comp is None or comp.calibration is None:
            return False
        cal = comp.calibration.model_copy(update={"source": self.source or comp.calibration.source})
        return self.model.set_plan(self.model.plan.model_copy(update={"calibration": cal}))

    def clear_calibration(self) -> bool:
        return self.model.set_plan(self.model.plan.model_copy(update={"calibration": None}))


if __name__ == "__main__":
    from kvdesk.gui.preview import preview

    raise SystemExit(preview(LogCheckPanel))
