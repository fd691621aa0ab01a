"""Find the catalogue entry for a probed device ("NVIDIA GeForce RTX 4090" → rtx-4090) for its bandwidth."""

from __future__ import annotations

import re

from kvdesk.core.catalog import GpuEntry, all_gpus
from kvdesk.core.probe.models import ProbedDevice

_NOISE = {"nvidia", "geforce", "amd", "radeon", "apple", "(tm)", "tm", "graphics", "gpu"}


def _tokens(name: str) -> list[str]:
    words = re.split(r"[\s\-_/,()\[\]]+", name.lower())
    return [w for w in words if w and w not in _NOISE]


def catalog_match(device: ProbedDevice, entries: list[GpuEntry] | None = None) -> GpuEntry | None:
    """The catalogue GPU with the same name (ignoring vendor words) and a memory size within 10 %."""
    wanted = _tokens(device.name)
    if not wanted:
        return None
    pool = all_gpus() if entries is None else entries

    def close(e: GpuEntry) -> bool:
        return device.total_bytes <= 0 or abs(e.memory_bytes - device.total_bytes) <= 0.1 * device.total_bytes

    exact = [e for e in pool if _tokens(e.name) == wanted and close(e)]
    if exact:
        return exact[0]
    loose = [e for e in pool if _tokens(e.name) and set(_tokens(e.name)) <= set(wanted) and close(e)]
    return max(loose, key=lambda e: len(_tokens(e.name)), default=None)
