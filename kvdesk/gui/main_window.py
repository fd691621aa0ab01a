"""Main window — wiring only (panels live in their own files)."""

from __future__ import annotations

from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QLabel, QMainWindow


class MainWindow(QMainWindow):
    def __init__(self) -> None:
        super().__init__()
        self.painted = False
        self.setWindowTitle("kvdesk")
        self.setCentralWidget(QLabel("kvdesk"))
        self.resize(1200, 780)

    def open_path(self, path: str) -> None:
        pass

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint or event.type() == QEvent.Type.UpdateRequest:
            self.painted = True
        return super().event(event)
