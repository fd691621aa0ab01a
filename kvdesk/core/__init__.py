"""Pure-Python core of kvdesk: no Qt, no pyqtgraph (tests/core/test_no_qt.py enforces it)."""
