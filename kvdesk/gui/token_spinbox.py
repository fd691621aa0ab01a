"""TokenSpinBox: a context-length spinbox that accepts ``32k`` / ``1M`` and steps through powers of two."""

from __future__ import annotations

import re

from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QAbstractSpinBox, QSpinBox, QWidget

from kvdesk.core.errors import InputError
from kvdesk.core.plan import MAX_CONTEXT
from kvdesk.core.units import format_tokens, parse_tokens

_PARTIAL = re.compile(r"^\s*[\d,]*(\.\d*)?\s*[kKmM]?\s*$")
_MAX_QT_INT = (1 << 31) - 1


def next_power_of_two(value: int, steps: int) -> int:
    """``steps`` powers of two up (positive) or down (negative) from ``value``."""
    v = max(1, int(value))
    for _ in range(abs(steps)):
        up = 1 << v.bit_length()
        down = 1 << (v.bit_length() - 1) if v & (v - 1) else v >> 1
        v = up if steps > 0 else max(1, down)
    return v


class TokenSpinBox(QSpinBox):
    def __init__(self, parent: QWidget | None = None, maximum: int = MAX_CONTEXT) -> None:
        super().__init__(parent)
        self.setRange(1, min(maximum, _MAX_QT_INT))
        self.setKeyboardTracking(False)
        self.setAccelerated(True)
        self.setCorrectionMode(QAbstractSpinBox.CorrectionMode.CorrectToPreviousValue)

    def textFromValue(self, value: int) -> str:
        return format_tokens(value).replace(",", "")

    def valueFromText(self, text: str) -> int:
        try:
            return parse_tokens(text.replace(",", "").strip())
        except InputError:
            return self.value()

    def validate(self, text: str, pos: int) -> tuple[QValidator.State, str, int]:
        clean = text.replace(",", "").strip()
        if not clean:
            return QValidator.State.Intermediate, text, pos
        if not _PARTIAL.match(clean):
            return QValidator.State.Invalid, text, pos
        try:
            value = parse_tokens(clean)
        except InputError:
            return QValidator.State.Intermediate, text, pos
        if self.minimum() <= value <= self.maximum():
            return QValidator.State.Acceptable, text, pos
        return QValidator.State.Intermediate, text, pos

    def stepBy(self, steps: int) -> None:
        target = next_power_of_two(self.value(), steps)
        self.setValue(max(self.minimum(), min(self.maximum(), target)))
