"""A global exception hook: an unexpected error shows a dialog with the details instead of killing kvdesk.

``install_exception_hook(keep_work)`` replaces ``sys.excepthook`` (PySide6 routes exceptions raised in
slots and event handlers there) and ``threading.excepthook``. On an error it first calls ``keep_work``
(the main window autosaves its plan), then shows ``CrashDialog``: what happened, the traceback, and
"Copy report" to paste into a bug report. kvdesk keeps running with the plan as it was.

Errors raised while the dialog itself is showing, or a flood of them, go to stderr only.
"""

from __future__ import annotations

import contextlib
import platform
import sys
import threading
import traceback
from collections.abc import Callable
from types import TracebackType

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import QObject, Qt, Signal, Slot, qVersion
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from kvdesk import __version__

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
MAX_DIALOGS = 5  # per session: after that, errors are only printed


def crash_report(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> str:
    """Plain-text report: versions and the traceback (no plan content, no paths beyond the traceback)."""
    lines = [
        f"kvdesk {__version__}",
        f"Python {platform.python_version()} ({platform.python_implementation()})",
        f"PySide6 {pyside_version}, Qt {qVersion()}",
        f"OS {platform.platform()}",
        "",
        "".join(traceback.format_exception(exc_type, exc, tb)).rstrip(),
    ]
    return "\n".join(lines) + "\n"


class CrashDialog(QDialog):
    def __init__(self, summary: str, report: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.report = report
        self.setWindowTitle("kvdesk — unexpected error")
        self.setObjectName("crashDialog")
        label = QLabel(
            f"<b>Something went wrong:</b> {_escape(summary)}<br>"
            "Your plan is kept (and autosaved); you can go on working or save it now.<br>"
            "Please send the report below with a bug report."
        )
        label.setWordWrap(True)
        label.setTextFormat(Qt.TextFormat.RichText)
        self.details = QPlainTextEdit(report)
        self.details.setReadOnly(True)
        self.details.setObjectName("crashDetails")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = QPushButton("Copy report")
        self.copy_button.setObjectName("copyReport")
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(self.copy_report)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(label)
        layout.addWidget(self.details)
        layout.addWidget(buttons)
        self.resize(640, 420)

    def copy_report(self) -> None:
        clipboard = QGuiApplication.clipboard()
        if clipboard is not None:
            clipboard.setText(self.report)
        self.copy_button.setText("Copied")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _Relay(QObject):
    """Carries errors from worker threads to the GUI thread."""

    raised = Signal(object)


class ExceptionHook:
    """The installed hook; ``uninstall()`` puts the previous hooks back (tests do)."""

    def __init__(self, keep_work: Callable[[], object] | None = None, parent: QWidget | None = None) -> None:
        self.keep_work = keep_work
        self.parent = parent
        self.reports: list[str] = []
        self._showing = False
        self._previous = sys.excepthook
        self._previous_thread = threading.excepthook
        self._relay = _Relay()
        self._relay.raised.connect(self._handle, Qt.ConnectionType.QueuedConnection)

    def install(self) -> ExceptionHook:
        sys.excepthook = self._hook
        threading.excepthook = self._thread_hook
        return self

    def uninstall(self) -> None:
        if sys.excepthook == self._hook:
            sys.excepthook = self._previous
        if threading.excepthook == self._thread_hook:
            threading.excepthook = self._previous_thread

    # -- hooks -------------------------------------------------------------------------------------
    def _hook(self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt | SystemExit):
            self._previous(exc_type, exc, tb)
            return
        if QApplication.instance() is None:
            self._previous(exc_type, exc, tb)
            return
        if threading.current_thread() is not threading.main_thread():
            self._relay.raised.emit((exc_type, exc, tb))
            return
        self._handle((exc_type, exc, tb))

    def _thread_hook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None:
            return
        self._relay.raised.emit((args.exc_type, args.exc_value, args.exc_traceback))

    @Slot(object)
    def _handle(self, info: ExcInfo) -> None:
        exc_type, exc, tb = info
        report = crash_report(exc_type, exc, tb)
        self.reports.append(report)
        print(report, file=sys.stderr)
        if self.keep_work is not None:
            try:
                self.keep_work()
            except Exception as err:  # the hook must never raise
                print(f"kvdesk: could not autosave after the error: {err!r}", file=sys.stderr)
        if self._showing or len(self.reports) > MAX_DIALOGS or QApplication.instance() is None:
            return
        self._showing = True
        try:
            summary = f"{exc_type.__name__}: {exc}" if str(exc) else exc_type.__name__
            self.show_dialog(summary[:500], report)
        finally:
            self._showing = False

    def show_dialog(self, summary: str, report: str) -> None:
        """Modal dialog (tests patch ``CrashDialog.exec``)."""
        dialog = CrashDialog(summary, report, self.parent)
        with contextlib.suppress(RuntimeError):
            dialog.exec()
        dialog.deleteLater()


def install_exception_hook(
    keep_work: Callable[[], object] | None = None, parent: QWidget | None = None
) -> ExceptionHook:
    """Install the global hook; keep the returned object alive (the main window holds it)."""
    return ExceptionHook(keep_work, parent).install()

