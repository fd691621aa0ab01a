"""The GUI side of autosave: a dirty plan is written shortly after each edit, cleared once saved,
and a crashed session's plan is offered back at start."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from kvdesk.core.autosave import Autosaver, autosave_dir
from kvdesk.core.defaults import default_plan
from kvdesk.gui import autosave_prompt
from kvdesk.gui.autosave_prompt import AutosaveBinding, offer_recovery
from kvdesk.gui.plan_model import PlanModel


def _leave_crashed_autosave(notes: str, name: str) -> None:
    saver = Autosaver()
    saver.path = autosave_dir() / f"session-0-{name}.json"  # pid 0: no live process owns it
    saver.save(default_plan().model_copy(update={"notes": notes}))


def test_edits_are_autosaved_after_a_pause_and_cleared_on_save(qtbot: QtBot, tmp_path) -> None:
    model = PlanModel(default_plan())
    binding = AutosaveBinding(model, delay_ms=30)
    path = binding.autosaver.path
    assert not path.exists()  # a clean plan is not autosaved
    assert model.update_workload(context=16384)
    qtbot.waitUntil(path.exists, timeout=5000)
    assert binding.autosaver.saves == 1
    assert '"context": 16384' in path.read_text(encoding="utf-8")
    for ctx in (20000, 24000, 28000):  # a burst of edits: one write after the pause
        model.update_workload(context=ctx)
    qtbot.waitUntil(lambda: binding.autosaver.saves == 2, timeout=5000)
    assert '"context": 28000' in path.read_text(encoding="utf-8")
    model.mark_saved(tmp_path / "mine.kvplan")  # File ▸ Save
    assert not path.exists()
    binding.save_now()  # nothing unsaved: nothing written
    assert not path.exists()


def test_a_failed_autosave_is_reported_not_raised(qtbot: QtBot, tmp_path) -> None:
    model = PlanModel(default_plan())
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x", encoding="utf-8")
    binding = AutosaveBinding(model, Autosaver(blocker / "autosave"), delay_ms=10)
    model.update_workload(context=9000)
    binding.save_now()
    assert binding.errors and model.plan.workload.context == 9000


def test_close_removes_the_autosave(qtbot: QtBot) -> None:
    model = PlanModel(default_plan())
    binding = AutosaveBinding(model, delay_ms=10_000)
    model.update_workload(context=12345)
    binding.save_now()
    assert binding.autosaver.path.exists()
    binding.close()
    assert not binding.autosaver.path.exists()


def test_offer_recovery_restores_the_chosen_plan_and_discards_the_rest(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    _leave_crashed_autosave("older", "a")
    _leave_crashed_autosave("newer", "b")
    asked: list[str] = []

    def question(parent, title, text, *args):  # type: ignore[no-untyped-def]
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", question)
    chosen = offer_recovery(None)
    assert chosen is not None
    assert chosen.plan.notes in ("older", "newer")
    assert len(asked) == 1 and "did not close normally" in asked[0]
    assert list(autosave_dir().glob("*.json")) == []  # nothing offered twice


def test_declining_discards(qtbot: QtBot, monkeypatch: pytest.MonkeyPatch) -> None:
    _leave_crashed_autosave("unwanted", "c")
    monkeypatch.setattr(autosave_prompt, "ask_restore", lambda parent, item: False)
    assert offer_recovery(None) is None
    assert list(autosave_dir().glob("*.json")) == []


def test_nothing_to_offer_asks_nothing(qtbot: QtBot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(autosave_prompt, "ask_restore", lambda parent, item: pytest.fail("asked"))
    assert offer_recovery(None) is None
