"""macOS Info.plist keys of the .app (packaging/app_metadata.py, used by the spec's BUNDLE)."""

from __future__ import annotations

import plistlib
from types import ModuleType

import kvdesk


def test_info_plist_serialises_and_keeps_the_app_version(app_metadata: ModuleType) -> None:
    plist = plistlib.loads(plistlib.dumps(app_metadata.info_plist(app_metadata.version())))
    assert plist["CFBundleShortVersionString"] == kvdesk.__version__
    assert plist["CFBundleVersion"] == kvdesk.__version__
    assert plist["NSHighResolutionCapable"] is True


def test_document_type_points_at_the_exported_kvplan_uti(app_metadata: ModuleType) -> None:
    plist = app_metadata.info_plist("1.2.3")
    (doc,) = plist["CFBundleDocumentTypes"]
    (exported,) = plist["UTExportedTypeDeclarations"]
    assert doc["LSItemContentTypes"] == [exported["UTTypeIdentifier"]]
    assert doc["CFBundleTypeRole"] == "Editor" and doc["LSHandlerRank"] == "Owner"
    tags = exported["UTTypeTagSpecification"]
    assert tags["public.filename-extension"] == ["kvplan"]  # no leading dot (Apple UTI docs)
    assert tags["public.mime-type"] == [app_metadata.PLAN_MIME]
    assert "public.json" in exported["UTTypeConformsTo"]
    assert exported["UTTypeIdentifier"].startswith(app_metadata.APP_ID + ".")


def test_version_is_read_from_the_package_source(app_metadata: ModuleType) -> None:
    assert app_metadata.version() == kvdesk.__version__
