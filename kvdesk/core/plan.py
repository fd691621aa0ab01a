"""Plan: everything needed to reproduce a memory estimate on another machine.

The model spec is embedded (not only referenced by preset id), so catalogue updates never change
a shared plan silently.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from kvdesk.core.dtypes import kv_type
from kvdesk.core.gpu import GpuSpec
from kvdesk.core.model import ModelSpec

EngineName = Literal["generic", "llama.cpp", "vllm", "ollama"]
ENGINE_NAMES: tuple[str, ...] = ("generic", "llama.cpp", "vllm", "ollama")

MAX_CONTEXT = 1 << 26  # 64M tokens
MAX_BATCH = 1 << 16
_OPTIONAL_ENGINE_FIELDS = ("rs_seq",)  # written only when set (see EngineSettings._drop_unset_optional)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Workload(_Model):
    context: int = Field(4096, ge=1, le=MAX_CONTEXT, description="tokens of ONE sequence")
    batch: int = Field(1, ge=1, le=MAX_BATCH, description="sequences served at once")
    kv_dtype_k: str = "auto"
    kv_dtype_v: str = "auto"
    kv_heads_override: int | None = Field(None, ge=1, le=1 << 16)
    weights_format: str | None = Field(None, description="None/'auto' = the model's native dtype")

    @model_validator(mode="after")
    def _check_dtypes(self) -> Workload:
        kv_type(self.kv_dtype_k)
        kv_type(self.kv_dtype_v)
        return self


class EngineSettings(_Model):
    """The engine and its knobs. Settings an engine does not use are ignored by it."""

    name: EngineName = "generic"
    version: str | None = Field(None, max_length=64, description="e.g. llama.cpp 'b6209', vLLM '0.19.0'")
    tp: int = Field(1, ge=1, le=1024, description="tensor parallel size")
    pp: int = Field(1, ge=1, le=1024, description="pipeline parallel size")
    # llama.cpp / Ollama
    flash_attn: bool | None = Field(None, description="None = engine default (llama.cpp 'auto')")
    ubatch: int = Field(512, ge=1, le=1 << 20)
    batch_tokens: int = Field(2048, ge=1, le=1 << 20, description="llama.cpp -b (logical batch)")
    kv_unified: bool | None = Field(None, description="llama.cpp --kv-unified; None = engine default")
    swa_full: bool = False
    fit_margin_bytes: int | None = Field(None, ge=0, le=1 << 44, description="llama.cpp --fit margin per device")
    rs_seq: int = Field(
        0,
        ge=0,
        le=1024,
        description="llama.cpp n_rs_seq: recurrent-state rollback snapshots per sequence "
        "(= --spec-draft-n-max with --spec-type draft-mtp / draft-eagle3 / draft-dflash); 0 = none",
    )
    # vLLM
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1.0)
    kv_cache_memory: int | None = Field(None, ge=1, le=1 << 50, description="vLLM --kv-cache-memory, per GPU")
    block_size: int = Field(16, ge=1, le=1 << 12)
    max_num_batched_tokens: int | None = Field(None, ge=1, le=1 << 24)
    enforce_eager: bool = False
    # generic
    overhead_bytes: int | None = Field(None, ge=0, le=1 << 44, description="fixed runtime overhead per device")

    @model_serializer(mode="wrap")
    def _drop_unset_optional(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        """Leave fields added after format 3 out at their default, so every plan that does not use
        them serialises exactly as before they existed (tests/data/plans stay pinned)."""
        data: dict[str, object] = handler(self)
        for key in _OPTIONAL_ENGINE_FIELDS:
            if data.get(key) == 0:
                data.pop(key, None)
        return data


class Calibration(_Model):
    """Observed figures from a real engine log, used to correct the plan's overhead."""

    source: str = ""
    overhead_delta_bytes: int = Field(0, ge=-(1 << 44), le=1 << 44)
    observed: dict[str, float] = Field(default={})


class ModelOrigin(_Model):
    """Where the embedded model spec came from (informational)."""

    preset_id: str | None = None
    hf_repo: str | None = None
    config_path: str | None = None
    gguf_file: str | None = None
    gguf_size: int | None = None


class Plan(_Model):
    model: ModelSpec
    origin: ModelOrigin = Field(default_factory=ModelOrigin)
    gpu: GpuSpec
    gpu_count: int = Field(1, ge=1, le=1024)
    gpu_preset_id: str | None = None
    workload: Workload = Field(default_factory=Workload)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    host_bandwidth_bytes_per_s: float = Field(
        25e9, ge=1e6, le=1e14, description="bandwidth to system RAM for spilled bytes (PCIe 4.0 x16 ≈ 25 GB/s)"
    )
    notes: str = Field("", max_length=100_000)
    calibration: Calibration | None = None

    def with_workload(self, **changes: object) -> Plan:
        """A copy with workload fields changed — validated, so nonsense (context=0) raises."""
        workload = Workload.model_validate({**self.workload.model_dump(), **changes})
        return self.model_copy(update={"workload": workload})

    def with_engine(self, **changes: object) -> Plan:
        """A copy with engine settings changed — validated like a new plan."""
        engine = EngineSettings.model_validate({**self.engine.model_dump(), **changes})
        return self.model_copy(update={"engine": engine})
