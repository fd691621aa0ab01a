#!/usr/bin/env bash
# CI check of the Linux installer (called from .ci/run): build the bundle and the .deb from this
# checkout, check its Depends are installed here, install it into a scratch root (dpkg-deb -x),
# and start the INSTALLED app offscreen: --smoke, then --smoke on a .kvplan written by the installed
# CLI (what a double-click on a plan does). Nothing is cached between runs; exits non-zero on failure.
#
# Needs: PYTHON (default python3, e.g. .venv's) with kvdesk; PyInstaller is installed into it from the
# packaging extra if missing (pip install -e .[packaging]); dpkg-dev (dpkg-deb, dpkg-shlibdeps).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
cd "$ROOT"
started=$SECONDS
WORK="$(mktemp -d "${TMPDIR:-/tmp}/kvdesk-pkg.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
export PYINSTALLER_CONFIG_DIR="$WORK/pyinstaller-cache"   # no binary cache carried over from earlier runs
step() { echo "packaging: $* ($((SECONDS - started)) s)"; }

if ! "$PYTHON" -c "import PyInstaller" 2>/dev/null; then
    echo "packaging: PyInstaller missing: $PYTHON -m pip install -e '.[packaging]'"
    "$PYTHON" -m pip install -q -e ".[packaging]"
fi
for tool in dpkg-deb dpkg-shlibdeps; do
    command -v "$tool" >/dev/null || { echo "packaging: $tool missing (apt-get install dpkg-dev)" >&2; exit 2; }
done

step "PyInstaller bundle"
"$PYTHON" -m PyInstaller --noconfirm --log-level WARN \
    --distpath "$WORK/dist" --workpath "$WORK/build" packaging/kvdesk.spec
size_mib=$(du -s --apparent-size -B1 "$WORK/dist/kvdesk" | awk '{printf "%.1f", $1 / 1048576}')
step "bundle is $size_mib MiB; .deb"
"$PYTHON" packaging/linux/package.py deb --bundle "$WORK/dist/kvdesk" --out "$WORK/out" --compress gzip
deb="$(ls "$WORK"/out/kvdesk_*.deb)"
"$PYTHON" packaging/linux/package.py check-depends "$deb"

step "install into a scratch root"
dpkg-deb -x "$deb" "$WORK/root"
app="$WORK/root/usr/bin/kvdesk"
if command -v desktop-file-validate >/dev/null; then
    desktop-file-validate "$WORK/root/usr/share/applications/kvdesk.desktop"
fi
# keep the installed app's settings and autosaves out of the CI user's home
export XDG_CONFIG_HOME="$WORK/home/config" XDG_DATA_HOME="$WORK/home/data"
export XDG_STATE_HOME="$WORK/home/state" XDG_CACHE_HOME="$WORK/home/cache"
export KVDESK_CONFIG_DIR="$WORK/home/kvdesk-config" KVDESK_DATA_DIR="$WORK/home/kvdesk-data"
export QT_QPA_PLATFORM=offscreen

step "installed app: --version, calc, --smoke"
"$app" --version
"$app" calc --model llama-3.1-8b --gpu rtx-4090 --ctx 8192 --save "$WORK/plan.kvplan" >/dev/null
timeout 120 "$app" --smoke
timeout 120 "$app" --smoke "$WORK/plan.kvplan"
step "OK"
