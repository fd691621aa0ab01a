#!/usr/bin/env bash
# Build the kvdesk macOS app and disk image from this checkout (run on a Mac):
#   dist/kvdesk.app                                   PyInstaller BUNDLE (Info.plist: .kvplan document type)
#   dist/kvdesk-<version>-macos-<arch>.dmg            drag-to-Applications disk image
#
# Needs: Python 3.11+ with kvdesk and PyInstaller (python3 -m pip install -e '.[packaging]'); Xcode
# command-line tools (codesign, hdiutil and ditto ship with macOS). PYTHON picks the interpreter.
# CODESIGN_IDENTITY (optional) signs the app with a Developer ID; otherwise PyInstaller's ad-hoc
# signature is kept (the app then opens via right-click > Open the first time).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
cd "$ROOT"

"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/pyinstaller packaging/kvdesk.spec
APP="dist/kvdesk.app"
plutil -lint "$APP/Contents/Info.plist"

# the frozen app must start: main window offscreen, one paint, exit 0
QT_QPA_PLATFORM=offscreen "$APP/Contents/MacOS/kvdesk" --smoke

if [[ -n "${CODESIGN_IDENTITY:-}" ]]; then
    codesign --force --deep --options runtime --timestamp --sign "$CODESIGN_IDENTITY" "$APP"
fi
codesign --verify --deep --strict "$APP"

VERSION="$("$PYTHON" -c 'import sys; sys.path.insert(0, "packaging"); import app_metadata; print(app_metadata.version())')"
DMG="dist/kvdesk-$VERSION-macos-$(uname -m).dmg"
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
ditto "$APP" "$STAGE/kvdesk.app"          # ditto keeps the bundle's symlinks and signatures intact
ln -s /Applications "$STAGE/Applications"  # drag target inside the mounted image
hdiutil create -volname "kvdesk $VERSION" -srcfolder "$STAGE" -ov -format UDZO "$DMG"
hdiutil verify "$DMG"
ls -l "$DMG"
