"""The PyInstaller spec and its filters: data folders included, unused Qt left out, and never a module
that kvdesk itself imports (the heavy bundle build runs in packaging/linux/ci_check.sh, not here)."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import PACKAGING, ROOT

SPEC = (PACKAGING / "kvdesk.spec").read_text(encoding="utf-8")


def test_spec_bundles_presets_and_resources_under_their_names() -> None:
    datas = re.search(r"datas=\[(.*?)\n    \],", SPEC, re.DOTALL)
    assert datas, "Analysis(datas=[...]) not found"
    pairs = re.findall(r'\(str\(ROOT / "(\w+)"\), "(\w+)"\)', datas.group(1))
    # kvdesk/core/resources.py looks for sys._MEIPASS/presets and sys._MEIPASS/resources
    assert sorted(pairs) == [("presets", "presets"), ("resources", "resources")]


def test_spec_is_valid_python_and_builds_one_folder_plus_a_mac_bundle() -> None:
    tree = ast.parse(SPEC)
    calls = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert {"Analysis", "PYZ", "EXE", "COLLECT", "BUNDLE"} <= calls
    assert "exclude_binaries=True" in SPEC  # one-folder: binaries go to COLLECT, not into the exe
    assert 'make_exe("kvdeskw", console=False)' in SPEC  # Windows: windowed launcher for the Start menu


def kvdesk_imports() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "kvdesk").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_excluded_module_is_imported_by_kvdesk(bundle_filters: ModuleType) -> None:
    excluded = bundle_filters.excludes()
    clashes = sorted(
        name for name in kvdesk_imports() for ex in excluded if name == ex or name.startswith(ex + ".")
    )
    assert clashes == [], f"kvdesk imports modules the bundle leaves out: {clashes} (packaging/bundle_filters.py)"


def _imported_by_name() -> set[str]:
    """Module names kvdesk passes as a literal to ``importlib.import_module``: PyInstaller cannot see them."""
    names = set()
    for path in (ROOT / "kvdesk").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "import_module"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                names.add(node.args[0].value)
    return names


def test_modules_imported_by_name_are_bundled_or_deliberately_left_out(bundle_filters: ModuleType) -> None:
    hidden = re.search(r"^hidden \+= \[(.*?)\]", SPEC, re.MULTILINE)
    assert hidden, "hidden += [...] not found in the spec"
    listed = set(re.findall(r'"([\w.]+)"', hidden.group(1)))
    names = _imported_by_name()
    assert "pynvml" in names  # the probe's NVML backend: the check below must see it
    excluded = set(bundle_filters.excludes())
    missing = sorted(n for n in names if not n.startswith("kvdesk") and n not in listed and n not in excluded)
    assert missing == [], f"imported by name but neither in the spec's hidden imports nor excluded: {missing}"


def test_kvdesk_starts_no_processes_through_multiprocessing(bundle_filters: ModuleType) -> None:
    # the spec drops PyInstaller's pyi_rth_multiprocessing hook, which frozen multiprocessing children need
    assert "pyi_rth_multiprocessing" in bundle_filters.DROPPED_RUNTIME_HOOKS
    used = sorted(n for n in kvdesk_imports() if n.split(".")[0] == "multiprocessing" or n.startswith("concurrent"))
    assert used == [], f"kvdesk uses {used}: keep pyi_rth_multiprocessing (packaging/bundle_filters.py)"


def test_dropped_runtime_hooks_are_replaced(bundle_filters: ModuleType) -> None:
    scripts = [("pyi_rth_inspect", "/x/pyi_rth_inspect.py", "PYSOURCE"),
               ("pyi_rth_pyside6", "/x/pyi_rth_pyside6.py", "PYSOURCE"),
               ("pyi_rth_multiprocessing", "/x/pyi_rth_multiprocessing.py", "PYSOURCE"),
               ("pyi_rth_kvdesk_qt", "/p/pyi_rth_kvdesk_qt.py", "PYSOURCE"),
               ("launcher", "/p/launcher.py", "PYSOURCE")]  # fmt: skip
    kept = [name for name, _, _ in bundle_filters.without_dropped_runtime_hooks(scripts)]
    assert kept == ["pyi_rth_inspect", "pyi_rth_kvdesk_qt", "launcher"]
    assert "a.scripts = bundle_filters.without_dropped_runtime_hooks(a.scripts)" in SPEC
    assert 'runtime_hooks=[str(PACKAGING / "rthooks" / "pyi_rth_kvdesk_qt.py")]' in SPEC
    # the replacement keeps the plugin path of PyInstaller's hook
    assert "QT_PLUGIN_PATH" in (PACKAGING / "rthooks" / "pyi_rth_kvdesk_qt.py").read_text(encoding="utf-8")


def test_kvdesk_does_not_use_numpy_parts_the_bundle_leaves_out() -> None:
    pattern = re.compile(r"\b(np|numpy)\.(random|ma|polynomial|testing)\b")
    hits = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in (ROOT / "kvdesk").rglob("*.py")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert hits == [], f"numpy.random/ma/polynomial/testing are excluded from the bundle: {hits}"


def test_pyqtgraph_needs_are_kept(bundle_filters: ModuleType) -> None:
    # PySide6.QtOpenGL is replaced by a stand-in module (tests/packaging/test_qtopengl_stub.py)
    excluded = set(bundle_filters.excludes())
    for needed in ("PySide6.QtCore", "PySide6.QtGui", "PySide6.QtWidgets", "PySide6.QtOpenGLWidgets", "PySide6.QtSvg"):
        assert needed not in excluded


@pytest.mark.parametrize(
    ("dest", "dropped"),
    [
        ("PySide6/Qt/translations/qtbase_de.qm", True),
        ("PySide6\\translations\\qtbase_de.qm", True),  # Windows wheel layout
        ("PySide6/Qt/qml/QtQuick/Controls/qmldir", True),
        ("PySide6/Qt/plugins/sqldrivers/libqsqlite.so", True),
        ("PySide6/Qt/plugins/platforms/libqwayland.so", True),
        ("PySide6/Qt/plugins/platformthemes/libqgtk3.so", True),
        ("PySide6/Qt/plugins/imageformats/libqtiff.so", True),
        ("PySide6/Qt/lib/libQt6Network.so.6", True),
        ("PySide6\\Qt6Network.dll", True),
        ("PySide6/Qt/lib/QtNetwork.framework/Versions/A/QtNetwork", True),
        ("PySide6/Qt/lib/QtGui.framework/Versions/A/QtGui", False),
        ("PySide6/Qt/plugins/platforms/libqcocoa.dylib", False),
        ("pyqtgraph/icons/peegee/peegee_512px.png", True),
        ("PySide6/Qt/plugins/platforms/libqxcb.so", False),
        ("PySide6/Qt/plugins/platforms/libqoffscreen.so", False),
        ("PySide6\\plugins\\platforms\\qwindows.dll", False),
        ("PySide6/Qt/plugins/imageformats/libqsvg.so", False),
        ("PySide6/Qt/plugins/iconengines/libqsvgicon.so", False),
        ("PySide6/Qt/plugins/platformthemes/libqxdgdesktopportal.so", False),
        ("PySide6/Qt/lib/libQt6Gui.so.6", False),
        ("pyqtgraph/icons/peegee/peegee.svg", False),
        ("presets/models.json", False),
        ("resources/icons/kvdesk.svg", False),
    ],
)
def test_dropped_bundle_paths(bundle_filters: ModuleType, dest: str, dropped: bool) -> None:
    assert bundle_filters.is_dropped(dest) is dropped


@pytest.mark.parametrize(
    ("source", "system"),
    [
        ("/usr/lib/x86_64-linux-gnu/libX11.so.6", True),
        ("/lib/x86_64-linux-gnu/libglib-2.0.so.0", True),
        ("/usr/lib64/libfontconfig.so.1", True),
        ("/usr/lib/aarch64-linux-gnu/libxcb.so.1", True),
        ("/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0", False),  # the bundle's own interpreter
        ("/usr/lib/python3.11/lib-dynload/_ctypes.cpython-311-x86_64-linux-gnu.so", False),
        ("/opt/venv/lib/python3.11/site-packages/PySide6/Qt/lib/libQt6Core.so.6", False),
        ("/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0", False),
    ],
)
def test_system_libraries(bundle_filters: ModuleType, source: str, system: bool) -> None:
    assert bundle_filters.is_system_library(source) is system


def test_keep_filters_a_toc(bundle_filters: ModuleType) -> None:
    toc = [
        ("libX11.so.6", "/usr/lib/x86_64-linux-gnu/libX11.so.6", "BINARY"),
        ("PySide6/Qt/translations/qt_fr.qm", "/venv/PySide6/Qt/translations/qt_fr.qm", "DATA"),
        ("PySide6/Qt/lib/libQt6Core.so.6", "/venv/PySide6/Qt/lib/libQt6Core.so.6", "BINARY"),
    ]
    assert bundle_filters.keep(toc) == [toc[0], toc[2]]
    assert bundle_filters.keep(toc, drop_system_libs=True) == [toc[2]]


def test_auditwheel_vendored_libraries_are_never_stripped(bundle_filters: ModuleType, tmp_path: Path) -> None:
    vendored = tmp_path / "numpy.libs" / "libscipy_openblas.so"
    vendored.parent.mkdir()
    vendored.write_bytes(b"\x7fELF" + b"\0" * 60)
    plain = tmp_path / "pkg" / "ext.so"
    plain.parent.mkdir()
    plain.write_bytes(b"\x7fELF" + b"\0" * 60)
    text = tmp_path / "pkg" / "data.json"
    text.write_text("{}")
    assert not bundle_filters.strippable(str(vendored))
    assert bundle_filters.strippable(str(plain))
    assert not bundle_filters.strippable(str(text))
