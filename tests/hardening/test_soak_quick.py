"""A short run of benchmarks/soak.py: random edits through the real main window raise nothing and
make Qt print no warning (the 10,000-edit run and its memory figures are the benchmark's job)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.slow
def test_random_edits_raise_nothing_and_warn_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--edits", "150", "--warmup", "50", "--seed", "7"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["edits"] == 150
    assert result["exceptions"] == 0, proc.stderr[-3000:]
    assert result["qt_warnings"] == 0, proc.stderr[-3000:]
    kinds = result["edit_kinds"]
    assert kinds["spin"] > 0 and kinds["combo"] > 0  # the edits did reach the form's controls
