"""Cold start: ``kvdesk --smoke`` (real main window, first paint, exit) vs a minimal pyqtgraph window script,
both as whole processes, alternated in the same run so machine load hits both alike.

Target (issue 6): ratio ≤ 1.3. Prints progress, then ONE JSON object on the last line:
``kvdesk_median_s``, ``baseline_median_s``, ``ratio`` (whole processes, the target's measure), the same for
CPU seconds, ``first_paint_ratio`` (launch → first paint only: kvdesk's exit is faster than the baseline's
because it freezes its start-up objects out of the garbage collector, which the whole-process ratio also
counts), and the raw times.
"""

from __future__ import annotations

import compileall
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 11

# The baseline: the smallest program that does what kvdesk's start must do — import PySide6 and
# pyqtgraph, show a window with one plot, wait for its first paint, exit.
BASELINE = r"""
import sys
import time
from PySide6.QtCore import QEvent, QTimer
from PySide6.QtWidgets import QApplication
import pyqtgraph as pg

class Plot(pg.PlotWidget):
    painted = False
    def event(self, ev):
        if ev.type() in (QEvent.Type.Paint, QEvent.Type.UpdateRequest) and not Plot.painted:
            Plot.painted = True
            print(f"first_paint_monotonic {time.monotonic():.6f}")
        return super().event(ev)

app = QApplication(sys.argv[:1])
w = Plot()
w.plot([1, 3, 2, 4])
w.show()
t = QTimer()
t.timeout.connect(lambda: Plot.painted and app.exit(0))
t.start(5)
app.exec()
"""


def kvdesk_command() -> list[str]:
    exe = shutil.which("kvdesk", path=str(Path(sys.executable).parent)) or shutil.which("kvdesk")
    return [exe, "--smoke"] if exe else [sys.executable, "-m", "kvdesk", "--smoke"]


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict[str, str], cpu: list[float] | None = None,
          paint: list[float] | None = None) -> float:
    """Wall seconds of one whole process; its CPU seconds (user + sys) go to ``cpu``, the seconds from
    launch to its window's first paint (both read CLOCK_MONOTONIC, one clock for the whole system) to
    ``paint``."""
    cpu_before = _child_cpu()
    start, launched = time.perf_counter(), time.monotonic()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}")
    if cpu is not None:
        cpu.append(_child_cpu() - cpu_before)
    if paint is not None:
        stamps = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("first_paint_monotonic ")]
        if not stamps:
            raise SystemExit(f"{' '.join(cmd)} printed no first-paint time")
        paint.append(float(stamps[0]) - launched)
    return elapsed


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="kvdesk-startup-"))
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"),
               PYQTGRAPH_QT_LIB="PySide6", KVDESK_SMOKE_PRINT_PAINT_TIME="1",
               KVDESK_CONFIG_DIR=str(tmp / "config"), KVDESK_DATA_DIR=str(tmp / "data"))
    baseline_script = tmp / "baseline.py"
    baseline_script.write_text(BASELINE, encoding="utf-8")
    kv_cmd, base_cmd = kvdesk_command(), [sys.executable, str(baseline_script)]
    # Bytecode as an installed kvdesk has it (pip compiles wheels at install; an editable checkout writes its
    # __pycache__ on first start). Without this, a shell with PYTHONDONTWRITEBYTECODE=1 recompiles kvdesk's
    # sources on every start while the baseline's libraries are all compiled: not a like-for-like start.
    import kvdesk

    compileall.compile_dir(Path(kvdesk.__file__).parent, quiet=1)
    timed(kv_cmd, env)  # warm the OS file cache for both (a "cold" start here = a fresh process)
    timed(base_cmd, env)
    kv_times: list[float] = []
    base_times: list[float] = []
    kv_cpu: list[float] = []
    base_cpu: list[float] = []
    kv_paint: list[float] = []
    base_paint: list[float] = []
    for i in range(RUNS):
        pair = [(kv_cmd, kv_times, kv_cpu, kv_paint), (base_cmd, base_times, base_cpu, base_paint)]
        for cmd, sink, cpu, paint in pair if i % 2 == 0 else pair[::-1]:
            sink.append(timed(cmd, env, cpu, paint))
        print(f"run {i + 1}/{RUNS}: kvdesk {kv_times[-1]:.3f} s, baseline {base_times[-1]:.3f} s", file=sys.stderr)
    kv, base = statistics.median(kv_times), statistics.median(base_times)
    shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({
        "runs": RUNS,
        "kvdesk_median_s": round(kv, 3),
        "baseline_median_s": round(base, 3),
        "ratio": round(kv / base, 3),
        "target_ratio": 1.3,
        # CPU seconds (user + sys) of the same processes: less sensitive to other load on the machine
        "kvdesk_cpu_median_s": round(statistics.median(kv_cpu), 3),
        "baseline_cpu_median_s": round(statistics.median(base_cpu), 3),
        "cpu_ratio": round(statistics.median(kv_cpu) / statistics.median(base_cpu), 3),
        # launch → first paint of the window (the process exit is not in it): what a user waits for
        "kvdesk_first_paint_median_s": round(statistics.median(kv_paint), 3),
        "baseline_first_paint_median_s": round(statistics.median(base_paint), 3),
        "first_paint_ratio": round(statistics.median(kv_paint) / statistics.median(base_paint), 3),
        "kvdesk_s": [round(t, 3) for t in kv_times],
        "baseline_s": [round(t, 3) for t in base_times],
        "cpu_load_1min": round(os.getloadavg()[0], 2),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
