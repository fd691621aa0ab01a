"""Hostile-input-safe JSON reading for .kvplan files.

Everything a plan file may contain is checked before pydantic sees it: size (before reading),
encoding, nesting depth (before parsing, so a ``[[[[…`` bomb never reaches the recursive parser),
duplicate keys, NaN/Infinity, over-long numbers, strings and arrays. Every failure is a
``PlanFileError`` whose message names the problem; nothing is evaluated, imported or unpickled.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from kvdesk.core.errors import InputError, KvdeskError
from kvdesk.core.limits import read_bytes

MAX_FILE_BYTES = 16 << 20
MAX_DEPTH = 32
MAX_STRING_CHARS = 1 << 20
MAX_ARRAY_ITEMS = 1 << 16
MAX_INT_DIGITS = 20  # 2**64 has 20 digits; plan integers stay below 2**50
MAX_NUMBER_CHARS = 64

_SURROGATE = re.compile("[\ud800-\udfff]")
_OPEN = np.frombuffer(b"[{", dtype=np.uint8)
_BRACKETS = np.frombuffer(b"[]{}", dtype=np.uint8)


class PlanFileError(KvdeskError):
    """A .kvplan file could not be read or written; the message says why."""


def read_limited(path: Path) -> bytes:
    """The file's bytes, refusing anything that is not a regular file of at most MAX_FILE_BYTES."""
    try:
        return read_bytes(path, MAX_FILE_BYTES, what="plan file")
    except InputError as exc:
        raise PlanFileError(str(exc)) from None


def decode_text(data: bytes) -> str:
    """UTF-8 text (a UTF-8 byte-order mark is accepted and dropped; UTF-16/32 and binary are refused)."""
    if len(data) > MAX_FILE_BYTES:
        raise PlanFileError(f"larger than the {MAX_FILE_BYTES >> 20} MiB a plan file may have")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise PlanFileError("the file is UTF-16 (or UTF-32) text; plan files are UTF-8 — re-save it as UTF-8")
    if b"\x00" in data[:8192]:
        raise PlanFileError("binary data (NUL bytes), not a plan file")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1].hex()
        raise PlanFileError(f"not UTF-8 text (byte 0x{bad} at offset {exc.start})") from None


def nesting_depth(data: bytes) -> int:
    """Deepest ``[``/``{`` nesting outside string literals: vectorised, linear, no recursion.

    A quote is real unless an odd run of backslashes precedes it; bytes after an odd number of
    real quotes are inside a string. (UTF-8 continuation bytes are never ASCII, so scanning bytes
    is safe.)
    """
    arr = np.frombuffer(data, dtype=np.uint8)
    quotes = np.flatnonzero(arr == ord('"'))
    if b"\\" in data and quotes.size:
        backslash = arr == ord("\\")
        index = np.arange(arr.size, dtype=np.int32)
        last_other = np.maximum.accumulate(np.where(backslash, np.int32(-1), index))  # last non-\\ at/before i
        before = np.maximum(quotes - 1, 0)
        run = np.where(quotes > 0, before - last_other[before], 0)  # backslashes right before each quote
        quotes = quotes[run % 2 == 0]
    toggles = np.zeros(arr.size, dtype=bool)
    toggles[quotes] = True
    inside = np.logical_xor.accumulate(toggles)  # True from an opening quote up to (not incl.) its closing one
    brackets = np.flatnonzero(np.isin(arr, _BRACKETS) & ~inside)
    steps = np.where(np.isin(arr[brackets], _OPEN), 1, -1).astype(np.int32)
    return int(np.cumsum(steps).max(initial=0))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise PlanFileError(f"duplicate key '{_short(key)}' in one object")
        obj[key] = value
    return obj


def _no_constants(name: str) -> Any:
    raise PlanFileError(f"'{name}' is not a number a plan may hold (NaN and Infinity are not allowed)")


def _int(text: str) -> int:
    digits = text.lstrip("-")
    if len(digits) > MAX_INT_DIGITS:
        raise PlanFileError(f"a {len(digits)}-digit integer is too large (at most {MAX_INT_DIGITS} digits)")
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise PlanFileError(f"a {len(text)}-character number is too long")
    value = float(text)
    if not math.isfinite(value):
        raise PlanFileError(f"the number {_short(text)} is out of range")
    return value


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_sizes(root: Any) -> None:
    """Iterative walk: string and array limits (depth was checked before parsing)."""
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if len(node) > MAX_STRING_CHARS:
                raise PlanFileError(f"a text value of {len(node):,} characters is too long "
                                    f"(at most {MAX_STRING_CHARS:,})")
            if _SURROGATE.search(node):
                raise PlanFileError("a text value holds an invalid character (a lone UTF-16 surrogate escape)")
        elif isinstance(node, list):
            if len(node) > MAX_ARRAY_ITEMS:
                raise PlanFileError(f"a list of {len(node):,} items is too long (at most {MAX_ARRAY_ITEMS:,})")
            stack.extend(node)
        elif isinstance(node, dict):
            if len(node) > MAX_ARRAY_ITEMS:
                raise PlanFileError(f"an object with {len(node):,} keys is too large")
            stack.extend(node.keys())
            stack.extend(node.values())


def parse_document(text: str) -> dict[str, Any]:
    """Parse plan-file text into a dict, or raise PlanFileError naming the problem."""
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_FILE_BYTES:
        raise PlanFileError(f"larger than the {MAX_FILE_BYTES >> 20} MiB a plan file may have")
    if not text.strip():
        raise PlanFileError("the file is empty")
    depth = nesting_depth(raw)
    if depth > MAX_DEPTH:
        raise PlanFileError(f"nested {depth} levels deep (a plan file nests at most {MAX_DEPTH})")
    try:
        doc = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constants,
            parse_int=_int,
            parse_float=_float,
        )
    except json.JSONDecodeError as exc:
        at_end = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        hint = " — the file looks truncated" if at_end else ""
        raise PlanFileError(f"not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}{hint}") from None
    except RecursionError:  # belt and braces: the depth scan should have caught it
        raise PlanFileError("nested too deeply") from None
    if not isinstance(doc, dict):
        raise PlanFileError(f"the top level is a JSON {type(doc).__name__}, not an object: not a kvdesk plan")
    _check_sizes(doc)
    return doc
