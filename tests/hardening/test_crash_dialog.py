"""The global exception hook: an error in a slot shows a dialog, kvdesk keeps running, the plan is kept."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from kvdesk.core.autosave import autosave_dir
from kvdesk.core.defaults import default_plan
from kvdesk.gui.autosave_prompt import AutosaveBinding
from kvdesk.gui.crash_dialog import CrashDialog, ExceptionHook, crash_report, install_exception_hook
from kvdesk.gui.plan_model import PlanModel

# pytest-qt installs its own hook to fail tests on errors in Qt callbacks; these tests install kvdesk's.
pytestmark = pytest.mark.qt_no_exception_capture


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list[CrashDialog]:
    dialogs: list[CrashDialog] = []

    def fake_exec(self: CrashDialog) -> int:
        self.shown_text = self.details.toPlainText()  # the dialog is deleted after exec returns
        dialogs.append(self)
        return 0

    monkeypatch.setattr(CrashDialog, "exec", fake_exec)
    return dialogs


@pytest.fixture
def hook_factory() -> Iterator[list[ExceptionHook]]:
    hooks: list[ExceptionHook] = []
    yield hooks
    for hook in hooks:
        hook.uninstall()


def _boom() -> None:
    raise RuntimeError("boom in a slot")


def test_error_in_a_slot_shows_the_dialog_and_keeps_the_plan(
    qtbot: QtBot, shown: list[CrashDialog], hook_factory: list[ExceptionHook], capsys: pytest.CaptureFixture[str]
) -> None:
    model = PlanModel(default_plan())
    binding = AutosaveBinding(model, delay_ms=60_000)
    assert model.update_workload(context=32768)  # an unsaved edit
    hook = install_exception_hook(keep_work=binding.save_now)
    hook_factory.append(hook)
    assert sys.excepthook == hook._hook

    QTimer.singleShot(0, _boom)
    qtbot.waitUntil(lambda: len(shown) == 1, timeout=5000)

    dialog = shown[0]
    assert "RuntimeError: boom in a slot" in dialog.report
    assert "_boom" in dialog.report  # the traceback names the function
    assert "kvdesk " in dialog.report.splitlines()[0]
    assert "boom in a slot" in dialog.shown_text
    # the work is kept: plan unchanged in memory and autosaved to disk right away
    assert model.plan.workload.context == 32768
    assert binding.autosaver.path.is_file()
    assert list(autosave_dir().glob("session-*.json")) == [binding.autosaver.path]
    # and kvdesk keeps running: the event loop still delivers events, edits still work
    ticks: list[int] = []
    QTimer.singleShot(0, lambda: ticks.append(1))
    qtbot.waitUntil(lambda: ticks == [1], timeout=5000)
    assert model.update_workload(context=65536)
    assert "boom in a slot" in capsys.readouterr().err  # also printed for logs


def test_copy_report_puts_the_details_on_the_clipboard(qtbot: QtBot) -> None:
    try:
        _boom()
    except RuntimeError as exc:
        report = crash_report(type(exc), exc, exc.__traceback__)
    dialog = CrashDialog("RuntimeError: boom <b>", report)
    qtbot.addWidget(dialog)
    dialog.copy_button.click()
    clipboard = QGuiApplication.clipboard()
    assert clipboard.text() == report
    assert dialog.copy_button.text() == "Copied"


def test_error_in_a_worker_thread_reaches_the_dialog(
    qtbot: QtBot, shown: list[CrashDialog], hook_factory: list[ExceptionHook]
) -> None:
    hook_factory.append(install_exception_hook())
    thread = threading.Thread(target=_boom, name="probe-worker")
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: len(shown) == 1, timeout=5000)
    assert "boom in a slot" in shown[0].report


def test_a_flood_of_errors_is_capped_and_a_failing_keep_work_is_survived(
    qtbot: QtBot, shown: list[CrashDialog], hook_factory: list[ExceptionHook]
) -> None:
    def broken_autosave() -> None:
        raise OSError("disk full")

    hook = install_exception_hook(keep_work=broken_autosave)
    hook_factory.append(hook)
    for _ in range(20):
        QTimer.singleShot(0, _boom)
    qtbot.waitUntil(lambda: len(hook.reports) == 20, timeout=5000)
    assert len(shown) == 5  # MAX_DIALOGS; the rest are printed only
    assert QApplication.instance() is not None


def test_uninstall_restores_previous_hooks(hook_factory: list[ExceptionHook]) -> None:
    before, before_thread = sys.excepthook, threading.excepthook
    hook = install_exception_hook()
    assert sys.excepthook != before
    hook.uninstall()
    assert sys.excepthook == before and threading.excepthook == before_thread


def test_keyboard_interrupt_goes_to_the_previous_hook(
    monkeypatch: pytest.MonkeyPatch, shown: list[CrashDialog], hook_factory: list[ExceptionHook]
) -> None:
    seen: list[type] = []
    monkeypatch.setattr(sys, "excepthook", lambda t, e, tb: seen.append(t))
    hook = install_exception_hook()
    hook_factory.append(hook)
    sys.excepthook(KeyboardInterrupt, KeyboardInterrupt(), None)
    assert seen == [KeyboardInterrupt] and shown == []
