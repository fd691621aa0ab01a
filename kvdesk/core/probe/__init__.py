"""Probe: read the local GPUs' real memory (NVML, torch, nvidia-smi, rocm-smi, amd-smi, macOS).

``probe_devices()`` never raises: "no GPU" is an answer, with the reason each backend gave.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from kvdesk.core.probe.backends import Backend, ProbeUnavailable, default_backends
from kvdesk.core.probe.models import (
    BackendAttempt,
    DeviceVerdict,
    GpuProcess,
    ProbedDevice,
    ProbeReport,
    device_verdict,
)

__all__ = [
    "Backend",
    "BackendAttempt",
    "DeviceVerdict",
    "GpuProcess",
    "ProbeReport",
    "ProbeUnavailable",
    "ProbedDevice",
    "default_backends",
    "device_verdict",
    "probe_devices",
]


def probe_devices(backends: Sequence[Backend] | None = None) -> ProbeReport:
    """Try each backend in order; the first that finds a device answers. Never raises."""
    chosen = list(default_backends() if backends is None else backends)
    attempts: list[BackendAttempt] = []
    for pos, backend in enumerate(chosen):
        start = time.perf_counter()
        detail, devices = _try(backend)
        seconds = round(time.perf_counter() - start, 3)
        if devices:
            attempts.append(BackendAttempt(backend=backend.name, ok=True, detail=detail, seconds=seconds))
            attempts += [
                BackendAttempt(backend=b.name, ok=False, detail=f"not tried ({backend.name} answered)")
                for b in chosen[pos + 1 :]
            ]
            return ProbeReport(devices=devices, backend=backend.name, attempts=attempts)
        attempts.append(BackendAttempt(backend=backend.name, ok=False, detail=detail, seconds=seconds))
    return ProbeReport(devices=[], backend=None, attempts=attempts)


def _try(backend: Backend) -> tuple[str, list[ProbedDevice]]:
    try:
        devices = list(backend.probe())
    except ProbeUnavailable as exc:
        return str(exc) or "unavailable", []
    except Exception as exc:  # a backend bug or a strange driver must never crash the app
        return f"failed ({type(exc).__name__}: {str(exc)[:200]})", []
    if not devices:
        return "answered, but found no device", []
    return f"found {len(devices)} device(s)", devices
