"""Render resources/icons/kvdesk.svg into the PNG, ICO and ICNS files each OS needs.

    python packaging/icons/make_icons.py            (rewrites resources/icons/{png,kvdesk.ico,kvdesk.icns})

The generated files are committed, so building an installer needs no image tool. Rendering uses Qt's
SVG renderer (PySide6 is already a kvdesk dependency); ICO and ICNS are written here with PNG-compressed
entries, which Windows (Vista and later) and macOS (10.7 and later) read.
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ICONS = ROOT / "resources" / "icons"
SVG = ICONS / "kvdesk.svg"

# freedesktop hicolor sizes (Linux), written as png/kvdesk-<N>.png
PNG_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
# Windows shell sizes: small icons, Explorer views, and the 256 px "jumbo" view
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# ICNS element types with PNG payloads (Apple's icns type codes): code -> pixel size
ICNS_TYPES = (
    ("icp4", 16), ("icp5", 32), ("ic11", 32), ("ic12", 64), ("ic07", 128),
    ("ic13", 256), ("ic08", 256), ("ic14", 512), ("ic09", 512), ("ic10", 1024),
)  # fmt: skip


def render_png(size: int) -> bytes:
    """The SVG drawn at ``size`` × ``size`` pixels, as PNG bytes."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise ValueError(f"{SVG} is not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")  # type: ignore[call-overload]  # the stub says bytes; PySide6 6.11 wants str
    buffer.close()
    return bytes(data.data())


def ico_bytes(pngs: dict[int, bytes]) -> bytes:
    """An ICO file (ICONDIR + ICONDIRENTRY per image) whose images are stored as PNG."""
    sizes = sorted(pngs)
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = len(header) + 16 * len(sizes)
    entries, payload = b"", b""
    for size in sizes:
        data = pngs[size]
        dim = 0 if size >= 256 else size  # 0 means 256 in an ICONDIRENTRY
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(data), offset + len(payload))
        payload += data
    return header + entries + payload


def icns_bytes(elements: list[tuple[str, bytes]]) -> bytes:
    """An ICNS file: 'icns' + big-endian total length, then (type, length incl. header, data) elements."""
    body = b"".join(code.encode("ascii") + struct.pack(">I", len(data) + 8) + data for code, data in elements)
    return b"icns" + struct.pack(">I", len(body) + 8) + body


def main() -> int:
    sizes = set(PNG_SIZES) | set(ICO_SIZES) | {size for _, size in ICNS_TYPES}
    pngs = {size: render_png(size) for size in sorted(sizes)}
    png_dir = ICONS / "png"
    png_dir.mkdir(parents=True, exist_ok=True)
    for size in PNG_SIZES:
        (png_dir / f"kvdesk-{size}.png").write_bytes(pngs[size])
    (ICONS / "kvdesk.ico").write_bytes(ico_bytes({size: pngs[size] for size in ICO_SIZES}))
    (ICONS / "kvdesk.icns").write_bytes(icns_bytes([(code, pngs[size]) for code, size in ICNS_TYPES]))
    print(f"wrote {len(PNG_SIZES)} PNGs, kvdesk.ico, kvdesk.icns under {ICONS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
