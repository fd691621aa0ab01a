"""A smaller ICU data library for the Linux bundle (the PySide6 wheel's libicudata.so.NN is ~32 MB).

Qt links ICU for a handful of things only. The ICU functions libQt6Core imports (``readelf --dyn-syms``
on the PySide6 6.11 wheel; no other Qt library of the bundle imports any) are:

- ``ucol_*``: QCollator (QFileDialog sorts file names with it)          -> ``coll/`` kept
- ``ucal_*``: QTimeZone names and canonical ids                            -> ``zone/``, zoneinfo64 etc. kept
- ``u_strToUpper/Lower``: QLocale::toUpper/toLower (case data is compiled into libicuuc)
- ``ucnv_*``: QStringConverter for a named non-Unicode encoding; Qt 6 on Unix uses UTF-8 for the locale
  and kvdesk decodes nothing through Qt, so the converter tables (``*.cnv``, 5 MB) go; the alias table
  stays, so an unknown encoding is reported as invalid, not a crash.

Nothing calls break iterators (``ubrk_``: Qt has its own), transliteration, unit / currency / language /
region display names, number spell-out, stringprep, character names or spoof checks: those items go
(~21 MB). Every dropped item is only ever loaded on demand; a missing item makes ICU return an error code
(``U_MISSING_RESOURCE_ERROR``), which Qt handles. ``tests/packaging/test_icu_data.py`` runs Qt's
ICU-backed calls (collation, Turkish upper-casing, time-zone names) with the full and with the trimmed
library and requires the same answers.

The trimmed package is written in ICU's common-data (``.dat``) format and linked into a shared library
that exports ``icudtNN_dat`` under the same soname, with ``as`` and ``ld`` (binutils: dpkg-dev depends on
it). Without binutils the wheel's library is kept unchanged.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

# Item names inside the package, after the "icudt73l/" prefix.
_DROP_ITEM_RE = re.compile(
    r"^(brkitr|translit|unit|curr|lang|region|rbnf)/"  # whole trees nothing in Qt reads
    r"|\.(cnv|spp|cfu)$"  # converter tables, stringprep profiles, confusables
    r"|^unames\.icu$"  # Unicode character names (u_charName)
)
_LIB_RE = re.compile(r"^libicudata\.so\.(\d+)$")
_ALIGN = 16  # ICU aligns every item of a package to 16 bytes


def is_dropped_item(name: str) -> bool:
    """True for a package item (``icudt73l/brkitr/cjdict.dict``) the bundle leaves out."""
    _, _, item = name.partition("/")
    return bool(_DROP_ITEM_RE.search(item or name))


def read_package(blob: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
    """Split an ICU common-data package into its header and ``(name, bytes)`` items (TOC order)."""
    header_size = struct.unpack_from("<H", blob, 0)[0]
    if blob[2:4] != b"\xda\x27" or blob[12:16] != b"CmnD":
        raise ValueError("not an ICU common-data package (magic / CmnD format missing)")
    toc = header_size
    count = struct.unpack_from("<I", blob, toc)[0]
    entries = [struct.unpack_from("<II", blob, toc + 4 + 8 * i) for i in range(count)]
    starts = [toc + data for _, data in entries] + [len(blob)]
    items = []
    for i, (name_offset, _) in enumerate(entries):
        name_start = toc + name_offset
        name = blob[name_start : blob.index(b"\0", name_start)].decode("ascii")
        items.append((name, blob[starts[i] : starts[i + 1]]))
    return blob[:header_size], items


def _pad(size: int) -> int:
    return -size % _ALIGN


def write_package(header: bytes, items: list[tuple[str, bytes]]) -> bytes:
    """The inverse of :func:`read_package`: TOC, then the names, then each item 16-byte aligned."""
    toc_size = 4 + 8 * len(items)
    names = b"".join(name.encode("ascii") + b"\0" for name, _ in items)
    name_offsets, offset = [], toc_size
    for name, _ in items:
        name_offsets.append(offset)
        offset += len(name) + 1
    offset += _pad(len(header) + offset)
    data_offsets = []
    for _, data in items:
        data_offsets.append(offset)
        offset += len(data) + _pad(len(data))
    out = bytearray(header)
    out += struct.pack("<I", len(items))
    for name_offset, data_offset in zip(name_offsets, data_offsets, strict=True):
        out += struct.pack("<II", name_offset, data_offset)
    out += names
    out += b"\0" * _pad(len(out))
    for _, data in items:
        out += data + b"\0" * _pad(len(data))
    return bytes(out)


def trim_package(blob: bytes) -> bytes:
    header, items = read_package(blob)
    return write_package(header, [(name, data) for name, data in items if not is_dropped_item(name)])


def binutils() -> dict[str, str] | None:
    found = {tool: shutil.which(tool) for tool in ("objcopy", "as", "ld")}
    return None if None in found.values() else {k: v for k, v in found.items() if v}


def link_data_library(dat: Path, version: str, out: Path, tools: dict[str, str]) -> None:
    """Link ``dat`` into ``out``: a shared library ``libicudata.so.<version>`` exporting ``icudt<version>_dat``."""
    symbol = f"icudt{version}_dat"
    asm = out.with_suffix(".s")
    asm.write_text(
        f'\t.section .rodata\n\t.balign {_ALIGN}\n\t.globl {symbol}\n\t.type {symbol}, STT_OBJECT\n'
        f'\t.size {symbol}, {dat.stat().st_size}\n{symbol}:\n\t.incbin "{dat}"\n'
        '\t.section .note.GNU-stack,"",%progbits\n'
    )  # fmt: skip
    obj = out.with_suffix(".o")
    subprocess.run([tools["as"], "-o", str(obj), str(asm)], check=True, capture_output=True)
    soname = f"libicudata.so.{version}"
    link = [tools["ld"], "-shared", "-soname", soname, "-o", str(out), str(obj)]
    subprocess.run(link, check=True, capture_output=True)


def trimmed_library(source: Path, out_dir: Path) -> Path | None:
    """A trimmed copy of the ICU data library ``source`` in ``out_dir`` (cached by size and mtime), or
    None when ``source`` is not one or binutils is missing."""
    match = _LIB_RE.match(source.name)
    tools = binutils()
    if not match or tools is None:
        return None
    version = match.group(1)
    stat = source.stat()
    target = out_dir / f"{stat.st_size}-{stat.st_mtime_ns}" / source.name
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        full = Path(tmp) / "full.dat"
        subprocess.run([tools["objcopy"], "-O", "binary", "--only-section=.rodata", str(source), str(full)],
                       check=True, capture_output=True)  # fmt: skip
        blob = full.read_bytes()
        _, items = read_package(blob)
        if not items[0][0].startswith(f"icudt{version}"):
            raise ValueError(f"{source}: package items are {items[0][0]!r}, not icudt{version}*")
        small = Path(tmp) / "trimmed.dat"
        small.write_bytes(trim_package(blob))
        built = Path(tmp) / source.name
        link_data_library(small, version, built, tools)
        built.replace(target)
    return target


def with_trimmed_icu(entries: list[tuple[str, str, str]], cache: Path) -> list[tuple[str, str, str]]:
    """Point the TOC entry of ``libicudata.so.NN`` (PyInstaller ``(dest, source, typecode)``) at a trimmed
    copy; every other entry, and the entry itself when it cannot be trimmed here, is kept as is."""
    out = []
    for dest, source, typecode in entries:
        trimmed = trimmed_library(Path(source), cache) if _LIB_RE.match(Path(dest).name) else None
        if trimmed is None and _LIB_RE.match(Path(dest).name):
            print(f"icu_data: binutils (objcopy, as, ld) missing: {dest} kept whole")
        out.append((dest, str(trimmed) if trimmed else source, typecode))
    return out
