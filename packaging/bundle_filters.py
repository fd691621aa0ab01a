"""What the PyInstaller bundle leaves out, kept apart from ``kvdesk.spec`` so tests can check it.

kvdesk uses QtCore/QtGui/QtWidgets, and pyqtgraph imports QtOpenGL, QtOpenGLWidgets, QtSvg and QtTest
when it loads (checked: ``sys.modules`` after ``import pyqtgraph`` and a shown ``PlotWidget``). pyqtgraph
imports QtOpenGL unconditionally but uses it only to draw with OpenGL, which kvdesk never turns on: the
spec puts a stand-in module in its place (packaging/stubs/QtOpenGL.py). OpenGLHelpers subclasses
QOpenGLWidget at import, so QtOpenGLWidgets (0.2 MB) stays; QtSvg and QtTest pyqtgraph imports inside
``try/except ImportError``, and QtTest only to patch ``QTest.qWait``, so QtTest goes. Every
other PySide6 module below is big and unused; ``tests/packaging/test_spec.py`` fails if kvdesk's own code
starts importing one of them, so a new import cannot silently break the frozen app.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

# PySide6 modules that kvdesk and pyqtgraph never import (QML/Quick alone is ~25 MB of libraries + qml/).
EXCLUDED_QT_MODULES: tuple[str, ...] = (
    "Qt3DAnimation", "Qt3DCore", "Qt3DExtras", "Qt3DInput", "Qt3DLogic", "Qt3DRender",
    "QtBluetooth", "QtCanvasPainter", "QtCharts", "QtConcurrent", "QtDataVisualization", "QtDBus", "QtDesigner",
    "QtGraphs", "QtGraphsWidgets", "QtHelp", "QtHttpServer", "QtLocation", "QtMultimedia",
    "QtMultimediaWidgets", "QtNetwork", "QtOpenGL", "QtNetworkAuth", "QtNfc", "QtPdf", "QtPdfWidgets",
    "QtPositioning", "QtQml", "QtQuick", "QtQuick3D", "QtQuickControls2", "QtQuickTest",
    "QtQuickWidgets", "QtRemoteObjects", "QtScxml", "QtSensors", "QtSerialBus", "QtSerialPort",
    "QtSpatialAudio", "QtSql", "QtStateMachine", "QtTest", "QtTextToSpeech", "QtUiTools", "QtWebChannel",
    "QtWebEngineCore", "QtWebEngineQuick", "QtWebEngineWidgets", "QtWebSockets", "QtWebView",
    "QtXml",
)  # fmt: skip

# Other packages that may sit in the build environment but are not used by the app at run time.
EXCLUDED_PACKAGES: tuple[str, ...] = (
    # other Qt bindings (pyqtgraph would try them if PySide6 failed)
    "PyQt5", "PyQt6", "PySide2",
    # test and dev tools of the build venv
    "pytest", "_pytest", "pytestqt", "hypothesis", "mypy", "ruff", "pip", "setuptools", "pkg_resources",
    "distutils", "IPython", "jedi",
    # big optional libraries: torch is an optional probe backend (kvdesk falls back to NVML / "no GPU")
    "torch", "scipy", "matplotlib", "pandas", "PIL", "OpenGL", "cupy", "h5py", "numba",
    # standard-library parts nothing in the app uses
    "tkinter", "_tkinter", "turtle", "turtledemo", "idlelib", "lib2to3", "pydoc_data", "ensurepip",
    "venv", "numpy.f2py", "numpy.distutils",
    # numpy.__config__ imports yaml only to pretty-print show_config(); the app has no network (ssl)
    "yaml", "_yaml", "ssl", "_ssl",
    # numpy 2 loads numpy.random lazily and only pyqtgraph's pseudoScatter (ScatterPlotWidget) uses it:
    # 2.5 MB; tests/packaging/test_spec.py fails if kvdesk itself starts using np.random
    "numpy.random",
    # numpy's own C test helpers, and the numpy subpackages numpy 2 loads lazily that neither kvdesk nor
    # pyqtgraph touches (masked arrays, polynomials, test utilities)
    "numpy._core._multiarray_tests", "numpy.testing", "numpy.ma", "numpy.polynomial",
    # pyqtgraph subpackages its PyInstaller hook pulls in through their *Template modules; `import
    # pyqtgraph` never loads them (checked in sys.modules after the main window is imported)
    "pyqtgraph.flowchart", "pyqtgraph.console", "pyqtgraph.canvas", "pyqtgraph.opengl",
    "pyqtgraph.examples",
    # reached only through numpy.testing/unittest or pydoc's web server, never at run time
    "unittest", "doctest", "pdb", "bdb", "asyncio", "_asyncio", "http.server", "xmlrpc", "webbrowser",
    "pydantic.mypy", "readline",
)  # fmt: skip


# PyInstaller runtime hooks the spec leaves out (it adds packaging/rthooks/pyi_rth_kvdesk_qt.py instead):
# - pyi_rth_pyside6 imports PySide6.QtCore before the app starts, so each CLI command loaded Qt and shiboken
#   (`kvdesk list models`: measured below in benchmarks/bundle.py's cli_s); the hook we add keeps its
#   QT_PLUGIN_PATH;
# - pyi_rth_multiprocessing imports multiprocessing (sockets, pickle, subprocess) at start to let
#   multiprocessing's child processes re-enter the frozen app; kvdesk starts none (tests/packaging/
#   test_spec.py fails if kvdesk imports multiprocessing or concurrent.futures).
DROPPED_RUNTIME_HOOKS: tuple[str, ...] = ("pyi_rth_pyside6", "pyi_rth_multiprocessing")


def without_dropped_runtime_hooks(scripts: Iterable[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """Filter ``Analysis.scripts`` (``(name, path, typecode)``): runtime hooks in DROPPED_RUNTIME_HOOKS go."""
    return [entry for entry in scripts if entry[0] not in DROPPED_RUNTIME_HOOKS]


def excludes() -> list[str]:
    """Module names for ``Analysis(excludes=...)``."""
    return [f"PySide6.{name}" for name in EXCLUDED_QT_MODULES] + list(EXCLUDED_PACKAGES)


# Data and binaries dropped from the collected TOC (destination paths, '/' separated).
# - translations: kvdesk installs no QTranslator, so Qt's own translations are never loaded;
# - qml/: only QtQml/QtQuick read it;
# - plugins kvdesk cannot use: SQL drivers, TLS/network information (no QtNetwork), Designer,
#   QML tooling, platform plugins for embedded/VNC targets and their input plugins (generic/:
#   evdev, TUIO); the GTK 3 platform theme (it would pull GTK, cairo and pango into the bundle; Qt
#   falls back to its own style and the xdg-desktop-portal theme/dialogs).
# PySide6 keeps Qt under PySide6/Qt/ on Linux and macOS, directly under PySide6/ on Windows.
_QT = r"(^|/)PySide6/(Qt/)?"
_DROP_PATTERNS: tuple[str, ...] = (
    _QT + r"translations/",
    _QT + r"qml/",
    _QT + r"plugins/(sqldrivers|tls|networkinformation|designer|qmltooling|qmllint)/",
    _QT + r"plugins/platforms/[^/]*(vnc|minimal|linuxfb|eglfs|vkkhrdisplay)[^/]*$",
    _QT + r"plugins/(egldeviceintegrations|generic)/",
    _QT + r"plugins/platformthemes/[^/]*gtk3[^/]*$",
    # image formats kvdesk neither reads nor writes (PNG is built into QtGui; SVG, ICO, JPEG stay)
    _QT + r"plugins/imageformats/[^/]*(tiff|webp|tga|wbmp|gif|icns)[^/]*$",
    # Wayland: no native Wayland plugin; on a Wayland desktop Qt falls back to xcb through XWayland
    # (QT_QPA_PLATFORM unset tries "wayland" then "xcb"). Saves 1.6 MB and keeps libwayland-* out of
    # the .deb's Depends (the build machine and CI need not have them to run dpkg-shlibdeps).
    _QT + r"plugins/(wayland-[a-z-]+)/",
    _QT + r"plugins/platforms/[^/]*wayland[^/]*$",
    # pyqtgraph's logo bitmaps: only pg.mkQApp() sets them as the window icon (kvdesk has its own);
    # peegee.svg stays because mkQApp() resolves the folder through it
    r"(^|/)pyqtgraph/icons/peegee/[^/]*\.png$",
    # libraries only the plugins dropped above link (TUIO touch -> Network, eglfs -> EglFS*, Wayland)
    # (Linux libQt6Network.so.6, Windows Qt6Network.dll, macOS QtNetwork.framework/…)
    r"(^|/)(lib)?Qt6?(Network|EglFSDeviceIntegration|EglFsKmsSupport|Wayland\w*|Wl\w+)(\.framework/|[^/]*$)",
)
_DROP_RE = re.compile("|".join(_DROP_PATTERNS))


def is_dropped(dest: str) -> bool:
    """True when a bundle path (``PySide6/Qt/translations/qt_de.qm``, …) is left out."""
    return bool(_DROP_RE.search(dest.replace("\\", "/")))


# Linux: the OS's own library folders (/usr/lib, /lib64, /usr/lib/x86_64-linux-gnu, …), not sub-folders
# such as /usr/lib/python3.11/lib-dynload.
_SYSTEM_LIB_DIR_RE = re.compile(r"^/(usr/)?lib(32|64)?(/[a-z0-9_]+-linux-gnu[a-z0-9_]*)?/?$")


def is_system_library(source: str) -> bool:
    """True for a Linux distribution library (X11, xcb, fontconfig, glib, dbus, libstdc++, …).

    The bundle uses the system's copies instead of shipping Debian 12's: they must match the host's
    display server, GPU driver and desktop, and the .deb declares them in ``Depends:`` (generated by
    dpkg-shlibdeps from the bundle's ELF files, packaging/linux/deb_depends.py). libpython stays
    bundled wherever it comes from: the bundle carries its own interpreter.
    """
    path = source.replace("\\", "/")
    folder, _, name = path.rpartition("/")
    return bool(_SYSTEM_LIB_DIR_RE.match(folder or "/")) and not name.startswith("libpython")


def keep(
    entries: Iterable[tuple[str, str, str]], drop_system_libs: bool = False
) -> list[tuple[str, str, str]]:
    """Filter a PyInstaller TOC (``(dest, source, typecode)`` triples), keeping what the app needs."""
    return [
        entry
        for entry in entries
        if not is_dropped(entry[0]) and not (drop_system_libs and is_system_library(entry[1]))
    ]


def _is_elf(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == b"\x7fELF"


def strippable(source: str) -> bool:
    """An ELF file worth stripping; never one vendored by auditwheel (``numpy.libs/``, …): those were
    rewritten by patchelf, and strip then breaks them ("ELF load command address/offset not
    page-aligned", seen here on numpy's OpenBLAS with PyInstaller's own ``strip=True``)."""
    path = Path(source)
    if any(part.endswith(".libs") for part in path.parts[:-1]):
        return False
    return path.is_file() and _is_elf(path)


def stripped_copies(entries: Iterable[tuple[str, str, str]], cache: Path) -> list[tuple[str, str, str]]:
    """Point ELF entries at copies stripped with ``strip --strip-unneeded`` (what Debian's dh_strip
    does to shared libraries); the debug info of a pyenv-built CPython alone is ~25 MB.
    Copies are cached under ``cache`` by source path, size and mtime."""
    strip = shutil.which("strip")
    out: list[tuple[str, str, str]] = []
    for dest, source, typecode in entries:
        if strip is None or not strippable(source):
            out.append((dest, source, typecode))
            continue
        stat = Path(source).stat()
        key = hashlib.sha1(f"{source}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
        target = cache / key / Path(source).name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            shutil.copy2(source, tmp)
            subprocess.run([strip, "--strip-unneeded", str(tmp)], check=True, capture_output=True)
            tmp.replace(target)
        out.append((dest, str(target), typecode))
    return out
