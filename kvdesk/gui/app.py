"""QApplication setup and the ``kvdesk`` / ``kvdesk --smoke`` entry."""

from __future__ import annotations

import gc
import os
import sys
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import QApplication

from kvdesk import __version__

if TYPE_CHECKING:
    from kvdesk.gui.main_window import MainWindow


def make_app(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if isinstance(app, QApplication):
        return app
    QApplication.setApplicationName("kvdesk")
    QApplication.setOrganizationName("kvdesk")
    QApplication.setApplicationVersion(__version__)
    QApplication.setDesktopFileName("kvdesk")
    # HiDPI: fractional scale factors as the OS reports them (Qt 6 scales widgets and fonts itself)
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication(argv if argv is not None else sys.argv[:1])
    try:
        from kvdesk.core.resources import resources_dir

        icon = resources_dir() / "icons" / "kvdesk.svg"
        if icon.exists():
            app.setWindowIcon(QIcon(str(icon)))
    except FileNotFoundError:
        pass
    return app


def run_app(file: str | None = None, smoke: bool = False) -> int:
    app = make_app()
    from kvdesk.gui.main_window import MainWindow

    window = MainWindow()
    window.show()
    QTimer.singleShot(0, _resume_garbage_collection)
    if smoke:
        if file:
            window.open_path(file)
        return _smoke(app, window)
    hook = _install_crash_safety(window)
    app.installEventFilter(FileOpenFilter(window))
    if file:
        window.open_path(file)
    code = app.exec()
    del hook
    return code


def _resume_garbage_collection() -> None:
    """Once the window is up: move everything start-up made (modules, validators, widgets) out of the
    collector's sight for good (``gc.freeze``: later collections, e.g. between two edits, no longer walk
    them) and turn collection back on (``kvdesk.cli.main`` turned it off for the start)."""
    gc.freeze()
    gc.enable()


class FileOpenFilter(QObject):
    """macOS delivers a double-clicked ``.kvplan`` (or one dropped on the Dock icon) as a
    QEvent.FileOpen to the application, not as a command-line argument (Qt docs, QFileOpenEvent)."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.FileOpen:
            path = event.file()  # type: ignore[attr-defined]
            if path:
                self._window.open_path(path)
            return True
        return super().eventFilter(watched, event)


def _install_crash_safety(window: MainWindow) -> object:
    """Offer back a plan an earlier run left unsaved; route uncaught errors to a dialog (issue 10)."""
    try:
        from kvdesk.gui.autosave_prompt import offer_recovery
        from kvdesk.gui.crash_dialog import install_exception_hook
    except ImportError:
        return None
    recovered = offer_recovery(window)
    if recovered is not None:
        window.model.set_plan(recovered.plan)  # unsaved again: the title shows it, closing asks
    window.start_autosave()
    keep_work = getattr(window.autosave, "save_now", None)
    return install_exception_hook(keep_work, window)


def _smoke(app: QApplication, window: object) -> int:
    """Exit 0 once the window has painted for the first time (or 1 after 20 s)."""
    result = {"code": 1}

    def check() -> None:
        if getattr(window, "painted", False):
            result["code"] = 0
            app.exit(0)

    timer = QTimer()
    timer.timeout.connect(check)
    timer.start(5)
    QTimer.singleShot(20_000, app.quit)
    app.exec()
    painted_at = getattr(window, "first_paint_at", None)
    if os.environ.get("KVDESK_SMOKE_PRINT_PAINT_TIME") and painted_at is not None:
        print(f"first_paint_monotonic {painted_at:.6f}")  # read by benchmarks/startup.py
    return result["code"]
