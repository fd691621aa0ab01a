"""What an engine's startup log says about memory: ObservedLog and its parts (pydantic, bytes as ints)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LogEngine = Literal["llama.cpp", "ollama", "vllm", "unknown"]

# Host-side buffers: system RAM, not GPU memory (CPU, CPU_Mapped, CUDA_Host, Vulkan_Host, Metal_Mapped is
# GPU-visible unified memory and counts as a device).
_HOST = re.compile(r"^(CPU(_\w+)?|\w+_Host)$", re.IGNORECASE)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeviceFigures(_Model):
    """Buffers one backend device allocated (llama.cpp prints them per device)."""

    name: str
    model_bytes: int = 0
    kv_bytes: int = 0
    recurrent_bytes: int = 0
    compute_bytes: int = 0
    output_bytes: int = 0
    repack_bytes: int = Field(0, description="CPU_REPACK: a repacked copy of some weights, not extra model")

    @property
    def host(self) -> bool:
        return bool(_HOST.match(self.name)) or self.name.upper().startswith("CPU")

    @property
    def total_bytes(self) -> int:
        return self.model_bytes + self.kv_bytes + self.recurrent_bytes + self.compute_bytes + self.output_bytes


class KvCache(_Model):
    """One cache summary line: ``size = X MiB (N cells, L layers, a/b seqs), K (f16): …, V (f16): …``."""

    kind: Literal["", "non-swa", "swa", "recurrent", "indexer"] = ""  # indexer: DSA lightning-indexer keys
    size_bytes: int
    cells: int | None = None
    layers: int | None = None
    seqs: int | None = None
    parts: dict[str, int] = Field(default_factory=dict, description="K, V, R, S, c^KV … → bytes")
    types: dict[str, str] = Field(default_factory=dict, description="K → f16 …")


class VllmWorker(_Model):
    """Figures one vLLM worker (one GPU) printed; None where the log does not say."""

    name: str
    weights_bytes: int | None = None
    available_kv_bytes: int | None = None
    non_kv_bytes: int | None = None
    activation_bytes: int | None = None
    non_torch_bytes: int | None = None
    cuda_graph_bytes: int | None = None
    total_gpu_bytes: int | None = None
    requested_bytes: int | None = None


class ObservedLog(_Model):
    engine: LogEngine = "unknown"
    devices: list[DeviceFigures] = Field(default_factory=list)
    kv_caches: list[KvCache] = Field(default_factory=list)
    vllm_workers: list[VllmWorker] = Field(default_factory=list)
    kv_tokens: int | None = Field(None, description="vLLM 'GPU KV cache size: N tokens'")
    max_concurrency: float | None = Field(None, description="vLLM 'Maximum concurrency … : X x'")
    concurrency_tokens: int | None = Field(None, description="the N of 'Maximum concurrency for N tokens'")
    num_gpu_blocks: int | None = None
    ollama: dict[str, int | list[int]] = Field(default_factory=dict, description="Ollama's own estimate (bytes)")
    settings: dict[str, int | float | str] = Field(default_factory=dict)
    runs: int = Field(0, description="model loads seen; figures are from the last one")
    lines_read: int = 0
    lines_matched: int = 0
    truncated: bool = False
    warnings: list[str] = Field(default_factory=list)

    # -- totals -------------------------------------------------------------------------------------
    def gpu_devices(self) -> list[DeviceFigures]:
        """Devices other than host RAM; a CPU-only run has none, so its host devices stand in."""
        gpus = [d for d in self.devices if not d.host]
        return gpus or list(self.devices)

    def _attention(self) -> list[KvCache]:
        return [c for c in self.kv_caches if c.kind != "recurrent"]

    @property
    def k_bytes(self) -> int | None:
        caches = self._attention()
        return sum(c.parts.get("K", 0) for c in caches) if caches and all("K" in c.parts for c in caches) else None

    @property
    def v_bytes(self) -> int | None:
        caches = self._attention()
        return sum(c.parts.get("V", 0) for c in caches) if caches and all("V" in c.parts for c in caches) else None

    @property
    def kv_bytes(self) -> int | None:
        """Attention cache bytes: the summary lines if printed, else the per-device KV buffers."""
        if self._attention():
            return sum(c.size_bytes for c in self._attention())
        buffers = sum(d.kv_bytes for d in self.devices)
        return buffers or None

    @property
    def recurrent_bytes(self) -> int | None:
        rec = [c for c in self.kv_caches if c.kind == "recurrent"]
        if rec:
            return sum(c.size_bytes for c in rec)
        return sum(d.recurrent_bytes for d in self.devices) or None

    @property
    def model_bytes(self) -> int | None:
        if self.vllm_workers and any(w.weights_bytes for w in self.vllm_workers):
            return sum(w.weights_bytes or 0 for w in self.vllm_workers)
        return sum(d.model_bytes for d in self.devices) or None

    @property
    def kv_bytes_per_token(self) -> float | None:
        """K+V bytes per token of one sequence (full-attention layers), as the log's numbers imply."""
        full = [c for c in self.kv_caches if c.kind in ("", "non-swa") and c.cells]
        if full:
            return sum(c.size_bytes for c in full) / full[0].cells  # type: ignore[operator]
        avail = [w.available_kv_bytes for w in self.vllm_workers if w.available_kv_bytes]
        if avail and self.kv_tokens:
            return avail[0] / self.kv_tokens
        return None
