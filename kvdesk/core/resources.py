"""Find the shipped data folders (``presets/``, ``resources/``) wherever kvdesk runs from.

- installed wheel: hatch force-includes them as ``kvdesk/_data/<name>`` (pyproject.toml);
- source checkout / editable install: the top-level folders next to the ``kvdesk`` package;
- frozen bundle (PyInstaller): ``sys._MEIPASS/<name>`` (packaging/kvdesk.spec adds them there).
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

import kvdesk

_PACKAGE_DIR = Path(kvdesk.__file__).resolve().parent


def candidate_dirs(name: str) -> list[Path]:
    dirs = [_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parent / name]
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        dirs.insert(0, Path(frozen_root) / name)
    return dirs


@cache
def data_dir(name: str) -> Path:
    """The first existing shipped folder called ``name`` ('presets' or 'resources')."""
    for path in candidate_dirs(name):
        if path.is_dir():
            return path
    tried = ", ".join(str(p) for p in candidate_dirs(name))
    raise FileNotFoundError(f"kvdesk data folder '{name}' not found (tried {tried})")


def presets_dir() -> Path:
    return data_dir("presets")


def resources_dir() -> Path:
    return data_dir("resources")
