"""packaging/icu_data.py: the trimmed ICU data library of the Linux bundle. Qt's ICU-backed answers
(collation, locale case mapping, time-zone names) must be the same with the trimmed data as with the
wheel's full library; a control library without the kept data must change them."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

# Run in a child interpreter with LD_PRELOAD pointing at an ICU data library: Qt then reads ICU data
# from that library instead of the wheel's (the soname is already loaded).
QT_ICU_PROBE = r"""
import json
from functools import cmp_to_key
from PySide6.QtCore import QByteArray, QCollator, QLocale, QTimeZone

out = {}
words = ["zebra", "Äpfel", "apfel", "öl", "Ölkanne", "ångström", "Zürich", "item10", "item9", "中文", "日本", "한국"]
for name in ("de_DE", "sv_SE", "en_US", "zh_CN", "ja_JP"):
    collator = QCollator(QLocale(name))
    collator.setNumericMode(True)
    out["sort " + name] = sorted(words, key=cmp_to_key(collator.compare))
out["upper tr"] = QLocale("tr_TR").toUpper("istanbul ılık")
out["lower tr"] = QLocale("tr_TR").toLower("İSTANBUL IŞIK")
out["upper de"] = QLocale("de_DE").toUpper("straße")
for zone in ("Europe/Berlin", "America/New_York", "Asia/Kolkata"):
    tz = QTimeZone(QByteArray(zone.encode()))
    for name in ("en_US", "de_DE", "ja_JP"):
        for kind in (QTimeZone.TimeType.StandardTime, QTimeZone.TimeType.DaylightTime):
            out[f"tz {zone} {name} {kind.name}"] = tz.displayName(kind, QTimeZone.NameType.LongName, QLocale(name))
print(json.dumps(out, ensure_ascii=False, sort_keys=True))
"""


def _header(data_format: bytes = b"CmnD") -> bytes:
    # MappedData (headerSize, magic 0xda27) + UDataInfo (size, reserved, little-endian, ASCII, 2-byte
    # UChar, reserved, dataFormat, formatVersion, dataVersion), padded to 32 bytes like ICU's own.
    info = struct.pack("<HHBBBB4s4s4s", 20, 0, 0, 0, 2, 0, data_format, b"\1\0\0\0", b"\0\0\0\0")
    return (struct.pack("<HBB", 32, 0xDA, 0x27) + info).ljust(32, b"\0")


def test_drop_rules(icu_data: ModuleType) -> None:
    dropped = ["icudt73l/brkitr/cjdict.dict", "icudt73l/ibm-943_P15A-2003.cnv", "icudt73l/translit/root.res",
               "icudt73l/unit/de.res", "icudt73l/curr/en.res", "icudt73l/lang/fr.res", "icudt73l/region/ja.res",
               "icudt73l/rbnf/en.res", "icudt73l/rfc3491.spp", "icudt73l/unames.icu",
               "icudt73l/confusables.cfu"]  # fmt: skip
    kept = ["icudt73l/coll/root.res", "icudt73l/coll/ucadata.icu", "icudt73l/zone/de.res",
            "icudt73l/zoneinfo64.res", "icudt73l/metaZones.res", "icudt73l/de.res", "icudt73l/root.res",
            "icudt73l/supplementalData.res", "icudt73l/cnvalias.icu", "icudt73l/nfkc.nrm",
            "icudt73l/likelySubtags.res", "icudt73l/pool.res"]  # fmt: skip
    assert [name for name in dropped if not icu_data.is_dropped_item(name)] == []
    assert [name for name in kept if icu_data.is_dropped_item(name)] == []


def test_package_round_trip_keeps_items_and_16_byte_alignment(icu_data: ModuleType) -> None:
    items = [("icudt73l/a.res", b"\x01" * 21), ("icudt73l/brkitr/b.dict", b"\x02" * 3),
             ("icudt73l/c.icu", b"\x03" * 16)]  # fmt: skip
    blob = icu_data.write_package(_header(), items)
    header, parsed = icu_data.read_package(blob)
    assert header == _header()
    # items come back padded to 16 bytes, in order
    assert [(name, data[: len(orig)]) for (name, data), (_, orig) in zip(parsed, items, strict=True)] == items
    toc = struct.unpack_from("<H", blob)[0]
    offsets = [struct.unpack_from("<II", blob, toc + 4 + 8 * i)[1] for i in range(len(items))]
    assert all((toc + offset) % 16 == 0 for offset in offsets)
    _, trimmed = icu_data.read_package(icu_data.trim_package(blob))
    assert [name for name, _ in trimmed] == ["icudt73l/a.res", "icudt73l/c.icu"]


def test_not_a_package_is_refused(icu_data: ModuleType) -> None:
    with pytest.raises(ValueError, match="CmnD"):
        icu_data.read_package(icu_data.write_package(_header(b"ResB"), []))


def _wheel_icu_data() -> Path:
    import PySide6

    qt_lib = Path(PySide6.__path__[0]) / "Qt" / "lib"
    found = sorted(qt_lib.glob("libicudata.so.*"))
    if not sys.platform.startswith("linux") or not found:
        pytest.skip("this PySide6 wheel ships no ICU data library (only Linux wheels do)")
    if not all(shutil.which(tool) for tool in ("objcopy", "as", "ld")):
        pytest.skip("binutils (objcopy, as, ld) missing")
    return found[0]


@pytest.fixture(scope="module")
def libraries(icu_data: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The wheel's full ICU data library, the bundle's trimmed copy, and a control copy without collation
    and time-zone data."""
    source = _wheel_icu_data()
    out = tmp_path_factory.mktemp("icu")
    trimmed = icu_data.trimmed_library(source, out / "trimmed")
    assert trimmed is not None
    header, items = icu_data.read_package(_rodata(trimmed))
    control_items = [(n, d) for n, d in items if "/coll/" not in n and "/zone/" not in n and "zoneinfo" not in n]
    (out / "control.dat").write_bytes(icu_data.write_package(header, control_items))
    version = source.name.rsplit(".", 1)[-1]
    control = out / "control" / source.name
    control.parent.mkdir()
    icu_data.link_data_library(out / "control.dat", version, control, icu_data.binutils())
    return {"full": source, "trimmed": trimmed, "control": control}


