"""User directories (config, data) — redirectable with KVDESK_CONFIG_DIR / KVDESK_DATA_DIR (tests do)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def config_dir() -> Path:
    override = os.environ.get("KVDESK_CONFIG_DIR")
    path = Path(override) if override else Path(platformdirs.user_config_dir("kvdesk", appauthor=False))
    return path


def data_dir() -> Path:
    override = os.environ.get("KVDESK_DATA_DIR")
    path = Path(override) if override else Path(platformdirs.user_data_dir("kvdesk", appauthor=False))
    return path
