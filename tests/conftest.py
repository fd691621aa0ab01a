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


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


def load_validation(name: str) -> list[dict]:
    return json.loads((DATA / "validation" / name).read_text(encoding="utf-8"))
