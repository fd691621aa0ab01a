"""Bounds for everything kvdesk reads from outside: file size, JSON nesting, string and array sizes.

Every reader checks *before* it allocates: a 10 GB file picked by mistake is refused from its
``stat`` in microseconds; a JSON document is scanned for nesting depth before ``json.loads`` (whose
C scanner would otherwise hit RecursionError); numbers with thousands of digits, NaN and Infinity are
refused; strings, arrays and objects are capped. Every refusal is an ``InputError`` naming the file
and the limit.

Typical use::

    data = read_json(path, max_bytes=MAX_PLAN_BYTES)           # dict/list, bounded
    raw = read_bytes(path, max_bytes=MAX_CONFIG_BYTES)         # whole small file
    check_file_size(path, MAX_CONFIG_BYTES)                    # just the stat check
    n = check_count(value, MAX_ARRAY_ITEMS, "tensor count")    # a count read from a binary header
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kvdesk.core.errors import InputError

KIB, MIB = 1 << 10, 1 << 20

MAX_PLAN_BYTES = 16 * MIB  # a .kvplan holds one model spec and notes: a few KiB normally
MAX_CONFIG_BYTES = 8 * MIB  # a Hugging Face config.json (largest real ones are ~100 KiB)
MAX_LOG_BYTES = 64 * MIB  # an engine log pasted or opened
MAX_TOOL_OUTPUT_BYTES = 4 * MIB  # nvidia-smi / rocm-smi / amd-smi output
MAX_SAFETENSORS_HEADER_BYTES = 100 * MIB  # the safetensors library's own limit
MAX_JSON_DEPTH = 64
MAX_STRING_CHARS = 1 * MIB
MAX_ARRAY_ITEMS = 1 << 20
MAX_NUMBER_CHARS = 64  # digits of one JSON number (Python refuses > 4300 itself, slowly)


@dataclass(frozen=True)
class JsonLimits:
    max_bytes: int = MAX_PLAN_BYTES
    max_depth: int = MAX_JSON_DEPTH
    max_string_chars: int = MAX_STRING_CHARS
    max_items: int = MAX_ARRAY_ITEMS  # per array / object
    max_number_chars: int = MAX_NUMBER_CHARS


DEFAULT_JSON_LIMITS = JsonLimits()
_SURROGATE = re.compile("[\ud800-\udfff]")


def _name(path: Path | str) -> str:
    return Path(path).name or str(path)


def _human(n: int) -> str:
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f} GiB"
    if n >= MIB:
        return f"{n / MIB:.0f} MiB" if n % MIB == 0 else f"{n / MIB:.1f} MiB"
    if n >= KIB:
        return f"{n / KIB:.0f} KiB"
    return f"{n} bytes"


def check_file_size(path: Path | str, max_bytes: int, what: str = "file") -> int:
    """Refuse ``path`` unless it is a regular file of at most ``max_bytes``; return its size.

    Only ``stat`` is called, so a huge (or sparse) file costs nothing. Directories, FIFOs and
    devices are refused too: reading a FIFO would block forever.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{_name(path)}: no such file") from None
    except OSError as exc:
        raise InputError(f"{_name(path)}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{_name(path)}: is a folder, not a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{_name(path)}: not a regular file")
    if st.st_size > max_bytes:
        raise InputError(
            f"{_name(path)}: {_human(st.st_size)} is too large for a {what} (limit {_human(max_bytes)})"
        )
    return st.st_size


