"""The `kvdesk` executable: --version, --smoke, python -m kvdesk, headless errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from kvdesk import __version__


def _run(args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, **kw)  # type: ignore[call-overload, no-any-return]


def test_version_via_module() -> None:
    out = _run([sys.executable, "-m", "kvdesk", "--version"])
    assert out.returncode == 0
    assert out.stdout.strip() == f"kvdesk {__version__}"


def test_console_script_installed() -> None:
    exe = shutil.which("kvdesk", path=str(Path(sys.executable).parent))
    assert exe, "the kvdesk console script is not installed next to this python"
    out = _run([exe, "--version"])
    assert out.returncode == 0 and __version__ in out.stdout


def test_smoke_opens_the_main_window_and_exits_0() -> None:
    out = _run([sys.executable, "-m", "kvdesk", "--smoke"])
    assert out.returncode == 0, out.stderr


def test_bad_input_is_one_line_and_exit_2() -> None:
    out = _run([sys.executable, "-m", "kvdesk", "calc", "--model", "no-such-model"])
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "model" in out.stderr


def test_bad_flag_value_is_one_line_and_exit_2() -> None:
    out = _run([sys.executable, "-m", "kvdesk", "calc", "--model", "llama-3.1-8b", "--kv-dtype", "q9"])
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "--kv-dtype" in lines[0] and "q9" in lines[0]


def test_garbage_collection_is_back_on_once_the_window_is_up() -> None:
    """kvdesk.cli.main turns the collector off for start-up; the app must turn it back on (and freeze what
    start-up made) once its window is up, or a long session would never collect cyclic garbage."""
    code = (
        "import gc\nimport kvdesk.gui.app as app\norig = app._smoke\n"
        "def smoke(qapp, window):\n"
        "    code = orig(qapp, window)\n"
        "    print('during', gc.isenabled(), gc.get_freeze_count() > 0)\n"
        "    return code\n"
        "app._smoke = smoke\nfrom kvdesk.cli import main\ncode = main(['--smoke'])\n"
        "print('after', gc.isenabled())\nraise SystemExit(code)\n"
    )
    out = _run([sys.executable, "-c", code])
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["during", "True", "True", "after", "True"]
