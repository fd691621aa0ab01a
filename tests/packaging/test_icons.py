"""The committed icon files: every size each OS needs, readable, drawn from resources/icons/kvdesk.svg."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET

import pytest

from .conftest import ROOT, load

ICONS = ROOT / "resources" / "icons"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_svg_source_is_square_svg() -> None:
    root = ET.parse(ICONS / "kvdesk.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("width") == root.get("height")
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"


@pytest.mark.parametrize("size", [16, 22, 24, 32, 48, 64, 128, 256, 512])
def test_hicolor_png_has_its_size(size: int) -> None:
    assert png_size((ICONS / "png" / f"kvdesk-{size}.png").read_bytes()) == (size, size)


def ico_entries(data: bytes) -> list[tuple[int, bytes]]:
    reserved, kind, count = struct.unpack("<HHH", data[:6])
    assert (reserved, kind) == (0, 1), "not an ICO file"
    entries = []
    for i in range(count):
        width, _, _, _, _, _, size, offset = struct.unpack("<BBBBHHII", data[6 + 16 * i : 22 + 16 * i])
        entries.append((width or 256, data[offset : offset + size]))
    return entries


def test_ico_holds_the_windows_shell_sizes_as_pngs() -> None:
    entries = ico_entries((ICONS / "kvdesk.ico").read_bytes())
    sizes = {size for size, _ in entries}
    # Inno Setup's SetupIconFile asks for at least 16, 32, 48, 64 and 256
    assert {16, 32, 48, 64, 256} <= sizes
    for size, payload in entries:
        assert png_size(payload) == (size, size)


def test_icns_elements_are_pngs_of_their_declared_size() -> None:
    make_icons = load("icons/make_icons.py")
    data = (ICONS / "kvdesk.icns").read_bytes()
    assert data[:4] == b"icns"
    assert struct.unpack(">I", data[4:8])[0] == len(data)
    found, pos = {}, 8
    while pos < len(data):
        code, length = data[pos : pos + 4].decode("ascii"), struct.unpack(">I", data[pos + 4 : pos + 8])[0]
        found[code] = data[pos + 8 : pos + length]
        pos += length
    assert pos == len(data)
    expected = dict(make_icons.ICNS_TYPES)
    assert set(found) == set(expected)
    for code, payload in found.items():
        assert png_size(payload) == (expected[code], expected[code]), code
    assert {"ic07", "ic08", "ic09", "ic10"} <= set(found)  # 128, 256, 512, 1024 for Finder and the Dock


def test_ico_writer_round_trips_offsets() -> None:
    make_icons = load("icons/make_icons.py")
    fake = {16: b"\x89PNG\r\n\x1a\n" + b"\0\0\0\rIHDR" + struct.pack(">II", 16, 16), 256: b"\x89PNG\r\n\x1a\n"
            + b"\0\0\0\rIHDR" + struct.pack(">II", 256, 256)}  # fmt: skip
    entries = ico_entries(make_icons.ico_bytes(fake))
    assert [(size, payload) for size, payload in entries] == [(16, fake[16]), (256, fake[256])]
