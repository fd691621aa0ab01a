"""At start, offer back a plan an earlier kvdesk left unsaved (it crashed or was killed).

``offer_recovery(parent)`` asks once per autosaved plan (newest first): *Restore* returns that plan,
*Discard* deletes it. ``AutosaveBinding`` keeps a window's autosave file up to date: it writes the
plan a moment after each change while the plan is unsaved, and removes the file once it is saved.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QMessageBox, QWidget

from kvdesk.core.autosave import Autosaver, Recovered, recoverable
from kvdesk.gui.plan_model import PlanModel

AUTOSAVE_DELAY_MS = 1500


def ask_restore(parent: QWidget | None, item: Recovered) -> bool:
    """True to restore ``item`` (tests patch ``QMessageBox.question``)."""
    answer = QMessageBox.question(
        parent,
        "Restore unsaved plan?",
        "kvdesk did not close normally last time. An unsaved plan was kept:\n\n"
        f"{item.describe()}\n\nRestore it?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.Yes,
    )
    return answer == QMessageBox.StandardButton.Yes


def offer_recovery(parent: QWidget | None = None) -> Recovered | None:
    """Ask about each autosaved plan; the one chosen is returned (its file removed), the rest discarded."""
    items, problems = recoverable()
    for problem in problems:
        print(f"kvdesk: an autosave file could not be read and was removed: {problem}", file=sys.stderr)
    chosen: Recovered | None = None
    for item in items:
        if chosen is None and ask_restore(parent, item):
            chosen = item
        item.discard()
    return chosen


class AutosaveBinding(QObject):
    """Autosave ``model``'s plan while it is dirty; clear it when saved or on ``close()``."""

    def __init__(self, model: PlanModel, autosaver: Autosaver | None = None, delay_ms: int = AUTOSAVE_DELAY_MS):
        super().__init__(model)
        self.model = model
        self.autosaver = autosaver or Autosaver()
        self.errors: list[str] = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self.save_now)
        model.changed.connect(self._on_changed)
        model.dirty_changed.connect(self._on_dirty)

    def _on_changed(self) -> None:
        if self.model.dirty:
            self._timer.start()

    def _on_dirty(self, dirty: bool) -> None:
        if not dirty:
            self._timer.stop()
            self.autosaver.clear()

    def save_now(self) -> None:
        """Write the plan now if it is unsaved (the crash hook calls this too). Never raises."""
        self._timer.stop()
        if not self.model.dirty:
            return
        try:
            self.autosaver.save(self.model.plan, self.model.path)
        except (OSError, ValueError) as exc:
            self.errors.append(str(exc))
            print(f"kvdesk: autosave failed: {exc}", file=sys.stderr)

    def close(self) -> None:
        """The window closes normally (after saving or discarding): nothing to recover."""
        self._timer.stop()
        self.autosaver.clear()
