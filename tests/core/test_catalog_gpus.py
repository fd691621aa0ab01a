"""Shipped GPU memory is the total engines size against: CUDA's (torch / cudaMemGetInfo), not nvidia-smi's.

vLLM budgets ``total_memory x gpu_memory_utilization`` from ``torch.cuda.mem_get_info()`` and llama.cpp fits
against ``cudaMemGetInfo``; on native Linux both report a few hundred MiB less than nvidia-smi's
``memory.total``, which still counts the memory the driver reserves for itself.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kvdesk.core import catalog
from kvdesk.core.catalog import GpuEntry

GIB = 1 << 30
MIB = 1 << 20
VALIDATION = Path(__file__).parents[1] / "data" / "validation"

# Marketed capacity in GB (GDDR/HBM sizes are binary: "24 GB" is 24 GiB of chips) of every discrete NVIDIA entry.
LABEL_GB = {
    "h100-sxm-80gb": 80, "rtx-4090": 24, "rtx-3060-12gb": 12, "rtx-3070": 8, "rtx-3080-10gb": 10,
    "rtx-3090": 24, "rtx-3090-ti": 24, "rtx-4060-8gb": 8, "rtx-4060-ti-16gb": 16, "rtx-4070": 12,
    "rtx-4070-ti-super": 16, "rtx-4080-super": 16, "rtx-5060-ti-16gb": 16, "rtx-5070": 12, "rtx-5070-ti": 16,
    "rtx-5080": 16, "rtx-5090": 32, "rtx-a4000": 16, "rtx-a5000": 24, "rtx-a6000": 48, "rtx-6000-ada": 48,
    "rtx-pro-6000": 96, "t4": 16, "l4": 24, "a10": 24, "l40s": 48, "a100-40gb": 40, "a100-80gb": 80,
    "h100-pcie-80gb": 80, "h200": 141, "b200": 180,
}  # fmt: skip
NOT_VERIFIED = "not verified"


def _discrete_nvidia() -> list[GpuEntry]:
    return [g for g in catalog.shipped_gpus() if g.vendor == "nvidia" and not g.unified_memory]


def test_every_discrete_nvidia_entry_has_a_label_size_here() -> None:
    assert {g.id for g in _discrete_nvidia()} == set(LABEL_GB)


@pytest.mark.parametrize("gpu", _discrete_nvidia(), ids=lambda g: g.id)
def test_cuda_total_is_under_the_label_unless_the_note_says_why(gpu: GpuEntry) -> None:
    label = LABEL_GB[gpu.id] * GIB
    if NOT_VERIFIED in gpu.note:
        assert gpu.memory_bytes <= label, gpu.id
        return
    # the driver keeps a few hundred MiB (plus ECC on T4/L4/A10/L40S): under the label, never by 10 % or more
    assert 0.9 * label < gpu.memory_bytes < label, gpu.id
    assert gpu.source.startswith("CUDA total"), gpu.id


def _nvidia_smi_total(note: str) -> int | None:
    found = re.search(r"nvidia-smi memory\.total (\d+) MiB", note)
    return int(found.group(1)) * MIB if found else None


def test_cuda_total_sits_a_few_hundred_mib_under_nvidia_smi() -> None:
    pairs = [(g, _nvidia_smi_total(g.note)) for g in _discrete_nvidia()]
    checked = [(g, smi) for g, smi in pairs if smi is not None]
    assert len(checked) >= 12
    for g, smi in checked:
        gap_mib = (smi - g.memory_bytes) / MIB
        assert 250 < gap_mib < 1024, (g.id, gap_mib)


def test_h100_matches_the_real_vllm_log() -> None:
    runs = json.loads((VALIDATION / "engine_memory.json").read_text())
    totals = {r["vllm"]["total_gpu_bytes"] for r in runs if r.get("vllm") and "H100" in (r.get("gpu") or "")}
    assert totals == {catalog.find_gpu("h100-sxm-80gb").memory_bytes}


@pytest.mark.parametrize(
    ("gpu_id", "printed_gib"),
    [  # the 2-decimal GiB that torch / vLLM print for these cards, cited in each entry's source
        ("h100-sxm-80gb", 79.19), ("rtx-4090", 23.64), ("rtx-5090", 31.37), ("t4", 14.56),
        ("a100-80gb", 79.25), ("rtx-3080-10gb", 9.65), ("rtx-a4000", 15.61), ("rx-7900-xtx", 23.98),
    ],
)  # fmt: skip
def test_stored_totals_print_as_the_engines_print_them(gpu_id: str, printed_gib: float) -> None:
    gpu = catalog.find_gpu(gpu_id)
    assert f"{gpu.memory_bytes / GIB:.2f}" == f"{printed_gib:.2f}"
    assert f"{printed_gib:.2f} GiB" in gpu.source or f"{printed_gib:.2f}GiB" in gpu.source


def test_unverified_entries_are_few_and_labelled() -> None:
    unverified = [g for g in catalog.shipped_gpus() if NOT_VERIFIED in g.note]
    assert {g.id for g in unverified} <= {
        "rtx-4060-8gb", "rtx-4070-ti-super", "rx-7900-xt", "mi210", "mi250x-gcd", "mi325x",
    }  # fmt: skip
    for g in unverified:
        assert g.source.startswith("label-derived"), g.id


def test_rocm_totals_under_the_label() -> None:
    assert catalog.find_gpu("mi300x").memory_bytes == 196592 * MIB < 192 * GIB
    assert catalog.find_gpu("rx-7900-xtx").memory_bytes == 24560 * MIB < 24 * GIB
