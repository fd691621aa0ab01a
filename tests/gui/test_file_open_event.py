"""macOS hands a double-clicked .kvplan to the app as QFileOpenEvent: it must open the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtGui import QFileOpenEvent
from PySide6.QtWidgets import QApplication

from kvdesk.gui.app import FileOpenFilter


def test_file_open_event_opens_the_file(qtbot: Any, tmp_path: Path) -> None:
    from PySide6.QtWidgets import QWidget

    opened: list[str] = []

    class Window(QWidget):
        def open_path(self, path: str) -> None:
            opened.append(path)

    window = Window()
    qtbot.addWidget(window)
    app = QApplication.instance()
    assert app is not None
    filt = FileOpenFilter(window)  # type: ignore[arg-type]
    app.installEventFilter(filt)
    try:
        target = tmp_path / "plan.kvplan"
        QApplication.sendEvent(app, QFileOpenEvent(str(target)))
    finally:
        app.removeEventFilter(filt)
    assert opened == [str(target)]
