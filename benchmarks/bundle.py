"""Frozen-app size and start time: the PyInstaller one-folder bundle of packaging/kvdesk.spec.

Run alone: ``python benchmarks/bundle.py [--bundle DIR] [--rebuild] [--runs N]``. Builds the bundle into
build/bench-bundle/ unless one exists there (or at --bundle), then starts it ``--smoke`` offscreen N
times (the main window opens, paints once, exits), and runs the headless ``list models`` N times. Prints
a few readable lines, then ONE JSON object on the last line: ``bundle_mb`` (MiB, 2**20 bytes, of all
files: what ``du -sh --apparent-size`` shows), ``bundle_mb_decimal`` (10**6 bytes), ``files``,
``smoke_s`` (median wall time), ``smoke_cpu_s`` (median user+system CPU time: less sensitive to a busy
machine), ``cli_s`` / ``cli_cpu_s`` (the same for ``kvdesk list models``), ``build_s`` (when built
now). Targets (issue 9): bundle ≤ 150 MB, smoke ≤ 1 s.
Needs PyInstaller (``pip install -e .[packaging]``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIST = ROOT / "build" / "bench-bundle"


def build(dist: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN", "--distpath", str(dist),
         "--workpath", str(dist.parent / "bench-bundle-work"), str(ROOT / "packaging" / "kvdesk.spec")],
        check=True,
    )  # fmt: skip
    return time.perf_counter() - started


def folder_bytes(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]
    return sum(p.stat().st_size for p in files), len(files)


def smoke_once(exe: Path, env: dict[str, str], *args: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) for one start with ``args`` (default ``--smoke``)."""
    argv = [str(exe), *(args or ("--smoke",))]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"bundle {' '.join(argv[1:])} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description="kvdesk bundle size and --smoke start time")
    parser.add_argument("--bundle", type=Path, help="an existing one-folder bundle (folder holding kvdesk)")
    parser.add_argument("--rebuild", action="store_true", help="build even if a bundle exists")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    bundle = args.bundle or DEFAULT_DIST / "kvdesk"
    build_s = None
    if args.rebuild or not (bundle / "kvdesk").exists():
        if args.bundle:
            parser.error(f"no kvdesk executable in {bundle}")
        build_s = build(DEFAULT_DIST)
        print(f"built {bundle} in {build_s:.1f} s")
    exe = bundle / ("kvdesk.exe" if sys.platform == "win32" else "kvdesk")

    size, files = folder_bytes(bundle)
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
        for kind in ("CONFIG", "DATA", "STATE", "CACHE"):  # keep settings and autosaves out of $HOME
            env[f"XDG_{kind}_HOME"] = f"{home}/{kind.lower()}"
        env.update(KVDESK_CONFIG_DIR=f"{home}/kvdesk-config", KVDESK_DATA_DIR=f"{home}/kvdesk-data")
        smoke_once(exe, env)  # first start warms the page cache
        runs = [smoke_once(exe, env) for _ in range(args.runs)]
        cli = [smoke_once(exe, env, "list", "models") for _ in range(args.runs)]
    walls, cpus = [w for w, _ in runs], [c for _, c in runs]
    print(f"bundle: {size / 2**20:.1f} MiB ({size / 1e6:.1f} MB) in {files} files")
    print(f"--smoke wall: median {statistics.median(walls):.3f} s, min {min(walls):.3f} s over {len(walls)} runs")
    print(f"--smoke CPU:  median {statistics.median(cpus):.3f} s (user + system)")
    cli_wall, cli_cpu = statistics.median(w for w, _ in cli), statistics.median(c for _, c in cli)
    print(f"list models: median {cli_wall:.3f} s wall, {cli_cpu:.3f} s CPU")
    result = {
        "bundle_mb": round(size / 2**20, 1),
        "bundle_mb_decimal": round(size / 1e6, 1),
        "files": files,
        "smoke_s": round(statistics.median(walls), 3),
        "smoke_min_s": round(min(walls), 3),
        "smoke_cpu_s": round(statistics.median(cpus), 3),
        "cli_s": round(cli_wall, 3),
        "cli_cpu_s": round(cli_cpu, 3),
        "runs": len(walls),
        "build_s": None if build_s is None else round(build_s, 1),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
