"""A 10 GB file picked by mistake is refused in milliseconds by every file reader (sparse: no disk used)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kvdesk.core.errors import KvdeskError

FAST_S = 0.5  # generous for a loaded CI machine; a read of 10 GB would take tens of seconds


def _sparse(path: Path, size: int = 10 << 30) -> Path:
    with open(path, "wb") as fh:
        fh.truncate(size)
    return path


def _load_plan(p: Path) -> object:
    from kvdesk.core.planfile import load_plan

    return load_plan(p)


def _hf_config(p: Path) -> object:
    from kvdesk.core.importers.hf_config import import_hf_config

    return import_hf_config(p)


def _gguf(p: Path) -> object:
    from kvdesk.core.importers.gguf import import_gguf

    return import_gguf(p)


def _safetensors(p: Path) -> object:
    from kvdesk.core.importers.safetensors import read_safetensors_weights

    return read_safetensors_weights(p)


def _user_catalogue(p: Path) -> object:
    from kvdesk.core import catalog

    return catalog._read(p)


def _limits_json(p: Path) -> object:
    from kvdesk.core.limits import read_json

    return read_json(p)


def _autosave(p: Path) -> object:
    from kvdesk.core.autosave import recoverable

    found, problems = recoverable(p.parent)
    assert not found and problems, "a 10 GB autosave file must be refused"
    raise KvdeskError(problems[0])


READERS: dict[str, tuple[str, Callable[[Path], object]]] = {
    "kvplan": ("big.kvplan", _load_plan),
    "config.json": ("config.json", _hf_config),
    "gguf": ("model.gguf", _gguf),
    "safetensors": ("model.safetensors", _safetensors),
    "user catalogue": ("models.json", _user_catalogue),
    "limits.read_json": ("data.json", _limits_json),
    "autosave": ("session-0-big.json", _autosave),
}


@pytest.mark.parametrize("name", sorted(READERS))
def test_10gb_file_refused_fast(name: str, tmp_path: Path) -> None:
    filename, reader = READERS[name]
    (tmp_path / "warmup").mkdir()
    with pytest.raises(KvdeskError):  # once on an empty file first: imports are not what is timed
        reader(_sparse(tmp_path / "warmup" / filename, 0))
    path = _sparse(tmp_path / filename)
    start = time.perf_counter()
    with pytest.raises(KvdeskError) as info:
        reader(path)
    elapsed = time.perf_counter() - start
    assert elapsed < FAST_S, f"{name}: {elapsed:.2f} s to refuse a 10 GB file"
    assert str(info.value)


def test_log_file_is_read_only_up_to_its_limit(tmp_path: Path) -> None:
    """An engine log is read up to MAX_LOG_BYTES, never the whole 10 GB."""
    from kvdesk.core import logparse

    path = _sparse(tmp_path / "server.log")
    limit = 1 << 20
    start = time.perf_counter()
    text = logparse.read_log_text(path, limit=limit)
    assert len(text) <= limit
    assert time.perf_counter() - start < FAST_S


def test_cli_refuses_a_10gb_plan_fast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kvdesk.cli import main

    path = _sparse(tmp_path / "huge.kvplan")
    start = time.perf_counter()
    assert main(["check", str(path)]) == 2
    assert time.perf_counter() - start < FAST_S + 1  # includes importing the command
    assert "huge.kvplan" in capsys.readouterr().err


def test_gui_open_refuses_a_10gb_plan(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QMessageBox

    from kvdesk.core.defaults import default_plan
    from kvdesk.gui.documents import DocumentController
    from kvdesk.gui.plan_model import PlanModel

    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: warnings.append(text))
    model = PlanModel(default_plan())
    from PySide6.QtWidgets import QWidget

    window = QWidget()
    qtbot.addWidget(window)
    docs = DocumentController(model, window)
    before = model.plan
    start = time.perf_counter()
    assert docs.open_path(_sparse(tmp_path / "huge.kvplan")) is False
    assert time.perf_counter() - start < FAST_S
    assert warnings and "huge.kvplan" in warnings[0]
    assert model.plan == before
