#!/usr/bin/env bash
# Build kvdesk's Linux installers from this checkout:
#   dist/kvdesk/                                one-folder PyInstaller bundle
#   dist/kvdesk_<version>_<arch>.deb            Debian/Ubuntu package
#   dist/kvdesk-<version>-linux-<machine>.tar.gz portable tarball
#
# Needs: Python 3.11+ with kvdesk and PyInstaller (pip install -e .[packaging]), and dpkg-dev
# (dpkg-deb, dpkg-shlibdeps). PYTHON picks the interpreter (default: python3).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
DIST="${DIST:-$ROOT/dist}"
cd "$ROOT"

"$PYTHON" -c "import PyInstaller" 2>/dev/null || {
    echo "build.sh: PyInstaller is missing: $PYTHON -m pip install -e '.[packaging]'" >&2; exit 2; }

"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$DIST" --workpath "$ROOT/build/pyinstaller" packaging/kvdesk.spec
QT_QPA_PLATFORM=offscreen "$DIST/kvdesk/kvdesk" --smoke
"$PYTHON" packaging/linux/package.py deb --bundle "$DIST/kvdesk" --out "$DIST" "$@"
"$PYTHON" packaging/linux/package.py tarball --bundle "$DIST/kvdesk" --out "$DIST"
ls -l "$DIST"/kvdesk_*.deb "$DIST"/kvdesk-*-linux-*.tar.gz
