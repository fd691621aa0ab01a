"""Autosave of an unsaved plan and its recovery after a crash (core, no Qt)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kvdesk.core.autosave import Autosaver, autosave_dir, recoverable
from kvdesk.core.defaults import default_plan
from kvdesk.core.settings import data_dir

ROOT = Path(__file__).resolve().parent.parent.parent


def _crashing_child(env_data_dir: Path, notes: str, how: str = "exit") -> int:
    """A kvdesk process that autosaves a plan then dies without cleaning up; returns its pid."""
    code = textwrap.dedent(f"""
        import os, signal
        from kvdesk.core.autosave import Autosaver
        from kvdesk.core.defaults import default_plan
        plan = default_plan().model_copy(update={{"notes": {notes!r}}})
        Autosaver().save(plan, "/home/me/plans/big.kvplan")
        print(os.getpid(), flush=True)
        if {how!r} == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(3)
    """)
    env = {"KVDESK_DATA_DIR": str(env_data_dir), "PATH": "", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    return int(out.stdout.split()[0])


def test_autosave_lives_in_the_user_data_dir_and_is_cleared() -> None:
    saver = Autosaver()
    path = saver.save(default_plan())
    assert path.parent == data_dir() / "autosave" == autosave_dir()
    assert path.is_file()
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["plan"]["model"]["name"] == default_plan().model.name
    saver.clear()
    assert not path.exists()
    saver.clear()  # twice is fine


def test_a_running_session_is_not_offered_back() -> None:
    Autosaver().save(default_plan())
    assert recoverable() == ([], [])  # this process is alive: its autosave is not a crash


@pytest.mark.parametrize("how", ["exit", "kill"] if sys.platform != "win32" else ["exit"])
def test_plan_of_a_crashed_process_is_recovered(how: str) -> None:
    pid = _crashing_child(data_dir(), "unsaved work ✓", how)
    found, problems = recoverable()
    assert problems == []
    assert len(found) == 1
    item = found[0]
    assert item.plan == default_plan().model_copy(update={"notes": "unsaved work ✓"})
    assert item.source == "/home/me/plans/big.kvplan"
    assert f"session-{pid}-" in item.path.name
    assert "Llama 3.1 8B" in item.describe() and "big.kvplan" in item.describe()
    item.discard()
    assert recoverable() == ([], [])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\x01 not json", "not UTF-8|not valid JSON"),
        (b'{"kvdesk_autosave": 99, "plan": {}}', "not a kvdesk autosave file"),
        (b'{"kvdesk_autosave": 1, "plan": {"__class__": "os.system", "model": 1}}', "plan|model"),
        (b"[" * 100_000, "nested"),
    ],
)
def test_unreadable_autosave_files_are_reported_and_removed(content: bytes, message: str) -> None:
    folder = autosave_dir()
    folder.mkdir(parents=True)
    bad = folder / "session-0-deadbeef.json"  # pid 0: never a live kvdesk
    bad.write_bytes(content)
    found, problems = recoverable()
    assert found == []
    assert len(problems) == 1
    assert re.search(message, problems[0]), problems[0]
    assert not bad.exists()


def test_a_huge_autosave_file_is_refused_fast() -> None:
    folder = autosave_dir()
    folder.mkdir(parents=True)
    bad = folder / "session-0-huge.json"
    with open(bad, "wb") as fh:
        fh.truncate(10 << 30)
    found, problems = recoverable()
    assert found == [] and "too large" in problems[0]


def test_newest_first() -> None:
    import os

    folder = autosave_dir()
    for i, stamp in enumerate([100.0, 300.0, 200.0]):
        saver = Autosaver(folder)
        saver.path = folder / f"session-0-{i}.json"
        saver.save(default_plan().model_copy(update={"notes": str(stamp)}))
        doc = json.loads(saver.path.read_text(encoding="utf-8"))
        doc["saved_at"] = stamp
        saver.path.write_text(json.dumps(doc), encoding="utf-8")
    found, _ = recoverable()
    assert [r.plan.notes for r in found] == ["300.0", "200.0", "100.0"]
    assert os.listdir(folder)  # nothing removed just by listing
