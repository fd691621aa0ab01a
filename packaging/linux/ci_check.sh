#!/usr/bin/env bash
# CI check of the Linux installers (called from .ci/run): build the bundle (fails over 150 MB) and the
# .deb from this checkout, check its Depends are installed here, install it into a scratch root
# (dpkg-deb -x), and start the INSTALLED app offscreen: CLI commands (the probe with its NVML backend
# bundled), --smoke, then --smoke on a .kvplan written by the installed CLI (what a double-click on a
# plan does); then unpack the portable .tar.gz and start it the same way. Nothing is cached between
# runs; exits non-zero on failure.
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
size_bytes=$(du -s --apparent-size -B1 "$WORK/dist/kvdesk" | cut -f1)
size_mib=$(awk -v b="$size_bytes" 'BEGIN {printf "%.1f", b / 1048576}')
step "bundle is $size_mib MiB ($((size_bytes / 1000000)) MB); .deb"
# issue 9: the one-folder bundle stays <= 150 MB (10^6 bytes)
if [ "$size_bytes" -gt 150000000 ]; then
    echo "packaging: bundle is $size_bytes bytes, over the 150 MB limit (packaging/bundle_filters.py, icu_data.py)" >&2
    exit 1
fi
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

step "installed app: --version, list, calc, probe, --smoke"
"$app" --version
"$app" list models >/dev/null
"$app" calc --model llama-3.1-8b --gpu rtx-4090 --ctx 8192 --save "$WORK/plan.kvplan" >/dev/null
# no GPU here: the probe must report "no GPU" with its NVML backend bundled (pynvml is imported by name)
probe_out="$("$app" probe 2>&1 || true)"
if grep -q "pynvml) is not installed" <<<"$probe_out"; then
    echo "packaging: the bundle lacks pynvml (nvidia-ml-py):" >&2; echo "$probe_out" >&2; exit 1
fi
timeout 120 "$app" --smoke
timeout 120 "$app" --smoke "$WORK/plan.kvplan"

step "portable tarball: unpack, calc, --smoke"
tarball="$("$PYTHON" packaging/linux/package.py tarball --bundle "$WORK/dist/kvdesk" --out "$WORK/out")"
mkdir "$WORK/portable"
tar -C "$WORK/portable" -xzf "$tarball"
portable="$(ls -d "$WORK"/portable/kvdesk-*)/kvdesk"
"$portable" calc --model llama-3.1-8b --gpu rtx-4090 --ctx 8192 >/dev/null
timeout 120 "$portable" --smoke "$WORK/plan.kvplan"
step "OK"
