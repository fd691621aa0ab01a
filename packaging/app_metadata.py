"""Names every installer shares: app id, the .kvplan document type, macOS Info.plist.

Used by ``kvdesk.spec`` (macOS BUNDLE) and checked against the Linux desktop/MIME files and the
Inno Setup script by ``tests/packaging``, so the three platforms cannot drift apart.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

APP_NAME = "kvdesk"
APP_ID = "io.github.kvdesk"  # reverse-DNS id: macOS CFBundleIdentifier
SUMMARY = "VRAM planner for running LLMs on your own GPUs"
PLAN_EXTENSION = "kvplan"
PLAN_MIME = "application/x-kvplan+json"
PLAN_UTI = f"{APP_ID}.kvplan"
PLAN_DESCRIPTION = "kvdesk plan"


def version() -> str:
    """The version in ``kvdesk/__init__.py``, read as text (building must not import Qt or numpy)."""
    text = (ROOT / "kvdesk" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.MULTILINE)
    if not match:
        raise ValueError("kvdesk/__init__.py has no __version__ = \"…\" line")
    return match.group(1)


def info_plist(app_version: str) -> dict[str, Any]:
    """Extra Info.plist keys for the macOS .app (PyInstaller's BUNDLE adds name, executable, icon).

    Document type: CFBundleDocumentTypes says kvdesk opens .kvplan (Owner, Editor); the exported
    UTI declares the type itself, conforming to public.json, with its extension and MIME type
    (Apple: "Defining file and data types for your app", Uniform Type Identifiers).
    """
    return {
        "CFBundleName": APP_NAME,
        "CFBundleDisplayName": APP_NAME,
        "CFBundleShortVersionString": app_version,
        "CFBundleVersion": app_version,
        "CFBundleDevelopmentRegion": "en",
        "LSMinimumSystemVersion": "11.0",
        "LSApplicationCategoryType": "public.app-category.developer-tools",
        "NSHighResolutionCapable": True,
        "NSPrincipalClass": "NSApplication",
        "NSRequiresAquaSystemAppearance": False,
        "CFBundleDocumentTypes": [
            {
                "CFBundleTypeName": PLAN_DESCRIPTION,
                "CFBundleTypeRole": "Editor",
                "LSHandlerRank": "Owner",
                "LSItemContentTypes": [PLAN_UTI],
                "CFBundleTypeIconFile": "kvdesk.icns",
            }
        ],
        "UTExportedTypeDeclarations": [
            {
                "UTTypeIdentifier": PLAN_UTI,
                "UTTypeDescription": PLAN_DESCRIPTION,
                "UTTypeConformsTo": ["public.json", "public.data"],
                "UTTypeIconFile": "kvdesk.icns",
                "UTTypeTagSpecification": {
                    "public.filename-extension": [PLAN_EXTENSION],
                    "public.mime-type": [PLAN_MIME],
                },
            }
        ],
    }
