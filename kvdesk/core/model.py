"""ModelSpec: a model described layer by layer (attention kind, KV heads, K/V widths) plus sizes.

A plain GQA model is one ``LayerGroup`` of ``count`` identical layers; hybrids list their groups in
layer order (e.g. Gemma 3: five sliding layers then one full, repeated).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from kvdesk.core.dtypes import WEIGHT_BITS, weight_bits
from kvdesk.core.errors import InputError

AttentionKind = Literal["full", "sliding", "chunked", "mla", "recurrent", "none"]
StateDtype = Literal["f32", "bf16", "f16"]

_MAX_LAYERS = 4096
_OPTIONAL_STATE_FIELDS = ("ssm_state_bytes", "ssm_state_dtype", "indexer_dim")
_MAX_DIM = 1 << 20


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LayerGroup(Frozen):
    """``count`` consecutive layers of one attention kind.

    - full / sliding / chunked: a K row of ``n_kv_heads * head_dim_k`` and a V row of
      ``n_kv_heads * head_dim_v`` values per token; ``window`` tokens for sliding/chunked.
    - mla: the compressed latent ``kv_lora_rank + rope_dim`` values per token (DeepSeek MLA);
      ``n_kv_heads``/``head_dim_*`` keep the uncompressed view (vLLM without MLA, older llama.cpp).
    - recurrent: a fixed state per sequence (Mamba conv+SSM, gated delta-net, short conv):
      ``state_bytes`` at f32, independent of context. Optionally ``ssm_state_bytes`` says how much of
      it is the SSM / delta-net state (the rest is the conv window) and ``ssm_state_dtype`` the dtype
      the model's config asks engines to keep that part in (vLLM: ``mamba_ssm_cache_dtype``).
    - none: no cache (e.g. a dense FFN-only block).

    ``indexer_dim`` (mla layers only, optional): the key width of a DeepSeek-V3.2-style sparse-attention
    "lightning indexer" that caches one extra key per token for this layer (DeepSeek-V3.2
    ``index_head_dim`` 128 on every layer; GLM-5 DSA only on the layers that own an indexer).
    """

    count: int = Field(1, ge=1, le=_MAX_LAYERS)
    kind: AttentionKind = "full"
    n_kv_heads: int = Field(0, ge=0, le=_MAX_DIM)
    head_dim_k: int = Field(0, ge=0, le=_MAX_DIM)
    head_dim_v: int = Field(0, ge=0, le=_MAX_DIM)
    window: int | None = Field(None, ge=1, le=1 << 30)
    kv_lora_rank: int | None = Field(None, ge=1, le=_MAX_DIM)
    rope_dim: int | None = Field(None, ge=0, le=_MAX_DIM)
    state_bytes: int | None = Field(None, ge=0, le=1 << 40)
    ssm_state_bytes: int | None = Field(None, ge=0, le=1 << 40)
    ssm_state_dtype: StateDtype | None = None
    indexer_dim: int | None = Field(None, ge=1, le=_MAX_DIM)

    @model_validator(mode="after")
    def _check_kind_fields(self) -> LayerGroup:
        if self.kind in ("full", "sliding", "chunked") and (
            self.n_kv_heads < 1 or self.head_dim_k < 1 or self.head_dim_v < 1
        ):
            raise ValueError(f"{self.kind} attention layers need n_kv_heads, head_dim_k and head_dim_v ≥ 1")
        if self.kind in ("sliding", "chunked") and self.window is None:
            raise ValueError(f"{self.kind} attention layers need a window")
        if self.kind == "mla" and self.kv_lora_rank is None:
            raise ValueError("mla layers need kv_lora_rank")
        if self.kind == "recurrent" and self.state_bytes is None:
            raise ValueError("recurrent layers need state_bytes")
        if self.indexer_dim is not None and self.kind != "mla":
            raise ValueError("indexer_dim (a sparse-attention indexer key) belongs to mla layers only")
        if self.ssm_state_bytes is not None and self.ssm_state_bytes > (self.state_bytes or 0):
            raise ValueError("ssm_state_bytes is part of state_bytes and cannot exceed it")
        return self

    @model_serializer(mode="wrap")
    def _drop_unset_state_split(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        """Leave the optional SSM split and indexer width out when unset, so plans and presets of every
        other model serialise exactly as before these fields existed."""
        data: dict[str, object] = handler(self)
        for key in _OPTIONAL_STATE_FIELDS:
            if data.get(key) is None:
                data.pop(key, None)
        return data

    @property
    def has_kv(self) -> bool:
        return self.kind in ("full", "sliding", "chunked", "mla")

    def k_width(self, kv_heads_override: int | None = None) -> int:
        """Values per token in this layer's K row (the MLA latent for mla layers)."""
        if self.kind == "mla":
            return (self.kv_lora_rank or 0) + (self.rope_dim or 0)
        if not self.has_kv:
            return 0
        return (kv_heads_override or self.n_kv_heads) * self.head_dim_k

    def v_width(self, kv_heads_override: int | None = None) -> int:
        """Values per token in this layer's V row (0 for MLA: the latent holds both)."""
        if self.kind in ("full", "sliding", "chunked"):
            return (kv_heads_override or self.n_kv_heads) * self.head_dim_v
        return 0


