"""Pure parsers of GPU tools' output (tested on recorded outputs in tests/data/probe/).

Each takes the tool's text and returns ProbedDevice objects; garbage raises ProbeParseError with a
message naming what was wrong, never anything else.
"""

from __future__ import annotations

import json
import re
from typing import Any

from kvdesk.core.probe.models import GpuProcess, ProbedDevice

MIB = 1 << 20
_NA = {"", "n/a", "[n/a]", "[not supported]", "not supported", "[unknown error]", "[insufficient permissions]"}


class ProbeParseError(ValueError):
    """A tool printed something this parser does not understand."""


# -- nvidia-smi CSV ------------------------------------------------------------------------------------
def _csv_fields(line: str, ncols: int, join_at: int | None) -> list[str]:
    parts = [p.strip() for p in line.split(",")]
    if len(parts) > ncols and join_at is not None:
        extra = len(parts) - ncols  # a name with commas in it (Windows paths): glue it back together
        parts[join_at : join_at + extra + 1] = [", ".join(parts[join_at : join_at + extra + 1])]
    return parts


def _header_key(field: str) -> str:
    return re.sub(r"\s*\[.*?\]\s*$", "", field.strip()).lower()


def _mib(value: str | None) -> int | None:
    """'81559', '81559 MiB' → bytes; '[N/A]' → None. nvidia-smi prints memory in MiB."""
    if value is None or value.strip().lower() in _NA:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(MiB)?\s*", value)
    if not match:
        raise ProbeParseError(f"nvidia-smi: '{value}' is not a memory size")
    mib = float(match.group(1))
    if not mib < 1 << 30:  # ≥ 1 PiB (or a 400-digit number, which parses as inf): not a real GPU
        raise ProbeParseError(f"nvidia-smi: {match.group(1)[:40]} MiB is not a plausible memory size")
    return round(mib * MIB)


def parse_csv_table(text: str, columns: list[str] | None = None) -> list[dict[str, str]]:
    """Rows of an nvidia-smi ``--format=csv`` table keyed by query name (``memory.total``).

    With ``columns`` the text has no header (``noheader``); otherwise the first line is the header,
    whose ``[MiB]`` unit suffixes are dropped.
    """
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if columns is None:
        if not lines:
            raise ProbeParseError("nvidia-smi printed nothing")
        columns = [_header_key(c) for c in lines[0].split(",")]
        lines = lines[1:]
    cols = [c.strip().lower() for c in columns]
    join_at = next((cols.index(n) for n in ("process_name", "name") if n in cols), None)
    rows = []
    for line in lines:
        fields = _csv_fields(line, len(cols), join_at)
        if len(fields) != len(cols):
            raise ProbeParseError(f"nvidia-smi: expected {len(cols)} fields, got {len(fields)}: {line[:120]!r}")
        rows.append(dict(zip(cols, fields, strict=True)))
    return rows


def parse_nvidia_smi_gpus(text: str, columns: list[str] | None = None) -> list[ProbedDevice]:
    """``nvidia-smi --query-gpu=index,uuid,name,memory.total,memory.used,memory.free,driver_version``."""
    devices = []
    for i, row in enumerate(parse_csv_table(text, columns)):
        total = _mib(row.get("memory.total"))
        if total is None:  # e.g. GB10 / unified parts report [N/A]: nothing to plan against
            continue
        reserved = _mib(row.get("memory.reserved")) if row.get("memory.reserved") else None
        if reserved is not None and 0 <= reserved < total:
            total -= reserved  # the driver's share: CUDA-visible total = total - reserved (see backends.py)
        used, free = _mib(row.get("memory.used")), _mib(row.get("memory.free"))
        if used is None and free is not None:
            used = max(0, total - free)
        used = used or 0
        free = free if free is not None else max(0, total - used)
        index = row.get("index", "")
        devices.append(
            ProbedDevice(
                index=int(index) if index.isdigit() else i,
                name=row.get("name") or f"GPU {i}",
                vendor="nvidia",
                total_bytes=total,
                used_bytes=used,
                free_bytes=free,
                uuid=row.get("uuid") or row.get("gpu_uuid") or None,
                driver_version=_na_to_none(row.get("driver_version")),
                backend="nvidia-smi",
            )
        )
    return devices


