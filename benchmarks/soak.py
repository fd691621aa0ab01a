"""Soak: 10,000 random edits through the real main window (offscreen); memory growth and Qt warnings.

    python benchmarks/soak.py [--edits 10000] [--seed 1]

Edits are what a user does with the plan form: spinboxes set to random values (extremes included),
combo entries chosen (engine switches, KV dtypes, weights formats, tri-state engine options), the
model and GPU pickers, checkboxes, undo/redo and tab switches. Each edit goes through the same
signals a user's click does, then events are processed (recompute + repaint).

RSS is read (after gc and glibc ``malloc_trim``, so allocator slack is not counted) after a warm-up
(lazy tabs built, caches filled), every 500 edits and at the end; ``rss_trend_mb_per_1k_edits`` is the
least-squares slope over those samples — a leak shows as a steady positive slope. Qt messages of level
warning and above are counted with ``qInstallMessageHandler``; exceptions raised in slots are
counted through ``sys.excepthook``. Last line: ONE JSON object with ``edits``, ``rss_growth_mb``,
``qt_warnings``, ``exceptions`` and details.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
_home = Path(tempfile.mkdtemp(prefix="kvdesk-soak-"))
os.environ["KVDESK_CONFIG_DIR"] = str(_home / "config")
os.environ["KVDESK_DATA_DIR"] = str(_home / "data")

# the offscreen platform plugin says this for every top-level window (same filter as pytest's config)
IGNORED_QT_MESSAGES = ("This plugin does not support propagateSizeHints",)


def _trim() -> None:
    """Hand freed heap pages back to the OS (glibc), so RSS shows live memory, not allocator slack."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def rss_mb() -> float:
    """Resident set size now, after gc and malloc_trim (Linux /proc; elsewhere the peak from getrusage)."""
    gc.collect()
    _trim()
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


class Counters:
    def __init__(self) -> None:
        self.qt_warnings: list[str] = []
        self.exceptions: list[str] = []

    def qt_message(self, mode, context, message: str) -> None:  # type: ignore[no-untyped-def]
        from PySide6.QtCore import QtMsgType

        if mode in (QtMsgType.QtWarningMsg, QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg) and not any(
            m in message for m in IGNORED_QT_MESSAGES
        ):
            self.qt_warnings.append(message)

    def excepthook(self, exc_type, exc, tb) -> None:  # type: ignore[no-untyped-def]
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        self.exceptions.append(text[-1500:])
        print(text, file=sys.stderr, flush=True)


def _slope(points: list[tuple[int, float]]) -> float | None:
    """Least-squares growth of RSS in MB per 1,000 edits (a leak shows as a steady positive slope)."""
    if len(points) < 3:
        return None
    import numpy as np

    x = np.array([n for n, _ in points], dtype=float) / 1000
    y = np.array([mb for _, mb in points], dtype=float)
    return round(float(np.polyfit(x, y, 1)[0]), 3)