class WeightFormat(Frozen):
    """A way the weights are stored: bf16, fp8, a GGUF quant, AWQ int4 … with its size."""

    name: str = Field(min_length=1, max_length=64)
    bytes: int | None = Field(None, ge=0, le=1 << 50, description="exact size when known (file size)")
    bits_per_weight: float | None = Field(None, gt=0, le=64)
    source: str = ""


class ModelSpec(Frozen):
    name: str = Field(min_length=1, max_length=200)
    family: str = ""
    architecture: str = ""
    layers: list[LayerGroup] = Field(min_length=1, max_length=_MAX_LAYERS)
    hidden_size: int = Field(0, ge=0, le=_MAX_DIM)
    n_heads: int = Field(0, ge=0, le=_MAX_DIM)
    vocab_size: int = Field(0, ge=0, le=1 << 26)
    native_context: int = Field(0, ge=0, le=1 << 30)
    params_total: int = Field(ge=1, le=1 << 50)
    params_active: int | None = Field(None, ge=1, le=1 << 50)
    n_experts: int | None = Field(None, ge=1, le=1 << 16)
    n_experts_active: int | None = Field(None, ge=1, le=1 << 16)
    dtype: str = Field("bf16", description="native weight/activation dtype")
    weight_formats: list[WeightFormat] = Field(default=[], max_length=256)
    source: str = ""
    notes: str = ""

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        if self.n_layers > _MAX_LAYERS:
            raise ValueError(f"{self.n_layers} layers is more than kvdesk accepts ({_MAX_LAYERS})")
        if self.params_active is not None and self.params_active > self.params_total:
            raise ValueError("params_active exceeds params_total")
        return self

    @property
    def n_layers(self) -> int:
        return sum(g.count for g in self.layers)

    @property
    def is_moe(self) -> bool:
        return self.params_active is not None and self.params_active < self.params_total

    def iter_layers(self) -> Iterator[LayerGroup]:
        """Every layer in order (groups expanded)."""
        for group in self.layers:
            for _ in range(group.count):
                yield group

    def kinds(self) -> set[str]:
        return {g.kind for g in self.layers}

    @property
    def default_kv_heads(self) -> int:
        heads = [g.n_kv_heads for g in self.layers if g.kind in ("full", "sliding", "chunked")]
        return max(heads) if heads else 0

    def weight_format(self, name: str | None) -> WeightFormat:
        """The named format (case-insensitive), or the native dtype when ``name`` is None/'auto'."""
        wanted = (name or "auto").strip()
        if wanted.lower() == "auto":
            wanted = self.dtype
        for fmt in self.weight_formats:
            if fmt.name.lower() == wanted.lower():
                return fmt
        if any(k.lower() == wanted.lower() for k in WEIGHT_BITS):
            return WeightFormat(name=wanted, bits_per_weight=weight_bits(wanted))
        known = ", ".join([f.name for f in self.weight_formats] or list(WEIGHT_BITS))
        raise InputError(f"unknown weights format '{wanted}' for {self.name} (known: {known})", "weights_dtype")

    def weights_bytes(self, name: str | None = None) -> int:
        fmt = self.weight_format(name)
        if fmt.bytes is not None:
            return fmt.bytes
        bits = fmt.bits_per_weight or weight_bits(fmt.name)
        return int(self.params_total * bits / 8)

    def active_weights_bytes(self, name: str | None = None) -> int:
        """Bytes read per decoded token: all weights for dense models, the active share for MoE."""
        total = self.weights_bytes(name)
        if not self.is_moe or self.params_active is None:
            return total
        return int(total * self.params_active / self.params_total)


def uniform_model(
    name: str,
    n_layers: int,
    n_kv_heads: int,
    head_dim: int,
    params_total: int,
    **extra: object,
) -> ModelSpec:
    """A plain (GQA/MHA) model: every layer full attention with the same heads."""
    group = LayerGroup(count=n_layers, kind="full", n_kv_heads=n_kv_heads, head_dim_k=head_dim, head_dim_v=head_dim)
    return ModelSpec(name=name, layers=[group], params_total=params_total, **extra)
