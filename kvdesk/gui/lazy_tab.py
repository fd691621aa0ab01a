"""LazyTab: a tab page that builds its real widget the first time it is shown (keeps startup light)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class LazyTab(QWidget):
    def __init__(self, factory: Callable[[], QWidget], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._factory = factory
        self.widget: QWidget | None = None
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)

    def build(self) -> QWidget:
        """The real widget, built now if it was not yet. A failing factory shows its error instead."""
        if self.widget is None:
            try:
                self.widget = self._factory()
            except (ImportError, RuntimeError, ValueError) as exc:
                self.widget = QLabel(f"This panel could not be opened: {exc}")
            self._layout.addWidget(self.widget)
        return self.widget

    def showEvent(self, event: QShowEvent) -> None:
        self.build()
        super().showEvent(event)
