"""Turn the PyInstaller bundle (dist/kvdesk) into a Debian package and a portable tarball.

    python packaging/linux/package.py deb --bundle dist/kvdesk --out dist [--compress xz|gzip]
    python packaging/linux/package.py tarball --bundle dist/kvdesk --out dist
    python packaging/linux/package.py check-depends dist/kvdesk_0.1.0_amd64.deb

The .deb installs the bundle in /usr/lib/kvdesk, a /usr/bin/kvdesk launcher, the desktop entry, the
icon in the hicolor sizes, and the .kvplan MIME type (dpkg's file triggers of desktop-file-utils,
shared-mime-info and hicolor-icon-theme refresh their caches, so no maintainer scripts are needed).
``Depends:`` comes from dpkg-shlibdeps run over every ELF file of the bundle: the bundle leaves the
distribution's own libraries (X11/xcb, fontconfig, GL, glib, dbus, libstdc++ …) to the system
(packaging/bundle_filters.py), so exactly those packages are what it needs.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import app_metadata

ROOT = app_metadata.ROOT
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
# Qt draws text with fontconfig fonts; none of the bundle's ELF files names a font package.
FONT_DEPENDS = "fonts-dejavu-core | fonts-liberation2 | fonts-noto-core"
LAUNCHER = """#!/bin/sh
# kvdesk launcher: the PyInstaller bundle lives in ../lib/kvdesk next to this script's real location
here=$(dirname "$(readlink -f "$0")")
exec "$here/../lib/kvdesk/kvdesk" "$@"
"""


def deb_arch() -> str:
    try:
        return subprocess.run(
            ["dpkg", "--print-architecture"], check=True, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def stage_share(share: Path) -> None:
    """Desktop entry, MIME type and icons under ``share`` (a /usr/share or ~/.local/share layout)."""
    linux = ROOT / "resources" / "linux"
    icons = ROOT / "resources" / "icons"
    _copy(linux / "kvdesk.desktop", share / "applications" / "kvdesk.desktop")
    _copy(linux / "kvdesk.xml", share / "mime" / "packages" / "kvdesk.xml")
    _copy(icons / "kvdesk.svg", share / "icons" / "hicolor" / "scalable" / "apps" / "kvdesk.svg")
    for size in ICON_SIZES:
        dest = share / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "kvdesk.png"
        _copy(icons / "png" / f"kvdesk-{size}.png", dest)


def _link_or_copy(src: str, dest: str) -> None:
    """Hard-link when the bundle and the staging folder share a file system (saves copying 150 MB)."""
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def _copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)
    dest.chmod(0o644)


def stage_deb_tree(bundle: Path, tree: Path) -> None:
    """The installed file layout of the .deb under ``tree`` (no DEBIAN/ yet)."""
    shutil.copytree(bundle, tree / "usr" / "lib" / "kvdesk", symlinks=True, copy_function=_link_or_copy)
    launcher = tree / "usr" / "bin" / "kvdesk"
    launcher.parent.mkdir(parents=True)
    launcher.write_text(LAUNCHER, encoding="utf-8")
    launcher.chmod(0o755)
    stage_share(tree / "usr" / "share")
    doc = tree / "usr" / "share" / "doc" / "kvdesk" / "copyright"
    _copy(Path(__file__).with_name("copyright"), doc)


def elf_files(folder: Path) -> list[Path]:
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as fh:
                if fh.read(4) == b"\x7fELF":
                    found.append(path)
    return found


def shlib_depends(tree: Path) -> str:
    """``Depends:`` of the bundle's ELF files, from dpkg-shlibdeps (needs dpkg-dev)."""
    if shutil.which("dpkg-shlibdeps") is None:
        raise SystemExit("package.py: dpkg-shlibdeps not found (apt-get install dpkg-dev)")
    internal = tree / "usr" / "lib" / "kvdesk" / "_internal"
    with tempfile.TemporaryDirectory() as work:
        (Path(work) / "debian").mkdir()
        (Path(work) / "debian" / "control").write_text(
            "Source: kvdesk\n\nPackage: kvdesk\nArchitecture: any\n", encoding="utf-8"
        )
        cmd = ["dpkg-shlibdeps", "-O", "--ignore-missing-info", f"-l{internal}"]
        cmd += [f"-e{path}" for path in elf_files(tree / "usr" / "lib" / "kvdesk")]
        proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if "error" in line]
        raise SystemExit("dpkg-shlibdeps failed:\n" + "\n".join(errors or proc.stderr.splitlines()[-20:]))
    return parse_shlibs_output(proc.stdout)


def parse_shlibs_output(text: str) -> str:
    """The value of ``shlibs:Depends=…`` in dpkg-shlibdeps -O output ('' when absent)."""
    match = re.search(r"^shlibs:Depends=(.*)$", text, re.MULTILINE)
    return match.group(1).strip() if match else ""


