"""The core and the CLI's calc path never import Qt or pyqtgraph (DESIGN.md §3, issue 3)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import kvdesk

ROOT = Path(kvdesk.__file__).resolve().parent
BLOCKER = textwrap.dedent(
    """
    import sys, importlib.abc
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph', 'PyQt5', 'PyQt6', 'PySide2'):
                raise ImportError('blocked Qt import: ' + name)
            return None
    sys.meta_path.insert(0, Block())
    """
)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCKER + code], capture_output=True, text=True, timeout=120)


def test_every_core_module_imports_without_qt() -> None:
    modules = sorted(
        "kvdesk." + ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in (ROOT / "core").rglob("*.py")
    )
    modules = [m.removesuffix(".__init__") for m in modules]
    result = _run("import importlib\n" + "\n".join(f"importlib.import_module({m!r})" for m in modules))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("argv", [["calc", "--model", "llama-3.1-8b", "--json"], ["list", "gpus"]])
def test_cli_headless_paths_run_without_qt(argv: list[str]) -> None:
    result = _run(f"from kvdesk.cli import main; raise SystemExit(main({argv!r}))")
    assert result.returncode == 0, result.stderr


def test_blocker_really_blocks(tmp_path: Path) -> None:
    # the guard itself must fail when Qt is imported, or the tests above prove nothing
    result = _run("import PySide6")
    assert result.returncode != 0 and "blocked Qt import" in result.stderr


def test_no_qt_import_statement_in_core_sources() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "core").rglob("*.py")
        if any(
            line.strip().startswith(("import PySide6", "from PySide6", "import pyqtgraph", "from pyqtgraph"))
            for line in p.read_text(encoding="utf-8").splitlines()
        )
    ]
    assert offenders == []