def read_bytes(path: Path | str, max_bytes: int, what: str = "file") -> bytes:
    """The whole file, refused from its size first; never reads more than ``max_bytes`` + 1 bytes
    (a file that grows while being read, or a /proc file that reports size 0, is still bounded)."""
    check_file_size(path, max_bytes, what)
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise InputError(f"{_name(path)}: cannot read ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise InputError(f"{_name(path)}: larger than {_human(max_bytes)}, not a {what}")
    return data


def read_head(path: Path | str, n: int) -> bytes:
    """The first ``n`` bytes (fewer if the file is shorter) of a regular file, for headers."""
    check_file_size(path, 1 << 62)
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except OSError as exc:
        raise InputError(f"{_name(path)}: cannot read ({exc.strerror or exc})") from None


def decode_text(data: bytes, name: str = "input") -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{name}: not UTF-8 text (bad byte at offset {exc.start})") from None
    return text


def read_text(path: Path | str, max_bytes: int, what: str = "file") -> str:
    return decode_text(read_bytes(path, max_bytes, what), _name(path))


def check_count(value: int, maximum: int, what: str, name: str = "input") -> int:
    """A count or length read from a header: refused when negative or above ``maximum``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value > maximum:
        raise InputError(f"{name}: {what} {value!r} is out of range (0 … {maximum:,})")
    return value


def check_text_size(text: str, max_chars: int, name: str = "input") -> str:
    if len(text) > max_chars:
        raise InputError(f"{name}: {len(text):,} characters is more than kvdesk reads ({max_chars:,})")
    return text


# -- JSON ------------------------------------------------------------------------------------------
def json_depth(text: str) -> int:
    """Deepest ``[``/``{`` nesting of a JSON text, ignoring brackets inside strings (one linear pass)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _bracket_depth_upper_bound(text: str) -> int:
    """Deepest nesting counting every bracket, strings included (an upper bound; numpy, fast)."""
    raw = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    steps = np.zeros(raw.shape, dtype=np.int32)
    steps[(raw == ord("[")) | (raw == ord("{"))] = 1
    steps[(raw == ord("]")) | (raw == ord("}"))] = -1
    return int(np.cumsum(steps).max(initial=0))


def _check_depth(text: str, limits: JsonLimits, name: str) -> None:
    # fast path: fewer brackets than the limit, or a bound that ignores strings is already within it
    if text.count("[") + text.count("{") <= limits.max_depth:
        return
    if _bracket_depth_upper_bound(text) <= limits.max_depth:
        return
    depth = json_depth(text)  # exact, slower: only for documents that look deep
    if depth > limits.max_depth:
        raise InputError(f"{name}: JSON nested {depth} levels deep (limit {limits.max_depth})")


def _hooks(limits: JsonLimits, name: str) -> dict[str, Any]:
    def parse_int(s: str) -> int:
        if len(s) > limits.max_number_chars:
            raise InputError(f"{name}: a number with {len(s)} digits (limit {limits.max_number_chars})")
        return int(s)

    def parse_float(s: str) -> float:
        if len(s) > limits.max_number_chars:
            raise InputError(f"{name}: a number with {len(s)} characters (limit {limits.max_number_chars})")
        value = float(s)
        if not math.isfinite(value):
            raise InputError(f"{name}: number {s[:20]} is out of range")
        return value

    def parse_constant(s: str) -> float:
        raise InputError(f"{name}: {s} is not a valid JSON number")

    return {"parse_int": parse_int, "parse_float": parse_float, "parse_constant": parse_constant}


def _check_sizes(value: object, limits: JsonLimits, name: str) -> None:
    """Walk the parsed document (depth already bounded) and cap strings, arrays and objects."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if len(item) > limits.max_string_chars:
                raise InputError(f"{name}: a text of {len(item):,} characters (limit {limits.max_string_chars:,})")
            if _SURROGATE.search(item):
                raise InputError(f"{name}: a text holds an invalid character (a lone UTF-16 surrogate)")
        elif isinstance(item, list):
            if len(item) > limits.max_items:
                raise InputError(f"{name}: an array of {len(item):,} items (limit {limits.max_items:,})")
            stack.extend(item)
        elif isinstance(item, dict):
            if len(item) > limits.max_items:
                raise InputError(f"{name}: an object with {len(item):,} keys (limit {limits.max_items:,})")
            stack.extend(item.keys())
            stack.extend(item.values())


def loads_json(text: str | bytes, limits: JsonLimits = DEFAULT_JSON_LIMITS, name: str = "input") -> Any:
    """``json.loads`` with bounds: size, nesting depth, number length, NaN/Infinity, strings, arrays.

    Raises ``InputError`` (a ``ValueError``) with a message naming ``name`` for every bad input.
    """
    if isinstance(text, bytes | bytearray):
        if len(text) > limits.max_bytes:
            raise InputError(f"{name}: {_human(len(text))} is too large (limit {_human(limits.max_bytes)})")
        text = decode_text(bytes(text), name)
    if len(text) > limits.max_bytes:
        raise InputError(f"{name}: {len(text):,} characters is too large (limit {_human(limits.max_bytes)})")
    _check_depth(text, limits, name)
    try:
        value = json.loads(text, **_hooks(limits, name))
    except InputError:
        raise
    except json.JSONDecodeError as exc:
        raise InputError(f"{name}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except (ValueError, RecursionError, OverflowError) as exc:
        raise InputError(f"{name}: not valid JSON ({exc})") from None
    _check_sizes(value, limits, name)
    return value


def read_json(path: Path | str, limits: JsonLimits = DEFAULT_JSON_LIMITS, what: str = "JSON file") -> Any:
    """Read and parse a JSON file with every bound of ``limits`` (size from ``stat`` first)."""
    data = read_bytes(path, limits.max_bytes, what)
    return loads_json(data, limits, _name(path))


def read_json_object(path: Path | str, limits: JsonLimits = DEFAULT_JSON_LIMITS, what: str = "JSON file") -> dict:
    value = read_json(path, limits, what)
    if not isinstance(value, dict):
        raise InputError(f"{_name(path)}: expected a JSON object, found {type(value).__name__}")
    return value
