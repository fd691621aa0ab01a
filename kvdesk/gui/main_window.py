"""Main window — wiring only: the plan form (left), verdict banner and tabs (right), menus, drag & drop.

Panels live in their own files; tabs not shown at start are built on first show (startup stays light).
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

from PySide6.QtCore import QByteArray, QEvent
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QMainWindow, QSplitter, QTabWidget, QVBoxLayout, QWidget

from kvdesk.core.plan import Plan
from kvdesk.gui.documents import DocumentController, app_settings
from kvdesk.gui.form_scroll import FormScrollArea
from kvdesk.gui.lazy_tab import LazyTab
from kvdesk.gui.memory_chart import MemoryChart
from kvdesk.gui.plan_form import PlanForm
from kvdesk.gui.plan_model import PlanModel
from kvdesk.gui.theme import theme_manager
from kvdesk.gui.verdict_banner import VerdictBanner
from kvdesk.gui.window_actions import WindowActions

DROPPABLE = (".kvplan", ".json", ".gguf")


def _default_plan() -> Plan:
    from kvdesk.core.defaults import default_plan

    return default_plan()


class MainWindow(QMainWindow):
    def __init__(self, plan: Plan | None = None) -> None:
        super().__init__()
        self.first_paint_at: float | None = None  # time.monotonic() of the first paint
        self.model = PlanModel(plan or _default_plan(), self)
        self.docs = DocumentController(self.model, self)
        self.form = PlanForm(self.model)
        self.banner = VerdictBanner(self.model)
        self.chart = MemoryChart(self.model)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.chart, "Memory")
        self.lazy: dict[str, LazyTab] = {}
        self._add_lazy("sweep", "Sweep", "kvdesk.gui.sweep_tab", "SweepTab")
        self._add_lazy("explain", "Explain", "kvdesk.gui.explain_panel", "ExplainPanel")
        self._add_lazy("compare", "Compare", "kvdesk.gui.compare_tab", "CompareTab")
        if importlib.util.find_spec("kvdesk.gui.probe_tab") is not None:
            self._add_lazy("probe", "Probe", "kvdesk.gui.probe_tab", "ProbeTab")
        self.setCentralWidget(self._layout())
        self.actions_ = WindowActions(self, self.model, self.docs, lambda: self.chart)
        self.docs.message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.model.dirty_changed.connect(self._update_title)
        self.model.path_changed.connect(self._update_title)
        self.model.error_changed.connect(self._show_error)
        self.form.import_requested.connect(self.docs.import_dialog)
        self.setAcceptDrops(True)
        self.autosave: object | None = None
        self.start_autosave()  # at once: edits made before the event loop runs must be autosaved too
        self._update_title()
        self._restore_geometry()

    # -- construction ---------------------------------------------------------------------------
    def _layout(self) -> QWidget:
        scroll = FormScrollArea(self.form)
        right = QWidget()
        column = QVBoxLayout(right)
        column.setContentsMargins(6, 6, 6, 6)
        column.addWidget(self.banner)
        column.addWidget(self.tabs, 1)
        splitter = QSplitter()
        splitter.addWidget(scroll)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([max(380, scroll.sizeHint().width()), 820])
        return splitter

    def _add_lazy(self, key: str, title: str, module: str, cls: str) -> None:
        def build() -> QWidget:
            widget: QWidget = getattr(importlib.import_module(module), cls)(self.model)
            return widget

        tab = LazyTab(build)
        self.lazy[key] = tab
        self.tabs.addTab(tab, title)

    def panel(self, key: str) -> QWidget:
        """The real widget of a lazy tab (built if needed)."""
        return self.lazy[key].build()

    def start_autosave(self) -> None:
        if self.autosave is not None:
            return
        try:
            from kvdesk.gui.autosave_prompt import AutosaveBinding
        except ImportError:
            return
        self.autosave = AutosaveBinding(self.model)

    # -- documents ------------------------------------------------------------------------------
    def open_path(self, path: str | Path) -> bool:
        return self.docs.open_path(path)

    def _update_title(self) -> None:
        path = self.model.path
        name = path.name if path else "Untitled"
        self.setWindowTitle(f"{name}[*] — kvdesk")
        self.setWindowModified(self.model.dirty)

    def _show_error(self, error: str) -> None:
        if error:
            self.statusBar().showMessage(f"⚠ {error}")
        else:
            self.statusBar().clearMessage()

    # -- drag & drop ----------------------------------------------------------------------------
    @staticmethod
    def _dropped_path(event: QDragEnterEvent | QDropEvent) -> Path | None:
        mime = event.mimeData()
        if not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile():
                path = Path(url.toLocalFile())
                if path.is_dir() or path.suffix.lower() in DROPPABLE:
                    return path
        return None

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._dropped_path(event) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        path = self._dropped_path(event)
        if path is None:
            event.ignore()
            return
        event.acceptProposedAction()
        self.open_path(path)

    # -- window state ---------------------------------------------------------------------------
    def _restore_geometry(self) -> None:
        settings = app_settings()
        geometry = settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 800)
        # last: one restyle of the finished window costs less than polishing each widget under a stylesheet
        theme_manager().apply(str(settings.value("theme", "system")))

    def save_geometry(self) -> None:
        app_settings().setValue("window/geometry", self.saveGeometry())

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.docs.maybe_discard():
            event.ignore()
            return
        self.save_geometry()
        close = getattr(self.autosave, "close", None)
        if callable(close):
            close()
        event.accept()

    @property
    def painted(self) -> bool:
        return self.first_paint_at is not None

    def event(self, event: QEvent) -> bool:
        if event.type() in (QEvent.Type.Paint, QEvent.Type.UpdateRequest) and self.first_paint_at is None:
            self.first_paint_at = time.monotonic()  # system-wide clock: benchmarks/startup.py compares processes
        return super().event(event)