def parse_nvidia_smi_apps(text: str, columns: list[str] | None = None) -> list[tuple[str | None, GpuProcess]]:
    """``--query-compute-apps=gpu_uuid,pid,process_name,used_memory`` → (gpu uuid or None, process)."""
    out = []
    for row in parse_csv_table(text, columns):
        pid = row.get("pid", "")
        if not pid.isdigit():
            raise ProbeParseError(f"nvidia-smi: '{pid}' is not a process id")
        used = _mib(row.get("used_memory") or row.get("used_gpu_memory"))
        proc = GpuProcess(pid=int(pid), name=row.get("process_name", ""), used_bytes=used)
        out.append((row.get("gpu_uuid") or None, proc))
    return out


def attach_processes(devices: list[ProbedDevice], procs: list[tuple[str | None, GpuProcess]]) -> None:
    """Give each device its processes (by uuid; with one device and no uuid, to that device)."""
    by_uuid = {d.uuid: d for d in devices if d.uuid}
    for uuid, proc in procs:
        target = by_uuid.get(uuid) if uuid else (devices[0] if len(devices) == 1 else None)
        if target is not None:
            target.processes.append(proc)


def _na_to_none(value: str | None) -> str | None:
    return None if value is None or value.strip().lower() in _NA else value.strip()


# -- rocm-smi / amd-smi JSON -----------------------------------------------------------------------------
def _load_json(text: str, tool: str) -> Any:
    # amd-smi / rocm-smi may print a banner first ("WARNING: amd_smi not in render group")
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    text = text[min(starts) :] if starts else text
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, or a number over Python's 4300 digits
        raise ProbeParseError(f"{tool}: output is not JSON ({exc.__class__.__name__})") from None


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


_ROCM_NAME_KEYS = ("Card Series", "Card series", "Device Name", "Card SKU", "Card Model", "Card model")


def parse_rocm_smi_json(text: str) -> list[ProbedDevice]:
    """``rocm-smi --showmeminfo vram --showproductname --json``: {"card0": {"VRAM Total Memory (B)": "…"}}."""
    data = _load_json(text, "rocm-smi")
    if not isinstance(data, dict):
        raise ProbeParseError("rocm-smi: expected a JSON object of cards")
    devices = []
    for key in sorted((k for k in data if str(k).startswith("card")), key=_card_number):
        card = data[key]
        if not isinstance(card, dict):
            continue
        total = _int_or_none(card.get("VRAM Total Memory (B)"))
        used = _int_or_none(card.get("VRAM Total Used Memory (B)"))
        if total is None or total <= 0:
            continue
        used = min(max(0, used or 0), total)
        name = next((str(card[k]) for k in _ROCM_NAME_KEYS if card.get(k) not in (None, "", "N/A")), key)
        devices.append(
            ProbedDevice(
                index=_card_number(key),
                name=name,
                vendor="amd",
                total_bytes=total,
                used_bytes=used,
                free_bytes=total - used,
                backend="rocm-smi",
            )
        )
    return devices


def _card_number(key: str) -> int:
    digits = re.sub(r"\D", "", str(key))
    return int(digits) if digits else 0


# amd-smi prints memory with unit "MB" that is really MiB: a 16 GB RX 7800 XT reports total_vram
# 16368 "MB" (nathaninline/ajean#39), and rocm-smi reports the same card family as 17163091968 B
# = 16368 MiB (ROCm/rocm_smi_lib#120, RX 6800). So MB/GB are read as binary units here.
_AMD_UNITS = {"b": 1, "kb": 1 << 10, "kib": 1 << 10, "mb": MIB, "mib": MIB, "gb": 1 << 30, "gib": 1 << 30}


def _amd_bytes(value: object) -> int | None:
    """{"value": 16368, "unit": "MB"} or a bare number (older amd-smi: MB) → bytes; "N/A" → None."""
    unit = "mb"
    if isinstance(value, dict):
        unit = str(value.get("unit", "MB")).strip().lower()
        value = value.get("value")
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    if unit not in _AMD_UNITS or number < 0 or number > 1e18:
        return None
    return round(number * _AMD_UNITS[unit])


def _amd_entries(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, dict) and isinstance(data.get("gpu_data"), list):  # amd-smi ≥ 6.4 / 7.x
        data = data["gpu_data"]
    if not isinstance(data, list):
        raise ProbeParseError("amd-smi: expected a list of GPUs (or {'gpu_data': [...]})")
    return [e for e in data if isinstance(e, dict)]


def parse_amd_smi_names(text: str) -> dict[int, str]:
    """``amd-smi static --asic --json`` → {gpu index: market name}; unreadable → {}."""
    try:
        entries = _amd_entries(_load_json(text, "amd-smi"))
    except ProbeParseError:
        return {}
    names = {}
    for e in entries:
        asic = e.get("asic")
        idx = _int_or_none(e.get("gpu"))
        if isinstance(asic, dict) and idx is not None and asic.get("market_name") not in (None, "", "N/A"):
            names[idx] = str(asic["market_name"])
    return names


