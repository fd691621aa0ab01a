"""The hosted-CI release workflow: three OSes, each building its installer and starting the installed app."""

from __future__ import annotations

import pytest

from .conftest import PACKAGING

yaml = pytest.importorskip("yaml")


def workflow() -> dict:
    return yaml.safe_load((PACKAGING / "release-workflow.yml").read_text(encoding="utf-8"))


def test_matrix_covers_linux_windows_macos() -> None:
    job = workflow()["jobs"]["installer"]
    oses = job["strategy"]["matrix"]["os"]
    assert any(o.startswith("ubuntu") for o in oses)
    assert any(o.startswith("windows") for o in oses)
    assert any(o.startswith("macos") for o in oses)
    assert job["env"]["QT_QPA_PLATFORM"] == "offscreen"


def test_each_os_builds_with_its_script_and_smokes_the_installed_app() -> None:
    steps = workflow()["jobs"]["installer"]["steps"]
    runs = {os_name: " ".join(s.get("run", "") for s in steps if os_name in s.get("if", "")) for os_name in
            ("Linux", "Windows", "macOS")}  # fmt: skip
    assert "packaging/linux/build.sh" in runs["Linux"] and "apt-get install -y ./dist/kvdesk_" in runs["Linux"]
    assert "packaging/windows/build.ps1" in runs["Windows"] and "/VERYSILENT" in runs["Windows"]
    assert "packaging/macos/build.sh" in runs["macOS"] and "hdiutil attach" in runs["macOS"]
    for os_name, text in runs.items():
        assert "--smoke" in text, os_name


def test_says_where_to_copy_it() -> None:
    head = (PACKAGING / "release-workflow.yml").read_text(encoding="utf-8").splitlines()[:8]
    assert any(".github/workflows/" in line for line in head)
