"""No lost work: a process killed while saving leaves the old file or the new one, never a partial one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hardening.kill_save import run_kills

KILLS = 8  # per mode here; benchmarks/kill_save.py does hundreds


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["text", "plan"])
def test_kill_during_atomic_save_never_leaves_a_partial_file(mode: str, tmp_path: Path) -> None:
    stats = run_kills(mode, tmp_path, KILLS, seed=1)
    assert not stats.errors, stats.errors[:3]
    assert stats.kills == KILLS
    assert stats.corrupt == 0
    assert len(stats.versions_seen) == KILLS  # every kill left a complete version, and saving went on


@pytest.mark.slow
def test_the_harness_catches_a_non_atomic_writer(tmp_path: Path) -> None:
    """Control: the same kills against a plain ``write_text`` do leave partial files."""
    stats = run_kills("naive", tmp_path, 12, seed=1)  # ~half the kills corrupt it: P(none in 12) ≈ 0.02 %
    assert stats.corrupt >= 1, "killing a plain writer mid-write should have corrupted the file at least once"


def test_stale_temp_files_of_a_killed_save_are_cleaned_up(tmp_path: Path) -> None:
    import os
    import time

    from kvdesk.core.atomic import STALE_TEMP_S, atomic_write_text

    target = tmp_path / "plan.kvplan"
    stale, fresh, other = (tmp_path / ".plan.kvplan.abc.tmp", tmp_path / ".plan.kvplan.def.tmp",
                           tmp_path / ".other.kvplan.abc.tmp")
    for p in (stale, fresh, other):
        p.write_text("partial", encoding="utf-8")
    old = time.time() - STALE_TEMP_S - 60
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    atomic_write_text(target, "new")
    assert target.read_text(encoding="utf-8") == "new"
    assert not stale.exists()  # left by a killed save long ago
    assert fresh.exists()  # may belong to a save in progress
    assert other.exists()  # another file's
