"""Helpers for the packaging tests: import the build-time modules under packaging/ (not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"


def load(relative: str) -> ModuleType:
    """Import ``packaging/<relative>`` as a module (packaging/ is on sys.path for its own imports)."""
    path = PACKAGING / relative
    if str(PACKAGING) not in sys.path:
        sys.path.insert(0, str(PACKAGING))
    spec = importlib.util.spec_from_file_location(f"kvdesk_packaging_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def app_metadata() -> ModuleType:
    return load("app_metadata.py")


@pytest.fixture(scope="session")
def bundle_filters() -> ModuleType:
    return load("bundle_filters.py")


@pytest.fixture(scope="session")
def icu_data() -> ModuleType:
    return load("icu_data.py")


@pytest.fixture(scope="session")
def linux_package() -> ModuleType:
    return load("linux/package.py")
