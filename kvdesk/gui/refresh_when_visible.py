"""RefreshWhenVisible: a tab that recomputes only while it is shown (one plan edit = one recompute
of the visible panels; hidden ones are marked stale and catch up when they are shown)."""

from __future__ import annotations

from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QWidget


class RefreshWhenVisible(QWidget):
    """Base for panels: call ``_changed`` on every model change, implement ``refresh``."""

    _stale = True

    def refresh(self) -> None:
        raise NotImplementedError

    def _changed(self) -> None:
        self._stale = True
        if self.isVisible():
            self.refresh()

    def showEvent(self, event: QShowEvent) -> None:
        if self._stale:
            self.refresh()
        super().showEvent(event)
