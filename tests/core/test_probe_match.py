"""Matching a probed device to the GPU catalogue (for its bandwidth)."""

from __future__ import annotations

from kvdesk.core.catalog import find_gpu
from kvdesk.core.probe.match import catalog_match
from kvdesk.core.probe.models import ProbedDevice

MIB = 1 << 20


def dev(name: str, total: int) -> ProbedDevice:
    return ProbedDevice(index=0, name=name, total_bytes=total, used_bytes=0, free_bytes=total)


def test_vendor_words_are_ignored_and_memory_must_be_close() -> None:
    entry = find_gpu("rtx-4090")
    hit = catalog_match(dev("NVIDIA GeForce RTX 4090", 24564 * MIB), [entry])
    assert hit is not None and hit.id == "rtx-4090"
    assert catalog_match(dev("GeForce RTX 4090", 24564 * MIB), [entry]) is not None
    assert catalog_match(dev("NVIDIA GeForce RTX 4090", 48 << 30), [entry]) is None  # a 48 GB mod is not it
    assert catalog_match(dev("Tesla P100-PCIE-16GB", 16280 * MIB), [entry]) is None
    assert catalog_match(dev("NVIDIA", 24564 * MIB), [entry]) is None