def control_text(version: str, arch: str, depends: str, installed_kib: int) -> str:
    deps = ", ".join(part for part in (depends, FONT_DEPENDS) if part)
    return (
        f"Package: kvdesk\nVersion: {version}\nArchitecture: {arch}\n"
        "Maintainer: kvdesk developers <kvdesk@users.noreply.github.com>\n"
        f"Installed-Size: {installed_kib}\nDepends: {deps}\n"
        "Section: science\nPriority: optional\n"
        f"Description: {app_metadata.SUMMARY}\n"
        " kvdesk answers \"will this model fit on this GPU?\" before you download it: weights, KV cache\n"
        " and runtime overhead per device, following the rules of llama.cpp, vLLM and Ollama,\n"
        " with the largest context and concurrency that still fit. Plans are saved as .kvplan files.\n"
    )


def tree_size_kib(tree: Path) -> int:
    total = sum(p.lstat().st_size for p in tree.rglob("*") if p.is_file() or p.is_symlink())
    return (total + 1023) // 1024


def build_deb(bundle: Path, out: Path, compress: str) -> Path:
    version, arch = app_metadata.version(), deb_arch()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as work:
        tree = Path(work) / "kvdesk"
        stage_deb_tree(bundle, tree)
        depends = shlib_depends(tree)
        (tree / "DEBIAN").mkdir()
        control = control_text(version, arch, depends, tree_size_kib(tree))
        (tree / "DEBIAN" / "control").write_text(control, encoding="utf-8")
        deb = out / f"kvdesk_{version}_{arch}.deb"
        level = ["-z6"] if compress == "xz" else ["-z1"]
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", f"-Z{compress}", *level, "--build", str(tree), str(deb)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return deb


def build_tarball(bundle: Path, out: Path) -> Path:
    name = f"kvdesk-{app_metadata.version()}-linux-{platform.machine()}"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as work:
        top = Path(work) / name
        shutil.copytree(bundle, top, symlinks=True, copy_function=_link_or_copy)
        stage_share(top / "share")
        _copy(Path(__file__).with_name("README-portable.txt"), top / "README.txt")
        archive = out / f"{name}.tar.gz"
        subprocess.run(["tar", "-C", work, "-czf", str(archive), name], check=True)
    return archive


def parse_depends(field: str) -> list[list[tuple[str, str | None]]]:
    """``a (>= 1), b | c`` -> [[('a', '>= 1')], [('b', None), ('c', None)]]."""
    groups = []
    for group in filter(None, (g.strip() for g in field.split(","))):
        alts = []
        for alt in group.split("|"):
            match = re.fullmatch(r"\s*([a-z0-9][a-z0-9+.-]*)(?::\w+)?\s*(?:\(([^)]*)\))?\s*", alt)
            if not match:
                raise ValueError(f"unreadable Depends entry: {alt!r}")
            alts.append((match.group(1), match.group(2).strip() if match.group(2) else None))
        groups.append(alts)
    return groups


def installed_version(package: str) -> str | None:
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f=${db:Status-Abbrev} ${Version}", package], capture_output=True, text=True
    )
    status, _, version = proc.stdout.partition(" ")
    return version.strip() if proc.returncode == 0 and status.startswith("ii") else None


def satisfied(package: str, constraint: str | None) -> bool:
    version = installed_version(package)
    if version is None or constraint is None:
        return version is not None
    op, _, wanted = constraint.partition(" ")
    ops = {">=": "ge", "<=": "le", ">>": "gt", "<<": "lt", "=": "eq"}
    return subprocess.run(["dpkg", "--compare-versions", version, ops[op], wanted.strip()]).returncode == 0


def check_depends(deb: Path) -> int:
    """Exit 0 when every Depends group of ``deb`` has an installed alternative on this machine."""
    field = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Depends"], check=True, capture_output=True, text=True
    ).stdout.strip()
    missing = [
        " | ".join(f"{p} ({c})" if c else p for p, c in group)
        for group in parse_depends(field)
        if not any(satisfied(p, c) for p, c in group)
    ]
    print(f"Depends: {field}")
    if missing:
        print("not installed here: " + ", ".join(missing), file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("deb", "tarball"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--bundle", type=Path, default=ROOT / "dist" / "kvdesk")
        cmd.add_argument("--out", type=Path, default=ROOT / "dist")
        if name == "deb":
            cmd.add_argument("--compress", choices=("xz", "gzip"), default="xz")
    sub.add_parser("check-depends").add_argument("deb", type=Path)
    args = parser.parse_args(argv)
    if args.cmd == "check-depends":
        return check_depends(args.deb)
    if not (args.bundle / "kvdesk").is_file():
        parser.error(f"no bundle at {args.bundle} (build it first: pyinstaller packaging/kvdesk.spec)")
    if args.cmd == "deb":
        print(build_deb(args.bundle, args.out, args.compress))
    else:
        print(build_tarball(args.bundle, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
