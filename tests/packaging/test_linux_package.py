"""packaging/linux/package.py: the .deb layout, control file, Depends parsing, and the launcher."""

from __future__ import annotations

import email.parser
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

SHLIBDEPS_OUTPUT = "shlibs:Depends=libc6 (>= 2.35), libxcb-cursor0 (>= 0.0.99), libgl1\n"


def fake_bundle(tmp_path: Path) -> Path:
    """A stand-in for dist/kvdesk: an executable that prints its arguments and where it runs from."""
    bundle = tmp_path / "dist" / "kvdesk"
    (bundle / "_internal").mkdir(parents=True)
    exe = bundle / "kvdesk"
    exe.write_text('#!/bin/sh\necho "ran $0 $*"\n', encoding="utf-8")
    exe.chmod(0o755)
    (bundle / "_internal" / "base_library.zip").write_bytes(b"PK")
    return bundle


def test_parse_shlibs_output(linux_package: ModuleType) -> None:
    assert linux_package.parse_shlibs_output(SHLIBDEPS_OUTPUT) == "libc6 (>= 2.35), libxcb-cursor0 (>= 0.0.99), libgl1"
    assert linux_package.parse_shlibs_output("") == ""


def test_parse_depends_groups_alternatives_and_versions(linux_package: ModuleType) -> None:
    field = "libc6 (>= 2.35), libx11-6, fonts-dejavu-core | fonts-noto-core, zlib1g:amd64 (>= 1:1.2)"
    assert linux_package.parse_depends(field) == [
        [("libc6", ">= 2.35")],
        [("libx11-6", None)],
        [("fonts-dejavu-core", None), ("fonts-noto-core", None)],
        [("zlib1g", ">= 1:1.2")],
    ]
    with pytest.raises(ValueError, match="unreadable"):
        linux_package.parse_depends("libc6 (>= 2.35")


def test_control_file_is_valid_deb822_with_fonts_and_shlibs(linux_package: ModuleType) -> None:
    text = linux_package.control_text("0.1.0", "amd64", "libc6 (>= 2.35), libgl1", 153_000)
    fields = email.parser.Parser().parsestr(text)
    assert fields["Package"] == "kvdesk" and fields["Version"] == "0.1.0" and fields["Architecture"] == "amd64"
    assert fields["Installed-Size"] == "153000"
    assert fields["Depends"].startswith("libc6 (>= 2.35), libgl1, fonts-dejavu-core")
    # extended description lines start with one space, and the file ends with a newline
    body = text.split("Description: ", 1)[1].splitlines()[1:]
    assert body and all(line.startswith(" ") for line in body)
    assert text.endswith("\n")


def test_deb_tree_layout(linux_package: ModuleType, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    linux_package.stage_deb_tree(fake_bundle(tmp_path), tree)
    expected = [
        "usr/bin/kvdesk",
        "usr/lib/kvdesk/kvdesk",
        "usr/lib/kvdesk/_internal/base_library.zip",
        "usr/share/applications/kvdesk.desktop",
        "usr/share/mime/packages/kvdesk.xml",
        "usr/share/icons/hicolor/scalable/apps/kvdesk.svg",
        "usr/share/icons/hicolor/48x48/apps/kvdesk.png",
        "usr/share/icons/hicolor/256x256/apps/kvdesk.png",
        "usr/share/doc/kvdesk/copyright",
    ]
    for rel in expected:
        assert (tree / rel).is_file(), rel
    assert os.access(tree / "usr/bin/kvdesk", os.X_OK)
    assert oct((tree / "usr/share/applications/kvdesk.desktop").stat().st_mode & 0o777) == "0o644"


def test_launcher_runs_the_bundle_next_to_its_real_location(linux_package: ModuleType, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    linux_package.stage_deb_tree(fake_bundle(tmp_path), tree)
    link = tmp_path / "bin" / "kvdesk"  # e.g. a symlink in ~/.local/bin
    link.parent.mkdir()
    link.symlink_to(tree / "usr/bin/kvdesk")
    out = subprocess.run([str(link), "--smoke", "a plan.kvplan"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"ran {tree}/usr/bin/../lib/kvdesk/kvdesk --smoke a plan.kvplan"


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb not installed")
def test_built_deb_control_fields_read_back(
    linux_package: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # dpkg-shlibdeps on the real bundle runs in ci_check.sh; here its answer is fixed
    monkeypatch.setattr(linux_package, "shlib_depends", lambda tree: "libc6 (>= 2.35)")
    deb = linux_package.build_deb(fake_bundle(tmp_path), tmp_path / "out", "gzip")
    assert deb.name == f"kvdesk_{linux_package.app_metadata.version()}_{linux_package.deb_arch()}.deb"
    depends = subprocess.run(["dpkg-deb", "-f", str(deb), "Depends"], capture_output=True, text=True, check=True)
    assert depends.stdout.strip() == f"libc6 (>= 2.35), {linux_package.FONT_DEPENDS}"
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    assert "./usr/share/mime/packages/kvdesk.xml" in listing
    assert "root/root" in listing.splitlines()[0]  # --root-owner-group
    assert not list((tmp_path / "out").glob("tmp*")), "staging folder left behind"


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="not a dpkg system")
def test_check_depends_accepts_installed_and_rejects_missing(linux_package: ModuleType) -> None:
    assert linux_package.satisfied("dpkg", None)
    assert linux_package.satisfied("dpkg", ">= 1.0")
    assert not linux_package.satisfied("dpkg", "<< 1.0")
    assert not linux_package.satisfied("kvdesk-no-such-package", None)
