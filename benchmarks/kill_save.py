"""Kill-during-save: SIGKILL a process that saves continuously, hundreds of times; count corrupt files.

    python benchmarks/kill_save.py [--kills 200]

Modes: ``text`` (4 MiB via kvdesk.core.atomic.atomic_write_text), ``plan`` (a 90k-character-notes
.kvplan via save_plan) and the control ``naive`` (truncate + chunked write, not atomic), which shows
the harness does catch partial files. Last line: ONE JSON object
``{"text": {"kills", "corrupt", "leftover_temp_files"}, "plan": {...}, "naive": {...}}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200, help="kills per mode (default 200)")
    parser.add_argument("--modes", default="text,plan,naive")
    args = parser.parse_args()

    from tests.hardening.kill_save import run_kills

    report = {}
    for mode in args.modes.split(","):
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"kvdesk-kill-{mode}-") as folder:
            stats = run_kills(mode, Path(folder), args.kills, seed=42)
        report[mode] = {
            "kills": stats.kills,
            "corrupt": stats.corrupt,
            "distinct_versions": len(stats.versions_seen),
            "leftover_temp_files": stats.leftover_temp_files,
            "seconds": round(time.perf_counter() - start, 1),
        }
        print(f"{mode}: {stats.kills} kills, {stats.corrupt} corrupt files", flush=True)
    print(json.dumps(report))
    atomic_ok = all(report[m]["corrupt"] == 0 for m in report if m != "naive")
    return 0 if atomic_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
