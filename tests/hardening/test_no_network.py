"""kvdesk never phones home: the CLI and the app run end to end with every socket blocked."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kvdesk.cli import main

ROOT = Path(__file__).resolve().parent.parent.parent

# sitecustomize for the app subprocess: any socket creation / connection / DNS lookup is recorded and
# refused; at exit, the list of attempts and any network-capable modules loaded are written out.
SITECUSTOMIZE = textwrap.dedent("""
    import atexit, json, os, socket, sys
    _attempts = []
    _out = os.environ["KVDESK_NET_REPORT"]

    def _refuse(what):
        def blocked(*args, **kwargs):
            _attempts.append(what + " " + repr(args)[:120])
            raise OSError("network blocked by kvdesk's no-network test")
        return blocked

    class _NoSocket(socket.socket):
        def __init__(self, *args, **kwargs):
            _refuse("socket")(*args)

    socket.socket = _NoSocket
    socket.create_connection = _refuse("create_connection")
    socket.getaddrinfo = _refuse("getaddrinfo")
    socket.gethostbyname = _refuse("gethostbyname")
    socket.socketpair = _refuse("socketpair")

    @atexit.register
    def _report():
        loaded = sorted(m for m in sys.modules
                        if m.split(".")[0] in ("urllib3", "requests", "httpx", "aiohttp")
                        or m in ("http.client", "urllib.request", "PySide6.QtNetwork", "ftplib", "smtplib"))
        with open(_out, "w") as fh:
            json.dump({"attempts": _attempts, "network_modules": loaded}, fh)
""")


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    attempts: list[str] = []

    def refuse(what: str):  # type: ignore[no-untyped-def]
        def blocked(*args: object, **kwargs: object) -> None:
            attempts.append(what)
            raise OSError("network blocked by test")
        return blocked

    for name in ("socket", "create_connection", "getaddrinfo", "gethostbyname", "socketpair"):
        monkeypatch.setattr(socket, name, refuse(name))
    return attempts


def _run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_calc_list_check_run_without_network(
    no_sockets: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "p.kvplan"
    code, out, err = _run_cli(["calc", "--model", "llama-3.1-8b", "--gpu", "rtx-4090", "--ctx", "32k",
                               "--json", "--save", str(plan)], capsys)
    assert code == 0, err
    assert json.loads(out)["kv_cache_bytes"] > 0
    code, out, err = _run_cli(["list", "models", "--json"], capsys)
    assert code == 0 and any(m["id"] == "llama-3.1-8b" for m in json.loads(out))
    code, out, err = _run_cli(["list", "gpus"], capsys)
    assert code == 0 and "rtx-4090" in out
    code, out, err = _run_cli(["check", str(plan), "--json"], capsys)
    assert code in (0, 1), err
    assert no_sockets == []


def test_the_block_is_real(no_sockets: list[str]) -> None:
    """Control: the fixture does refuse a connection attempt."""
    with pytest.raises(OSError, match="blocked"):
        socket.create_connection(("example.com", 80))
    assert no_sockets == ["create_connection"]


@pytest.mark.slow
def test_app_smoke_runs_without_network(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    report = tmp_path / "net.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
        "KVDESK_NET_REPORT": str(report),
        "KVDESK_CONFIG_DIR": str(tmp_path / "config"),
        "KVDESK_DATA_DIR": str(tmp_path / "data"),
        "QT_QPA_PLATFORM": "offscreen",
    }
    proc = subprocess.run([sys.executable, "-m", "kvdesk", "--smoke"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(report.read_text(encoding="utf-8"))
    assert result == {"attempts": [], "network_modules": []}, result