def _last_half(samples: list[tuple[int, float]], end: float, edits: int) -> float | None:
    """RSS growth over the second half of the run: ≈ 0 once bounded caches are full, > 0 for a leak."""
    mid = [mb for n, mb in samples if n == (edits // 2) // 500 * 500]
    return round(end - mid[0], 2) if mid else None


def _no_modal_dialogs() -> None:
    """An edit must never block on a dialog: answer every modal one at once."""
    from PySide6.QtWidgets import QDialog, QFileDialog, QInputDialog, QMessageBox

    QDialog.exec = lambda self: 0  # type: ignore[method-assign]
    for name in ("information", "warning", "critical", "question"):
        setattr(QMessageBox, name, staticmethod(lambda *a, **k: QMessageBox.StandardButton.No))
    QFileDialog.getOpenFileName = staticmethod(lambda *a, **k: ("", ""))  # type: ignore[method-assign]
    QFileDialog.getSaveFileName = staticmethod(lambda *a, **k: ("", ""))  # type: ignore[method-assign]
    QInputDialog.getText = staticmethod(lambda *a, **k: ("", False))  # type: ignore[method-assign]


class Editor:
    """Random user edits on the window's form."""

    def __init__(self, window, rng: random.Random) -> None:  # type: ignore[no-untyped-def]
        from PySide6.QtWidgets import QAbstractSpinBox, QCheckBox, QComboBox

        from kvdesk.gui.search_picker import SearchPicker

        self.window, self.rng = window, rng
        form = window.form
        self.pickers = [p for p in form.findChildren(SearchPicker)]
        self.combos = [c for c in form.findChildren(QComboBox) if not isinstance(c, SearchPicker)]
        self.spins = [s for s in form.findChildren(QAbstractSpinBox) if hasattr(s, "setValue")]
        self.checks = form.findChildren(QCheckBox)
        self.tabs = [i for i in range(window.tabs.count()) if window.tabs.tabText(i).lower() != "probe"]
        self.kinds = {"spin": 0, "combo": 0, "picker": 0, "check": 0, "undo": 0, "tab": 0}

    def edit(self) -> None:
        r = self.rng.random()
        if r < 0.45 and self.spins:
            self._spin(self.rng.choice(self.spins))
        elif r < 0.75 and self.combos:
            self._combo(self.rng.choice(self.combos))
        elif r < 0.83 and self.pickers:
            self._picker(self.rng.choice(self.pickers))
        elif r < 0.90 and self.checks:
            box = self.rng.choice(self.checks)
            if box.isEnabled():
                box.setChecked(not box.isChecked())
            self.kinds["check"] += 1
        elif r < 0.97:
            model = self.window.model
            (model.undo if self.rng.random() < 0.6 else model.redo)()
            self.kinds["undo"] += 1
        else:
            self.window.tabs.setCurrentIndex(self.rng.choice(self.tabs))
            self.kinds["tab"] += 1

    def _spin(self, box) -> None:  # type: ignore[no-untyped-def]
        lo, hi = box.minimum(), box.maximum()
        choice = self.rng.random()
        if choice < 0.1:
            value = lo
        elif choice < 0.15:
            value = hi
        elif choice < 0.6:  # a nearby step, as arrows or the wheel would do
            value = box.value() + self.rng.choice([-1, 1]) * box.singleStep() * self.rng.randint(1, 4)
        elif isinstance(lo, float):
            value = self.rng.uniform(lo, hi)
        else:  # log-uniform: small values as likely as huge ones
            value = round(2 ** self.rng.uniform(0, max(1.0, float(int(hi).bit_length())))) + lo
        box.setValue(min(max(value, lo), hi))
        self.kinds["spin"] += 1

    def _combo(self, box) -> None:  # type: ignore[no-untyped-def]
        if box.count() and box.isEnabled():
            index = self.rng.randrange(box.count())
            box.setCurrentIndex(index)
            box.activated.emit(index)  # what Qt emits after a user's choice
        self.kinds["combo"] += 1

    def _picker(self, picker) -> None:  # type: ignore[no-untyped-def]
        ids = picker.ids()
        if ids:
            picker.pick(self.rng.choice(ids))
        self.kinds["picker"] += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=1_000, help="edits before the baseline RSS is read")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from PySide6.QtCore import qInstallMessageHandler

    counters = Counters()
    qInstallMessageHandler(counters.qt_message)
    sys.excepthook = counters.excepthook

    from kvdesk.gui.app import make_app
    from kvdesk.gui.main_window import MainWindow

    app = make_app()
    _no_modal_dialogs()
    rss_start = rss_mb()
    window = MainWindow()
    window.show()
    app.processEvents()
    for i in range(window.tabs.count()):  # build the lazy tabs now, not during the measured part
        if window.tabs.tabText(i).lower() != "probe":
            window.tabs.setCurrentIndex(i)
            app.processEvents()
    editor = Editor(window, random.Random(args.seed))
    print(f"controls: {len(editor.spins)} spinboxes, {len(editor.combos)} combos, {len(editor.pickers)} pickers, "
          f"{len(editor.checks)} checkboxes, {len(editor.tabs)} tabs", flush=True)

    start = time.perf_counter()
    rss_baseline = None
    samples = []
    errors_shown = 0
    for n in range(1, args.edits + 1):
        editor.edit()
        app.processEvents()
        if window.model.error:
            errors_shown += 1
        if n == args.warmup:
            app.processEvents()
            rss_baseline = rss_mb()
        if n % 500 == 0:
            samples.append((n, round(rss_mb(), 1)))
            if n % 1000 == 0:
                print(f"{n} edits, rss {samples[-1][1]} MB, {len(counters.qt_warnings)} Qt warnings, "
                      f"{len(counters.exceptions)} exceptions, {time.perf_counter() - start:.0f} s", flush=True)
    app.processEvents()
    rss_end = rss_mb()
    after = [(n, mb) for n, mb in samples if n >= args.warmup]
    slope = _slope(after)
    baseline = rss_baseline if rss_baseline is not None else rss_start
    for message in counters.qt_warnings[:5]:
        print(f"Qt warning: {message}", file=sys.stderr)
    for exc in counters.exceptions[:3]:
        print(f"exception in a slot:\n{exc}", file=sys.stderr)
    seconds = time.perf_counter() - start
    window.close()
    print(json.dumps({
        "edits": args.edits,
        "rss_growth_mb": round(rss_end - baseline, 2),
        "qt_warnings": len(counters.qt_warnings),
        "exceptions": len(counters.exceptions),
        "rss_start_mb": round(rss_start, 1),
        "rss_after_warmup_mb": round(baseline, 1),
        "rss_end_mb": round(rss_end, 1),
        "rss_trend_mb_per_1k_edits": slope,
        "rss_growth_last_half_mb": _last_half(samples, rss_end, args.edits),
        "rss_samples_mb": [mb for _, mb in samples],
        "edits_with_error_shown": errors_shown,
        "edit_kinds": editor.kinds,
        "seconds": round(seconds, 1),
        "ms_per_edit": round(1000 * seconds / max(args.edits, 1), 2),
    }))
    return 0 if not counters.exceptions else 1


if __name__ == "__main__":
    raise SystemExit(main())
