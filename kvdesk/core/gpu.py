"""GpuSpec: one kind of accelerator and how much of its memory a model may use."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kvdesk.core.errors import InputError

Vendor = Literal["nvidia", "amd", "intel", "apple", "other"]

GIB = 1 << 30


class GpuSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    memory_bytes: int = Field(ge=1, le=1 << 50, description="usable memory the driver reports")
    # ≥ 1 MB/s: a bandwidth of 5e-324 passed gt=0 and made decode time inf and spill slowdown NaN (fuzz)
    bandwidth_bytes_per_s: float = Field(1e11, ge=1e6, le=1e15)
    vendor: Vendor = "other"
    unified_memory: bool = False
    usable_fraction: float = Field(
        1.0, gt=0, le=1.0, description="share of memory_bytes a GPU may use (Apple: recommendedMaxWorkingSetSize)"
    )
    source: str = ""
    note: str = ""

    @property
    def usable_bytes(self) -> int:
        return int(self.memory_bytes * self.usable_fraction)


def custom_gpu(vram_gib: float, name: str | None = None) -> GpuSpec:
    """A GPU given only by its memory (``--vram-gib``)."""
    if not 0 < vram_gib * GIB <= 1 << 50:  # 1e308 GiB overflowed int() (fuzz); GpuSpec's own bound is 1 PiB
        raise InputError(f"vram: {vram_gib:g} GiB is not a GPU memory size (up to {1 << 20} GiB)", "vram_gib")
    return GpuSpec(name=name or f"{vram_gib:g} GiB GPU", memory_bytes=int(vram_gib * GIB))
