"""FormScrollArea: scrolls the plan form vertically, never clips it horizontally.

The form's minimum width changes with the engine (vLLM's settings need more room than llama.cpp's). A
plain QScrollArea with the horizontal bar off would cut the right edge of the spinboxes; this one reports
the form's minimum width (plus the vertical scroll bar) as its own, and asks its splitter for the room
again whenever the form's layout changes.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QSize, Qt
from PySide6.QtWidgets import QScrollArea, QStyle, QWidget


class FormScrollArea(QScrollArea):
    def __init__(self, form: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidget(form)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        form.installEventFilter(self)

    def _chrome_width(self) -> int:
        bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent, None, self)
        return bar + 2 * self.frameWidth()

    def minimumSizeHint(self) -> QSize:
        form = self.widget()
        base = super().minimumSizeHint()
        if form is None:
            return base
        return QSize(form.minimumSizeHint().width() + self._chrome_width(), base.height())

    def sizeHint(self) -> QSize:
        form = self.widget()
        base = super().sizeHint()
        if form is None:
            return base
        return QSize(max(form.sizeHint().width(), form.minimumSizeHint().width()) + self._chrome_width(),
                     base.height())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()  # the splitter re-reads minimumSizeHint and widens this side if needed
        return super().eventFilter(watched, event)
