"""Kill-during-save: a child process saves continuously and is killed (SIGKILL) at a random moment;
the target file must then hold one complete version — never a partial or mixed one.

Used by tests/hardening/test_kill_save.py (a few dozen kills) and benchmarks/kill_save.py (hundreds).
Run as a child: ``python -m tests.hardening.kill_save worker text|plan PATH``.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
TEXT_BYTES = 4 << 20  # 4 MiB per version: a write takes long enough to be interrupted
NOTES_CHARS = 90_000  # a .kvplan near the 100k-character notes limit


def text_version(i: int) -> str:
    """Version ``i`` of a big text file: header, payload derived from i, footer with its digest."""
    block = hashlib.sha256(str(i).encode()).hexdigest()
    payload = (block * (TEXT_BYTES // len(block) + 1))[:TEXT_BYTES]
    digest = hashlib.sha256(payload.encode()).hexdigest()
    return f"seq {i}\n{payload}\nend {i} {digest}\n"


def plan_notes(i: int) -> str:
    return f"version {i}\n" + (f"{i:08d}" * (NOTES_CHARS // 8))[: NOTES_CHARS - 20]


def _worker(mode: str, path: Path) -> None:
    if mode == "text":
        from kvdesk.core.atomic import atomic_write_text

        def save(i: int) -> None:
            atomic_write_text(path, text_version(i))
    elif mode == "naive":  # the control: a plain write, which a kill can leave half-written

        def save(i: int) -> None:  # truncate, then write in synced chunks (a slow disk, or a network share)
            data = text_version(i).encode()
            with path.open("wb") as fh:
                for pos in range(0, len(data), 512 << 10):
                    fh.write(data[pos : pos + (512 << 10)])
                    fh.flush()
                    os.fsync(fh.fileno())
    else:
        from kvdesk.core.defaults import default_plan
        from kvdesk.core.planfile import save_plan

        base = default_plan()

        def save(i: int) -> None:
            save_plan(path, base.model_copy(update={"notes": plan_notes(i)}))

    i = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    save(i)
    print("ready", flush=True)
    while True:
        i += 1
        save(i)


def verify(mode: str, path: Path) -> int:
    """The version the file holds; raises AssertionError if it is not one complete version."""
    if mode in ("text", "naive"):
        text = path.read_text(encoding="utf-8")
        first = text.split("\n", 1)[0]
        assert first.startswith("seq "), f"bad header {first[:40]!r}"
        i = int(first[4:])
        assert text == text_version(i), f"version {i} is incomplete or mixed ({len(text)} chars)"
        return i
    from kvdesk.core.planfile import load_plan

    notes = load_plan(path, recompute_now=False).plan.notes
    i = int(notes.split("\n", 1)[0].removeprefix("version "))
    assert notes == plan_notes(i), f"plan version {i} has wrong notes"
    return i


@dataclass
class KillStats:
    mode: str
    kills: int = 0
    versions_seen: set[int] = field(default_factory=set)
    corrupt: int = 0
    leftover_temp_files: int = 0
    errors: list[str] = field(default_factory=list)


def run_kills(mode: str, folder: Path, kills: int, max_delay_s: float = 0.15, seed: int = 0) -> KillStats:
    """Start a saving child, kill it after a random delay, check the file; ``kills`` times."""
    rng = random.Random(seed)
    path = folder / ("big.kvplan" if mode == "plan" else "big.txt")
    stats = KillStats(mode)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    start_at = 0
    for _ in range(kills):
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.hardening.kill_save", "worker", mode, str(path), str(start_at)],
            stdout=subprocess.PIPE, cwd=ROOT, env=env,
        )
        assert child.stdout is not None
        line = child.stdout.readline()
        if line.strip() != b"ready":
            child.kill()
            child.wait()
            stats.errors.append(f"worker did not start: {line!r}")
            continue
        time.sleep(rng.uniform(0, max_delay_s))
        child.kill()  # SIGKILL on POSIX, TerminateProcess on Windows
        child.wait()
        child.stdout.close()
        stats.kills += 1
        try:
            version = verify(mode, path)
        except Exception as exc:  # a corrupt file is what this counts
            stats.corrupt += 1
            stats.errors.append(f"{type(exc).__name__}: {exc}")
            continue
        stats.versions_seen.add(version)
        start_at = version + 1_000  # next child writes versions distinct from any earlier ones
    stats.leftover_temp_files = len([p for p in folder.iterdir() if p.name.endswith(".tmp")])
    return stats


if __name__ == "__main__" and len(sys.argv) >= 4 and sys.argv[1] == "worker":
    _worker(sys.argv[2], Path(sys.argv[3]))
