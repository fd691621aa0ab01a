"""The Inno Setup script (it cannot be compiled here): the pieces the installer must have, checked
against the names the other platforms use."""

from __future__ import annotations

import re
from types import ModuleType

from .conftest import PACKAGING, ROOT

ISS = (PACKAGING / "windows" / "kvdesk.iss").read_text(encoding="utf-8")


def section(name: str) -> list[str]:
    match = re.search(rf"^\[{name}\]\n(.*?)(?=^\[|\Z)", ISS, re.MULTILINE | re.DOTALL)
    assert match, f"[{name}] section missing"
    return [line for line in match.group(1).splitlines() if line.strip() and not line.lstrip().startswith(";")]


def directives() -> dict[str, str]:
    return dict(line.split("=", 1) for line in section("Setup"))


def test_setup_directives() -> None:
    setup = directives()
    assert re.fullmatch(r"\{\{[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}\}", setup["AppId"])
    assert setup["ChangesAssociations"] == "yes"  # Explorer refreshes .kvplan icons after (un)install
    assert setup["ArchitecturesInstallIn64BitMode"] == "x64compatible"
    assert setup["UninstallDisplayIcon"] == r"{app}\{#AppExe}"
    icon = ROOT / "packaging" / "windows" / setup["SetupIconFile"].replace("\\", "/")
    assert icon.resolve() == (ROOT / "resources" / "icons" / "kvdesk.ico").resolve()
    out_dir = ROOT / "packaging" / "windows" / setup["OutputDir"].replace("\\", "/")
    assert out_dir.resolve() == (ROOT / "dist").resolve()


def test_installs_the_whole_bundle_and_uses_the_windowed_exe() -> None:
    (files,) = section("Files")
    assert r'Source: "..\..\dist\kvdesk\*"' in files and "recursesubdirs" in files and "createallsubdirs" in files
    assert '#define AppExe "kvdeskw.exe"' in ISS  # the spec's console=False executable
    icons = section("Icons")
    assert any(line.startswith('Name: "{autoprograms}\\kvdesk"') and "{app}\\{#AppExe}" in line for line in icons)


def registry_entries() -> list[dict[str, str]]:
    return [dict(part.strip().split(": ", 1) for part in line.split("; ")) for line in section("Registry")]


def test_kvplan_association_opens_with_kvdeskw(app_metadata: ModuleType) -> None:
    by_key = {(e["Subkey"].strip('"'), e.get("ValueName", "").strip('"')): e for e in registry_entries()}
    classes = "Software\\Classes\\"
    ext = f".{app_metadata.PLAN_EXTENSION}"
    assert (classes + ext + "\\OpenWithProgids", "{#PlanProgId}") in by_key
    assert by_key[(classes + ext, "")]["ValueData"] == '"{#PlanProgId}"'
    assert by_key[(classes + ext, "Content Type")]["ValueData"] == f'"{app_metadata.PLAN_MIME}"'
    command = by_key[(classes + "{#PlanProgId}\\shell\\open\\command", "")]["ValueData"]
    assert command == '"""{app}\\{#AppExe}"" ""%1"""'  # "C:\...\kvdeskw.exe" "%1"
    assert all(e["Root"] == "HKA" for e in registry_entries())  # HKCU per user, HKLM for all users


def test_uninstaller_removes_every_registry_entry() -> None:
    entries = registry_entries()
    deleted_keys = [e["Subkey"].strip('"') for e in entries if "uninsdeletekey" in e.get("Flags", "")]
    for entry in entries:
        key = entry["Subkey"].strip('"')
        own_flag = "uninsdelete" in entry.get("Flags", "")
        under_deleted_key = any(key == k or key.startswith(k + "\\") for k in deleted_keys)
        assert own_flag or under_deleted_key, f"left behind after uninstall: {entry}"


def test_version_comes_from_the_build_script() -> None:
    assert '#define AppVersion GetEnv("KVDESK_VERSION")' in ISS
    build = (PACKAGING / "windows" / "build.ps1").read_text(encoding="utf-8")
    assert "$env:KVDESK_VERSION = $Version" in build
    assert "packaging\\kvdesk.spec" in build and "--smoke" in build