def _rodata(library: Path) -> bytes:
    out = library.with_name(library.name + ".rodata")
    subprocess.run(["objcopy", "-O", "binary", "--only-section=.rodata", str(library), str(out)], check=True)
    return out.read_bytes()


def _qt_answers(library: Path) -> dict[str, object]:
    env = dict(os.environ, LD_PRELOAD=str(library), QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-c", QT_ICU_PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    answers: dict[str, object] = json.loads(proc.stdout)
    return answers


def test_trimmed_library_holds_only_kept_items_unchanged(icu_data: ModuleType, libraries: dict[str, Path]) -> None:
    _, full = icu_data.read_package(_rodata(libraries["full"]))
    _, trimmed = icu_data.read_package(_rodata(libraries["trimmed"]))
    kept = {name: data for name, data in full if not icu_data.is_dropped_item(name)}
    assert [name for name, _ in trimmed] == list(kept)
    padded = {name: data.ljust(len(data) + -len(data) % 16, b"\0") for name, data in kept.items()}
    assert all(data[: len(padded[name])] == padded[name] for name, data in trimmed)
    assert libraries["trimmed"].stat().st_size < libraries["full"].stat().st_size * 0.45


def test_qt_gives_the_same_answers_with_the_trimmed_library(libraries: dict[str, Path]) -> None:
    full = _qt_answers(libraries["full"])
    assert full["upper tr"] == "İSTANBUL ILIK"  # the locale-aware path really runs
    assert _qt_answers(libraries["trimmed"]) == full
    # control: without collation and zone data the same calls answer differently, so the comparison
    # above does see the ICU data
    control = _qt_answers(libraries["control"])
    assert control["sort sv_SE"] != full["sort sv_SE"]
    assert control["tz Europe/Berlin de_DE StandardTime"] != full["tz Europe/Berlin de_DE StandardTime"]
