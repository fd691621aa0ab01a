"""CLI: ``--rs-seq`` (llama.cpp n_rs_seq) multiplies the recurrent state of hybrid models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kvdesk.cli import main
from kvdesk.core.planfile import load_plan

CALC = ["calc", "--model", "qwen3.5-35b-a3b", "--vram-gib", "48", "--ctx", "8k", "--engine", "llama.cpp"]


def _json(capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, object]:
    assert main([*CALC, *extra, "--json"]) == 0
    data: dict[str, object] = json.loads(capsys.readouterr().out)
    return data


def test_rs_seq_multiplies_the_recurrent_state(capsys: pytest.CaptureFixture[str]) -> None:
    plain = _json(capsys)
    mtp = _json(capsys, "--rs-seq", "3")
    old = _json(capsys, "--rs-seq", "3", "--engine-version", "b9000")
    assert mtp["recurrent_state_bytes"] == 4 * plain["recurrent_state_bytes"]  # type: ignore[operator]
    assert old["recurrent_state_bytes"] == plain["recurrent_state_bytes"]  # no n_rs_seq before b9180
    assert mtp["kv_cache_bytes"] == plain["kv_cache_bytes"]


def test_rs_seq_survives_a_saved_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mtp.kvplan"
    assert main([*CALC, "--rs-seq", "2", "--save", str(path)]) == 0
    capsys.readouterr()
    assert load_plan(path).plan.engine.rs_seq == 2
    assert main([*CALC, "--save", str(tmp_path / "plain.kvplan")]) == 0
    saved = json.loads((tmp_path / "plain.kvplan").read_text(encoding="utf-8"))
    assert "rs_seq" not in saved["plan"]["engine"]  # unset: written exactly as before the field existed


def test_negative_rs_seq_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*CALC, "--rs-seq", "-1"]) == 2
    assert "rs_seq" in capsys.readouterr().err