def parse_amd_smi_metric(text: str, names: dict[int, str] | None = None) -> list[ProbedDevice]:
    """``amd-smi metric --mem-usage --json``: per GPU ``mem_usage.total_vram/used_vram/free_vram``."""
    devices = []
    for pos, entry in enumerate(_amd_entries(_load_json(text, "amd-smi"))):
        mem = entry.get("mem_usage")
        if not isinstance(mem, dict):
            continue
        total, used, free = (_amd_bytes(mem.get(k)) for k in ("total_vram", "used_vram", "free_vram"))
        if not total:
            continue
        if used is None:
            used = total - free if free is not None else 0
        used = min(max(0, used), total)
        free = free if free is not None and free <= total else total - used
        index = _int_or_none(entry.get("gpu"))
        index = pos if index is None else index
        name = (names or {}).get(index) or _amd_inline_name(entry) or f"AMD GPU {index}"
        devices.append(
            ProbedDevice(
                index=index,
                name=name,
                vendor="amd",
                total_bytes=total,
                used_bytes=used,
                free_bytes=free,
                backend="amd-smi",
            )
        )
    return devices


def _amd_inline_name(entry: dict[str, Any]) -> str | None:
    asic = entry.get("asic")
    if isinstance(asic, dict) and asic.get("market_name") not in (None, "", "N/A"):
        return str(asic["market_name"])
    return None


# -- macOS -------------------------------------------------------------------------------------------
# The GPU may wire at most recommendedMaxWorkingSetSize of unified memory. Real llama.cpp Metal logs
# print it: an M1 Pro with 16 GiB shows "recommendedMaxWorkingSetSize = 11453.25 MB" (decimal MB,
# = 2/3 of 16 GiB; ggml_metal_init lines in llama.cpp CI logs and issue reports), and 64 GiB+ Macs
# report 3/4. ``sysctl iogpu.wired_limit_mb`` (0 = default) raises or lowers the limit on macOS 14+.
def default_working_set_fraction(memsize_bytes: int) -> float:
    return 2.0 / 3.0 if memsize_bytes <= 36 * (1 << 30) else 0.75


_VM_PAGE = re.compile(r"page size of (\d+) bytes")
_VM_LINE = re.compile(r'^\s*"?([A-Za-z][A-Za-z ()-]*?)"?\s*:\s*(\d+)\.?\s*$')
_VM_USED = ("Pages active", "Pages wired down", "Pages occupied by compressor")


def parse_vm_stat_used(text: str) -> int | None:
    """Bytes in use (active + wired + compressed pages) from ``vm_stat``; None when unreadable."""
    page = _VM_PAGE.search(text)
    if not page:
        return None
    values = {}
    for line in text.splitlines():
        match = _VM_LINE.match(line)
        if match:
            values[match.group(1).strip()] = int(match.group(2))
    if not all(k in values for k in _VM_USED[:2]):
        return None
    return sum(values.get(k, 0) for k in _VM_USED) * int(page.group(1))


def parse_macos(memsize_text: str, wired_limit_text: str = "", vm_stat_text: str = "", chip: str = "") -> ProbedDevice:
    """``sysctl -n hw.memsize`` (+ ``iogpu.wired_limit_mb``, ``vm_stat``) → one unified-memory device."""
    memsize = _int_or_none(memsize_text)
    if memsize is None or memsize <= 0:
        raise ProbeParseError(f"sysctl hw.memsize: '{memsize_text.strip()[:40]}' is not a byte count")
    wired_mb = _int_or_none(wired_limit_text) or 0
    if wired_mb > 0:
        budget, how = min(memsize, wired_mb * MIB), f"iogpu.wired_limit_mb = {wired_mb}"
    else:
        fraction = default_working_set_fraction(memsize)
        budget, how = int(memsize * fraction), f"default working-set limit ≈ {fraction:.0%} of RAM (estimate)"
    used = parse_vm_stat_used(vm_stat_text) if vm_stat_text else None
    used = min(max(0, used or 0), memsize)
    return ProbedDevice(
        index=0,
        name=(chip.strip() or "Apple GPU")[:200],
        vendor="apple",
        total_bytes=memsize,
        used_bytes=used,
        free_bytes=memsize - used,
        budget_bytes=budget,
        unified_memory=True,
        backend="macOS",
        note=how + ("" if vm_stat_text else "; memory used by other apps unknown"),
    )
