"""Qt widgets of kvdesk (PySide6 + pyqtgraph). Thin: each widget gets its model in the constructor."""
