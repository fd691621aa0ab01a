"""What a probe found: devices with their real memory, and why each backend did or did not answer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kvdesk.core.gpu import GpuSpec, Vendor
from kvdesk.core.units import format_bytes


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GpuProcess(_Model):
    """A process holding memory on a device (NVML / nvidia-smi). ``used_bytes`` None: not reported
    (Windows WDDM reports ``[N/A]``)."""

    pid: int
    name: str = ""
    used_bytes: int | None = None

    def label(self) -> str:
        base = self.name.replace("\\", "/").rsplit("/", 1)[-1] or f"pid {self.pid}"
        size = format_bytes(self.used_bytes, 1) if self.used_bytes is not None else "size n/a"
        return f"{base} (pid {self.pid}, {size})"


class ProbedDevice(_Model):
    index: int
    name: str
    vendor: Vendor = "other"
    total_bytes: int = Field(ge=0)
    used_bytes: int = Field(ge=0, description="held by every process now (this one included)")
    free_bytes: int = Field(ge=0)
    budget_bytes: int | None = Field(
        None, ge=0, description="unified memory: the GPU working-set limit (Apple recommendedMaxWorkingSetSize)"
    )
    unified_memory: bool = False
    uuid: str | None = None
    driver_version: str | None = None
    cuda_version: str | None = None
    processes: list[GpuProcess] = Field(default_factory=list)
    backend: str = ""
    note: str = ""

    @property
    def capacity_bytes(self) -> int:
        """What a model could use on this device if nothing else ran on it."""
        return self.budget_bytes if self.budget_bytes is not None else self.total_bytes

    @property
    def available_bytes(self) -> int:
        """What a model can use now: free memory, capped by the working-set limit on unified memory."""
        return min(self.free_bytes, self.capacity_bytes)

    def to_gpu_spec(self, bandwidth_bytes_per_s: float | None = None) -> GpuSpec:
        """A GpuSpec with this device's exact memory ("Use this GPU")."""
        fraction = 1.0
        if self.unified_memory and self.budget_bytes and self.total_bytes:
            fraction = min(1.0, max(1e-6, self.budget_bytes / self.total_bytes))
        extra = {} if bandwidth_bytes_per_s is None else {"bandwidth_bytes_per_s": bandwidth_bytes_per_s}
        return GpuSpec(
            name=self.name[:200] or "probed GPU",
            memory_bytes=min(max(1, self.total_bytes), 1 << 50),  # GpuSpec's bound: absurd tool output is capped
            vendor=self.vendor,
            unified_memory=self.unified_memory,
            usable_fraction=fraction,
            source=f"probe ({self.backend})",
            note=f"measured on this machine: {self.total_bytes} bytes",
            **extra,
        )


class BackendAttempt(_Model):
    backend: str
    ok: bool
    detail: str
    seconds: float = 0.0

    def line(self) -> str:
        return f"{self.backend}: {self.detail}"


class ProbeReport(_Model):
    devices: list[ProbedDevice] = Field(default_factory=list)
    backend: str | None = Field(None, description="the backend that answered")
    attempts: list[BackendAttempt] = Field(default_factory=list)

    @property
    def found(self) -> bool:
        return bool(self.devices)

    def summary(self) -> str:
        if not self.found:
            return "No GPU found. " + "; ".join(a.line() for a in self.attempts)
        names = ", ".join(f"{d.index}: {d.name}" for d in self.devices)
        return f"{len(self.devices)} device(s) via {self.backend}: {names}"

    def to_json(self) -> dict[str, object]:
        return {
            "found": self.found,
            "backend": self.backend,
            "devices": [
                {**d.model_dump(), "available_bytes": d.available_bytes, "capacity_bytes": d.capacity_bytes}
                for d in self.devices
            ],
            "attempts": [a.model_dump() for a in self.attempts],
        }


VerdictKind = Literal["fits_now", "fits_idle", "no_fit", "unused"]


class DeviceVerdict(_Model):
    kind: VerdictKind
    need_bytes: int
    available_bytes: int
    capacity_bytes: int
    held_bytes: int
    message: str


def device_verdict(device: ProbedDevice, need_bytes: int) -> DeviceVerdict:
    """Does a plan needing ``need_bytes`` on this device fit now, only on an idle device, or not at all?"""
    capacity, available = device.capacity_bytes, device.available_bytes
    held = max(0, capacity - available)
    common = {"need_bytes": need_bytes, "available_bytes": available, "capacity_bytes": capacity, "held_bytes": held}
    if need_bytes <= 0:
        return DeviceVerdict(kind="unused", message="not used by this plan", **common)
    if need_bytes <= available:
        spare = format_bytes(available - need_bytes, 1)
        return DeviceVerdict(kind="fits_now", message=f"fits now ({spare} to spare)", **common)
    if need_bytes <= capacity:
        msg = f"fits on an idle GPU, but {format_bytes(held, 1)} is held by other processes"
        holders = [p.label() for p in sorted(device.processes, key=lambda p: -(p.used_bytes or 0))]
        if holders:
            msg += " (" + ", ".join(holders[:6]) + (", …" if len(holders) > 6 else "") + ")"
        return DeviceVerdict(kind="fits_idle", message=msg, **common)
    short = format_bytes(need_bytes - capacity, 1)
    return DeviceVerdict(
        kind="no_fit",
        message=f"does not fit: needs {format_bytes(need_bytes, 1)}, the device has "
        f"{format_bytes(capacity, 1)} ({short} short)",
        **common,
    )
