"""Test configuration: offscreen Qt, config/data dirs redirected to a temp dir for every test."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# Set by the test config, not by the user (issue 3): no display is needed for any test.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path_factory.mktemp("kvdesk-home")
    monkeypatch.setenv("KVDESK_CONFIG_DIR", str(root / "config"))
    monkeypatch.setenv("KVDESK_DATA_DIR", str(root / "data"))


@pytest.fixture(autouse=True)
def _no_blocking_modal_dialogs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A modal dialog opened offscreen waits forever: answer every one at once instead.

    QMessageBox's static helpers return Discard/Ok and QDialog.exec returns Rejected. Tests that care about
    the answer use tests/gui/conftest.py's ``dialogs`` fixture, which overrides these per test.
    """
    from PySide6.QtWidgets import QDialog, QMessageBox

    def answer(kind: str):  # type: ignore[no-untyped-def]
        def show(*_args: object, **_kw: object) -> QMessageBox.StandardButton:
            return QMessageBox.StandardButton.Discard if kind == "question" else QMessageBox.StandardButton.Ok

        return staticmethod(show)

    for kind in ("warning", "information", "question", "critical"):
        monkeypatch.setattr(QMessageBox, kind, answer(kind))
    monkeypatch.setattr(QMessageBox, "about", staticmethod(lambda *_a, **_k: None))
    monkeypatch.setattr(QDialog, "exec", lambda self: int(QDialog.DialogCode.Rejected))
    monkeypatch.setattr(QMessageBox, "exec", lambda self: int(QMessageBox.StandardButton.Cancel))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


def load_validation(name: str) -> list[dict]:
    return json.loads((DATA / "validation" / name).read_text(encoding="utf-8"))
