"""packaging/stubs/QtOpenGL.py stands in for PySide6.QtOpenGL in the bundle: pyqtgraph must import and
draw kvdesk's kinds of charts with it, and kvdesk must never switch pyqtgraph to OpenGL drawing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from .conftest import PACKAGING, ROOT

STUB = PACKAGING / "stubs" / "QtOpenGL.py"

# Child interpreter: the stub is installed as PySide6.QtOpenGL before anything imports pyqtgraph.
INSTALL_STUB = f"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location("PySide6.QtOpenGL", {str(STUB)!r})
stub = importlib.util.module_from_spec(spec)
spec.loader.exec_module(stub)
sys.modules["PySide6.QtOpenGL"] = stub
"""

DRAW_CHARTS = """
import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication

assert sys.modules["PySide6.QtOpenGL"].BUNDLE_STUB
app = QApplication([])
plot = pg.PlotWidget(background="w")
plot.plot(np.arange(50.0), np.arange(50.0) ** 0.5, pen=pg.mkPen("r", width=3))
plot.addItem(pg.BarGraphItem(x=[10, 20, 30], height=[2, 4, 6], width=5, brush="b"))
plot.addItem(pg.InfiniteLine(pos=25))
plot.resize(400, 300)
plot.show()
app.processEvents()
image = plot.grab().toImage()
colors = {image.pixelColor(x, y).name() for x in range(0, 400, 3) for y in range(0, 300, 3)}
assert QColor("blue").name() in colors and len(colors) > 3, sorted(colors)[:20]
try:
    sys.modules["PySide6.QtOpenGL"].QOpenGLBuffer
except AttributeError as err:
    print("stub says:", err)
print("drawn", len(colors))
"""


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=180)


def test_pyqtgraph_draws_curves_and_bars_with_the_stub() -> None:
    proc = _run(INSTALL_STUB + DRAW_CHARTS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "drawn" in proc.stdout
    assert "the kvdesk bundle leaves out Qt's OpenGL binding" in proc.stdout


def test_kvdesk_main_window_smoke_with_the_stub(tmp_path: Path) -> None:
    dirs = f"import os\nos.environ.update(KVDESK_CONFIG_DIR='{tmp_path}/c', KVDESK_DATA_DIR='{tmp_path}/d')\n"
    proc = _run(INSTALL_STUB + dirs + "from kvdesk.cli import main\nraise SystemExit(main(['--smoke']))")
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_kvdesk_never_turns_on_pyqtgraph_opengl() -> None:
    pattern = re.compile(r"useOpenGL|enableExperimental|QOpenGL|QtOpenGL|OpenGLHelpers")
    hits = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in (ROOT / "kvdesk").rglob("*.py")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert hits == [], f"the bundle replaces PySide6.QtOpenGL by packaging/stubs/QtOpenGL.py: {hits}"


def test_spec_replaces_the_binding_by_the_stub(bundle_filters: ModuleType) -> None:
    spec = (PACKAGING / "kvdesk.spec").read_text(encoding="utf-8")
    assert 'a.pure += [("PySide6.QtOpenGL", str(PACKAGING / "stubs" / "QtOpenGL.py"), "PYMODULE")]' in spec
    excluded = bundle_filters.excludes()
    assert "PySide6.QtOpenGL" in excluded
    assert "PySide6.QtOpenGLWidgets" not in excluded  # pyqtgraph subclasses QOpenGLWidget at import
