"""No lost work, end to end with the real main window: a killed kvdesk's unsaved plan comes back at the
next start; an error in a slot shows the crash dialog while the window and its plan live on."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot

from kvdesk.core.autosave import recoverable
from kvdesk.gui import autosave_prompt
from kvdesk.gui.crash_dialog import CrashDialog

ROOT = Path(__file__).resolve().parent.parent.parent

CRASHING_APP = textwrap.dedent("""
    import os, signal
    from PySide6.QtCore import QTimer
    from kvdesk.gui.app import make_app
    from kvdesk.gui.main_window import MainWindow

    app = make_app()
    window = MainWindow()
    window.show()
    window.model.update_workload(context=54321, batch=3)   # unsaved edits ...
    window.model.update(gpu_count=2)

    def crash_once_autosaved():
        if window.autosave.autosaver.path.exists():
            os.kill(os.getpid(), signal.SIGKILL)              # ... then the process dies hard

    timer = QTimer()
    timer.timeout.connect(crash_once_autosaved)
    timer.start(20)
    QTimer.singleShot(30_000, app.quit)
    app.exec()
    raise SystemExit("autosave never happened")
""")


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_killed_app_plan_is_offered_back_at_next_start(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", CRASHING_APP], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr[-2000:]  # killed, as a crash would

    found, problems = recoverable()
    assert problems == [] and len(found) == 1
    assert (found[0].plan.workload.context, found[0].plan.workload.batch, found[0].plan.gpu_count) == (54321, 3, 2)

    # the next start: run_app's crash-safety step offers it and the window gets it back, unsaved
    from kvdesk.gui.app import _install_crash_safety
    from kvdesk.gui.main_window import MainWindow

    asked: list[str] = []
    monkeypatch.setattr(autosave_prompt, "ask_restore", lambda parent, item: asked.append(item.describe()) or True)
    window = MainWindow()
    qtbot.addWidget(window)
    monkeypatch.setattr(window.docs, "maybe_discard", lambda: True)  # no "save changes?" box at teardown
    hook = _install_crash_safety(window)
    try:
        assert len(asked) == 1
        assert window.model.plan.workload.context == 54321
        assert window.model.plan.gpu_count == 2
        assert window.model.dirty  # not silently treated as saved
        assert recoverable() == ([], [])  # offered once, then its file is gone
    finally:
        getattr(hook, "uninstall", lambda: None)()
        window.autosave.close()


@pytest.mark.qt_no_exception_capture
def test_error_in_the_real_window_shows_dialog_and_keeps_plan(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kvdesk.gui.app import _install_crash_safety
    from kvdesk.gui.main_window import MainWindow

    shown: list[str] = []
    monkeypatch.setattr(CrashDialog, "exec", lambda self: shown.append(self.report) or 0)
    window = MainWindow()
    qtbot.addWidget(window)
    monkeypatch.setattr(window.docs, "maybe_discard", lambda: True)  # no "save changes?" box at teardown
    window.show()
    hook = _install_crash_safety(window)
    try:
        assert window.model.update_workload(context=77777)

        def broken_slot() -> None:
            raise ZeroDivisionError("a bug in some panel")

        window.model.changed.connect(broken_slot)  # a buggy panel listening to the model
        window.model.update_workload(batch=5)
        qtbot.waitUntil(lambda: len(shown) >= 1, timeout=5000)
        window.model.changed.disconnect(broken_slot)

        assert "ZeroDivisionError: a bug in some panel" in shown[0]
        assert window.isVisible()
        assert (window.model.plan.workload.context, window.model.plan.workload.batch) == (77777, 5)
        assert window.autosave.autosaver.path.is_file()  # the hook autosaved at once
        ticks: list[int] = []
        QTimer.singleShot(0, lambda: ticks.append(1))
        qtbot.waitUntil(lambda: ticks == [1], timeout=5000)  # the event loop goes on
        assert window.model.update_workload(context=4096)
    finally:
        getattr(hook, "uninstall", lambda: None)()
        window.autosave.close()
