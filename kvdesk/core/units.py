"""Parsing and formatting of sizes and token counts (``32k``, ``1.5M``, ``12.3 GiB``)."""

from __future__ import annotations

import re

from kvdesk.core.errors import InputError

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
_TOKENS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$")


def parse_tokens(text: str | int, field: str = "ctx") -> int:
    """``32768``, ``32k`` (= 32768) or ``1M`` (= 1048576); k/M are binary, as context sizes are."""
    if isinstance(text, int):
        value = text
    else:
        match = _TOKENS.match(str(text))
        if not match:
            raise InputError(f"{field}: '{text}' is not a token count (e.g. 8192, 32k, 1M)", field=field)
        number, suffix = float(match.group(1)), match.group(2).lower()
        scaled = number * {"": 1, "k": 1024, "m": 1024 * 1024}[suffix]
        if not scaled < 2**62:  # also inf: a 400-digit number parses as float('inf')
            raise InputError(f"{field}: '{str(text)[:40]}' is far too large", field=field)
        value = round(scaled)
    if value < 1:
        raise InputError(f"{field}: must be at least 1 (got {text})", field=field)
    return value


def format_tokens(n: int) -> str:
    if n >= 1024 * 1024 and n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)}M"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024}k"
    return f"{n:,}"


def gib(n: float) -> float:
    return n / GIB


def format_bytes(n: float, digits: int = 2) -> str:
    sign = "-" if n < 0 else ""
    n = abs(n)
    if n >= GIB:
        return f"{sign}{n / GIB:.{digits}f} GiB"
    if n >= MIB:
        return f"{sign}{n / MIB:.{digits}f} MiB"
    if n >= KIB:
        return f"{sign}{n / KIB:.{digits}f} KiB"
    return f"{sign}{int(n)} B"
