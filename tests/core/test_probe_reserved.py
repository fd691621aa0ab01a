"""The probe reports the CUDA-visible total (nvidia-smi/NVML total minus the driver's reserved share).

Numbers from a real `nvidia-smi -q` capture of an H200 (FB Memory Usage: Total 143771 MiB, Reserved
614 MiB) whose torch total was 143156 MiB (see presets/gpus.json 'h200' source and note).
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import Any

from kvdesk.core.probe.backends import NvidiaSmiBackend, NvmlBackend, ProbeUnavailable
from kvdesk.core.probe.parsers import parse_nvidia_smi_gpus

MIB = 1 << 20
H200_CSV = (
    "index, uuid, name, memory.total [MiB], memory.reserved [MiB], memory.used [MiB], memory.free [MiB], "
    "driver_version\n0, GPU-1, NVIDIA H200, 143771, 614, 0, 143157, 570.133.20\n"
)
OLD_CSV = (
    "index, uuid, name, memory.total [MiB], memory.used [MiB], memory.free [MiB], driver_version\n"
    "0, GPU-1, Tesla P100-PCIE-16GB, 16280, 0, 16280, 418.87.01\n"
)


def test_reserved_column_is_subtracted_from_total() -> None:
    (dev,) = parse_nvidia_smi_gpus(H200_CSV)
    assert dev.total_bytes == 143157 * MIB
    assert dev.free_bytes == 143157 * MIB and dev.used_bytes == 0


def test_old_nvidia_smi_without_reserved_field_is_retried() -> None:
    calls: list[str] = []

    def run(argv: Sequence[str], timeout: float) -> str:
        joined = " ".join(argv)
        calls.append(joined)
        if "--query-gpu" not in joined:
            raise ProbeUnavailable("no apps")
        if "memory.reserved" in joined:
            raise ProbeUnavailable('exit 2: Field "memory.reserved" is not a valid field to query.')
        return OLD_CSV

    (dev,) = NvidiaSmiBackend(run).probe()
    assert dev.total_bytes == 16280 * MIB
    assert sum("--query-gpu" in c for c in calls) == 2


def test_nvml_v2_reserved_is_subtracted() -> None:
    mem_v2 = types.SimpleNamespace(total=143771 * MIB, reserved=614 * MIB, used=0, free=143157 * MIB)
    mem_v1 = types.SimpleNamespace(total=143771 * MIB, used=614 * MIB, free=143157 * MIB)

    def memory_info(handle: Any, version: Any = None) -> Any:
        return mem_v2 if version is not None else mem_v1

    nv = types.SimpleNamespace(
        NVMLError=RuntimeError, nvmlMemory_v2=2, nvmlInit=lambda: None, nvmlShutdown=lambda: None,
        nvmlSystemGetDriverVersion=lambda: "570.133.20", nvmlSystemGetCudaDriverVersion_v2=lambda: 12080,
        nvmlDeviceGetCount=lambda: 1, nvmlDeviceGetHandleByIndex=lambda i: i, nvmlDeviceGetName=lambda h: "H200",
        nvmlDeviceGetUUID=lambda h: "GPU-1", nvmlDeviceGetMemoryInfo=memory_info,
        nvmlDeviceGetComputeRunningProcesses=lambda h: [], nvmlDeviceGetGraphicsRunningProcesses=lambda h: [],
    )
    (dev,) = NvmlBackend(nv).probe()
    assert dev.total_bytes == 143157 * MIB
