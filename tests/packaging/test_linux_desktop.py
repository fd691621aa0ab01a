"""The Linux desktop entry and the .kvplan MIME type: valid, and consistent with each other."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import ROOT

LINUX = ROOT / "resources" / "linux"
MIME_NS = "{http://www.freedesktop.org/standards/shared-mime-info}"


def desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(LINUX / "kvdesk.desktop", encoding="utf-8")
    return parser["Desktop Entry"]


def test_desktop_entry_launches_kvdesk_with_a_file_and_names_the_plan_type(app_metadata: ModuleType) -> None:
    entry = desktop_entry()
    assert entry["Type"] == "Application"
    assert entry["Exec"].split()[0] == "kvdesk"
    assert "%f" in entry["Exec"].split() or "%F" in entry["Exec"].split()
    assert entry["Icon"] == "kvdesk"
    assert entry["Terminal"] == "false"
    assert app_metadata.PLAN_MIME in entry["MimeType"].rstrip(";").split(";")
    # Qt sets the window's app id from QApplication.setDesktopFileName("kvdesk") (kvdesk/gui/app.py)
    assert (LINUX / "kvdesk.desktop").stem == "kvdesk"


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="desktop-file-utils not installed")
def test_desktop_entry_passes_desktop_file_validate() -> None:
    proc = subprocess.run(["desktop-file-validate", str(LINUX / "kvdesk.desktop")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "", proc.stdout  # no hints either (e.g. two main categories)


def test_mime_xml_declares_kvplan_as_json_with_the_kvdesk_icon(app_metadata: ModuleType) -> None:
    root = ET.parse(LINUX / "kvdesk.xml").getroot()
    assert root.tag == f"{MIME_NS}mime-info"
    (mime,) = root.findall(f"{MIME_NS}mime-type")
    assert mime.get("type") == app_metadata.PLAN_MIME
    assert [g.get("pattern") for g in mime.findall(f"{MIME_NS}glob")] == [f"*.{app_metadata.PLAN_EXTENSION}"]
    assert mime.find(f"{MIME_NS}sub-class-of").get("type") == "application/json"  # type: ignore[union-attr]
    assert mime.find(f"{MIME_NS}icon").get("name") == "kvdesk"  # type: ignore[union-attr]


@pytest.mark.skipif(shutil.which("update-mime-database") is None, reason="shared-mime-info not installed")
def test_update_mime_database_compiles_the_kvplan_glob(tmp_path: Path, app_metadata: ModuleType) -> None:
    packages = tmp_path / "mime" / "packages"
    packages.mkdir(parents=True)
    shutil.copy(LINUX / "kvdesk.xml", packages / "kvdesk.xml")
    proc = subprocess.run(["update-mime-database", str(tmp_path / "mime")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr.lower(), proc.stderr
    globs = (tmp_path / "mime" / "globs2").read_text(encoding="utf-8")
    assert f"{app_metadata.PLAN_MIME}:*.kvplan" in globs
    icons = (tmp_path / "mime" / "icons").read_text(encoding="utf-8")
    assert f"{app_metadata.PLAN_MIME}:kvdesk" in icons
