"""Stand-in for ``PySide6.QtOpenGL`` inside the kvdesk bundle (packaging/kvdesk.spec); the real binding is
8.9 MB.

pyqtgraph imports QtOpenGL when it loads (``PlotCurveItem``, ``PColorMeshItem`` and ``Qt.OpenGLHelpers``
call ``importlib.import_module("PySide6.QtOpenGL")``) but reads its attributes only when it draws with
OpenGL: a ``GraphicsView`` switched to an OpenGL viewport (``useOpenGL`` / ``enableExperimental``), which
kvdesk never does (``tests/packaging/test_qtopengl_stub.py`` checks both). Reaching for any name here
means that changed: the error says so instead of failing somewhere inside pyqtgraph.
"""

from __future__ import annotations

BUNDLE_STUB = True


def __getattr__(name: str) -> object:
    if name.startswith("__") and name.endswith("__"):  # import machinery probing dunders
        raise AttributeError(name)
    raise AttributeError(
        f"PySide6.QtOpenGL.{name}: the kvdesk bundle leaves out Qt's OpenGL binding "
        "(pyqtgraph's OpenGL drawing is off); see packaging/stubs/QtOpenGL.py"
    )
