"""The main window's menus and actions: File, Edit, View, Help, with the standard shortcuts.

``WindowActions`` owns every QAction (tests trigger them by attribute) and keeps their enabled state
in step with the PlanModel (undo/redo) and the recent-files list.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QActionGroup, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMenu, QMessageBox

from kvdesk.gui.documents import EXPORTS, DocumentController, app_settings
from kvdesk.gui.plan_model import PlanModel
from kvdesk.gui.theme import THEMES, theme_manager

Std = QKeySequence.StandardKey


class WindowActions(QObject):
    def __init__(self, window: QMainWindow, model: PlanModel, docs: DocumentController,
                 chart_widget: Callable[[], object]) -> None:
        super().__init__(window)
        self.window = window
        self.model = model
        self.docs = docs
        self._chart = chart_widget
        self.actions: dict[str, QAction] = {}
        bar = window.menuBar()
        self._file_menu(bar.addMenu("&File"))
        self._edit_menu(bar.addMenu("&Edit"))
        self._view_menu(bar.addMenu("&View"))
        self._help_menu(bar.addMenu("&Help"))
        model.history_changed.connect(self._update_history)
        docs.recent_changed.connect(self._fill_recent)
        self._update_history()
        self._fill_recent()

    def _add(self, menu: QMenu, key: str, text: str, slot: Callable[[], object],
             shortcut: QKeySequence.StandardKey | str | None = None, tip: str = "") -> QAction:
        action = QAction(text, self.window)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(lambda _checked=False: slot())
        menu.addAction(action)
        self.actions[key] = action
        return action

    # -- menus ----------------------------------------------------------------------------------
    def _file_menu(self, menu: QMenu) -> None:
        d = self.docs
        self._add(menu, "new", "&New", d.new, Std.New, "Start a new plan from the defaults")
        self._add(menu, "open", "&Open…", d.open_dialog, Std.Open, "Open a .kvplan, config.json or GGUF file")
        self.recent_menu = menu.addMenu("Open &Recent")
        self._add(menu, "import", "&Import Model…", d.import_dialog, "Ctrl+I",
                  "Read a model from a Hugging Face config.json or a GGUF file")
        self._add(menu, "import_folder", "Import Model &Folder…", lambda: d.import_dialog(folder=True), None,
                  "Read a model from a folder holding config.json (and safetensors for the exact size)")
        menu.addSeparator()
        self._add(menu, "save", "&Save", d.save, Std.Save, "Save the plan")
        self._add(menu, "save_as", "Save &As…", d.save_as, Std.SaveAs, "Save the plan under a new name")
        export = menu.addMenu("&Export")
        for target, (label, _filt) in EXPORTS.items():
            self._add(export, f"export_{target}", label, lambda t=target: d.export(t))  # type: ignore[misc]
        export.addSeparator()
        self._add(export, "export_png", "Chart as PNG…", lambda: self.export_chart("png"))
        self._add(export, "export_svg", "Chart as SVG…", lambda: self.export_chart("svg"))
        menu.addSeparator()
        self._add(menu, "quit", "&Quit", self.window.close, Std.Quit, "Close kvdesk")

    def _edit_menu(self, menu: QMenu) -> None:
        self._add(menu, "undo", "&Undo", self.model.undo, Std.Undo)
        self._add(menu, "redo", "&Redo", self.model.redo, Std.Redo)
        menu.addSeparator()
        self._add(menu, "copy_summary", "&Copy Summary", self.copy_summary, "Ctrl+Shift+C",
                  "Copy the breakdown as text")

    def _view_menu(self, menu: QMenu) -> None:
        theme_menu = menu.addMenu("&Theme")
        group = QActionGroup(self.window)
        current = str(app_settings().value("theme", "system"))
        for name in THEMES:
            action = self._add(theme_menu, f"theme_{name}", name.capitalize(),
                               lambda n=name: self.set_theme(n))  # type: ignore[misc]
            action.setCheckable(True)
            action.setChecked(name == current)
            group.addAction(action)

    def _help_menu(self, menu: QMenu) -> None:
        from kvdesk.gui import help_dialogs

        self._add(menu, "formulas", "&Formulas", lambda: help_dialogs.show_formulas(self.window), Std.HelpContents)
        self._add(menu, "about", "&About kvdesk", lambda: help_dialogs.show_about(self.window))

    # -- behaviour ------------------------------------------------------------------------------
    def _update_history(self) -> None:
        self.actions["undo"].setEnabled(self.model.can_undo)
        self.actions["redo"].setEnabled(self.model.can_redo)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        recent = self.docs.recent()
        for i, path in enumerate(recent):
            action = self.recent_menu.addAction(f"&{i + 1} {path.name}")
            action.setToolTip(str(path))
            action.triggered.connect(lambda _c=False, p=path: self.docs.open_path(p))
        if recent:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list").triggered.connect(self.docs.clear_recent)
        self.recent_menu.setEnabled(bool(recent))

    def set_theme(self, name: str) -> None:
        app_settings().setValue("theme", name)
        theme_manager().apply(name)
        if f"theme_{name}" in self.actions:
            self.actions[f"theme_{name}"].setChecked(True)

    def copy_summary(self) -> None:
        from kvdesk.core.report import summary_text

        text = summary_text(self.model.plan, self.model.breakdown)
        QGuiApplication.clipboard().setText(text)
        self.docs.message.emit("Summary copied")

    def export_chart(self, fmt: str) -> bool:
        chart = self._chart()
        filt = "PNG image (*.png)" if fmt == "png" else "SVG image (*.svg)"
        path, _ = QFileDialog.getSaveFileName(self.window, f"Export chart as {fmt.upper()}",
                                              str(Path.home() / f"kvdesk-memory.{fmt}"), filt)
        if not path:
            return False
        target = Path(path) if Path(path).suffix else Path(path).with_suffix(f".{fmt}")
        ok = save_chart(chart, target, fmt)
        if not ok:
            QMessageBox.warning(self.window, "Export failed", f"{target.name} could not be written.")
        else:
            self.docs.message.emit(f"Exported {target.name}")
        return ok


def save_chart(chart: object, path: Path, fmt: str) -> bool:
    """PNG: the plot as drawn (device pixels); SVG: the plot painted as vectors by QSvgGenerator.

    (pyqtgraph's own SVGExporter fails on bar charts with a pen-less legend sample in 0.14.)
    """
    plot = getattr(chart, "plot", None)
    if plot is None:
        return False
    if fmt == "png":
        return bool(plot.grab().save(str(path), "PNG"))
    from PySide6.QtCore import QRect
    from PySide6.QtGui import QPainter
    from PySide6.QtSvg import QSvgGenerator

    generator = QSvgGenerator()
    generator.setFileName(str(path))
    generator.setSize(plot.size())
    generator.setViewBox(QRect(0, 0, plot.width(), plot.height()))
    generator.setTitle("kvdesk memory chart")
    painter = QPainter(generator)
    try:
        plot.render(painter)
    finally:
        painter.end()
    return path.exists() and path.stat().st_size > 0
