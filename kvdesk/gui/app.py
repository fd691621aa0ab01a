"""QApplication setup and the ``kvdesk`` / ``kvdesk --smoke`` entry."""

from __future__ import annotations

import sys

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from kvdesk import __version__


def make_app(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if isinstance(app, QApplication):
        return app
    QApplication.setApplicationName("kvdesk")
    QApplication.setOrganizationName("kvdesk")
    QApplication.setApplicationVersion(__version__)
    QApplication.setDesktopFileName("kvdesk")
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
    if file:
        window.open_path(file)
    window.show()
    if smoke:
        return _smoke(app, window)
    return app.exec()


def _smoke(app: QApplication, window: object) -> int:
    """Exit 0 once the window has painted for the first time (or 1 after 20 s)."""
    result = {"code": 1}

    def check() -> None:
        if getattr(window, "painted", False):
            result["code"] = 0
            app.quit()

    timer = QTimer()
    timer.timeout.connect(check)
    timer.start(5)
    QTimer.singleShot(20_000, app.quit)
    app.exec()
    return result["code"]
