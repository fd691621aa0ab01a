"""Fixtures for the main-window tests: a window on the generic engine, modal dialogs patched."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QFileDialog, QMessageBox

from kvdesk.core.catalog import find_gpu
from kvdesk.core.defaults import default_plan
from kvdesk.core.plan import Plan


@dataclass
class Dialogs:
    """Records every modal dialog a test would have shown, and answers it."""

    question_answer: QMessageBox.StandardButton = QMessageBox.StandardButton.Discard
    open_path: str = ""
    save_path: str = ""
    folder_path: str = ""
    shown: list[tuple[str, str, str]] = field(default_factory=list)

    def kinds(self) -> list[str]:
        return [k for k, _t, _x in self.shown]


@pytest.fixture
def dialogs(monkeypatch: pytest.MonkeyPatch) -> Dialogs:
    rec = Dialogs()

    def box(kind: str) -> Any:
        def show(_parent: object, title: str, text: str, *args: object) -> QMessageBox.StandardButton:
            rec.shown.append((kind, title, text))
            return rec.question_answer if kind == "question" else QMessageBox.StandardButton.Ok

        return show

    for kind in ("warning", "information", "question", "critical", "about"):
        monkeypatch.setattr(QMessageBox, kind, staticmethod(box(kind)))
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (rec.open_path, "") if rec.open_path else ("", "")))
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (rec.save_path, "") if rec.save_path else ("", "")))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: rec.folder_path))
    return rec


def generic_plan(context: int = 8192, batch: int = 1) -> Plan:
    """The default plan on the generic engine (exact textbook numbers)."""
    return default_plan().with_engine(name="generic").with_workload(context=context, batch=batch)


@pytest.fixture
def window(qtbot: Any, dialogs: Dialogs) -> Iterator[Any]:
    from kvdesk.gui.main_window import MainWindow

    win = MainWindow(generic_plan())
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.model.mark_saved(win.model.path or Path("unused.kvplan"))  # nothing to ask at teardown


def gpu_plan(plan: Plan, gpu_id: str) -> Plan:
    entry = find_gpu(gpu_id)
    return plan.model_copy(update={"gpu": entry.to_spec(), "gpu_preset_id": entry.id})
