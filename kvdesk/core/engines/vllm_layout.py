"""vLLM's KV cache layout: per-layer specs, KV cache groups, pages, blocks and tokens.

Mirrors vLLM v1 (vllm/v1/core/kv_cache_utils.py and vllm/v1/kv_cache_interface.py, read at commit
001cabc1 and checked against vLLM 0.19.0 logs in tests/data/vllm/):

- ``AttentionSpec.real_page_size_bytes``: a page is ``block_size`` tokens of one layer,
  ``2 × block_size × num_kv_heads × head_size × dtype_size`` (FullAttentionSpec: K and V widths
  ``head_size + head_size_v``); MLAAttentionSpec: one latent ``block_size × 1 × (kv_lora_rank + rope)``.
- ``ModelConfig.get_num_kv_heads`` (vllm/config/model.py): ``max(1, total_num_kv_heads // tp)``;
  MLA keeps one latent head on every rank.
- ``get_pp_indices`` (vllm/distributed/utils.py): pipeline ranks get ``n // pp`` layers, the
  remainder going one each to the ranks just before the last.
- ``get_kv_cache_groups``: one spec for all layers → one group; one *type* (e.g. full attention with
  different widths) → one ``UniformTypeKVCacheSpecs`` group whose page is the sum of the layers'
  pages; otherwise ``unify_kv_cache_spec_page_size`` (smaller pages get a larger block_size) and
  ``_get_kv_cache_groups_uniform_page_size`` (groups of ``group_size`` layers, padded; layers[i::n]).
- ``get_kv_cache_config_from_groups`` / ``get_num_blocks``: ``available // page_size // group_size``;
  ``get_kv_cache_configs``: every rank then uses the smallest rank's ``num_blocks``.
- ``_report_kv_cache_config``: tokens = ``num_blocks // len(groups) × min(block_size)``.
- ``get_max_concurrency_for_kv_cache_config``: ``num_blocks / cdiv(Σ max_memory_usage_bytes, page)``
  with ``max_memory_usage_bytes`` per spec: full/MLA ``cdiv(L, bs)`` pages; sliding
  ``cdiv(min(window - 1 + max_num_batched_tokens, L), bs) + 1``; chunked local
  ``cdiv(min(chunk + max_num_batched_tokens, L), bs)``; Mamba one page per request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from kvdesk.core.breakdown import Rule
from kvdesk.core.dtypes import KvType
from kvdesk.core.errors import InputError
from kvdesk.core.model import LayerGroup

# vLLM's FlashAttention kernel block alignment used when attention pages are grown to hold a Mamba
# state (vllm/model_executor/models/config.py HybridAttentionMambaModelConfig.verify_and_update_config).
MAMBA_ATTN_BLOCK_ALIGN = 16


@dataclass(frozen=True)
class LayerSpec:
    """One layer's KV cache spec as vLLM builds it on one rank (hashable: equal specs group)."""

    kind: str  # full | sliding | chunked | mla | mamba
    block_size: int
    page_bytes: int  # bytes of one block of this layer (after page unification)
    window: int = 0  # sliding window / attention chunk
    k_share: float = 1.0  # share of the page holding K (the rest is V)
    shape: tuple[int, int, int] = (0, 0, 0)  # (kv heads per rank, K head size, V head size): specs differ by it

    def blocks_per_request(self, ctx: npt.NDArray[np.int64], mnbt: int) -> npt.NDArray[np.int64]:
        """Pages one request of ``ctx`` tokens needs (``max_memory_usage_bytes // page``)."""
        bs = self.block_size
        if self.kind == "sliding":
            return -(-np.minimum(self.window - 1 + mnbt, ctx) // bs) + 1
        if self.kind == "chunked":
            return -(-np.minimum(self.window + mnbt, ctx) // bs)
        if self.kind == "mamba":
            return np.ones_like(ctx)
        return -(-ctx // bs)


@dataclass(frozen=True)
class KvLayout:
    """The KV cache groups and what one block costs on each pipeline rank."""

    groups: tuple[tuple[LayerSpec, tuple[int, ...]], ...]  # (spec, layer indices) per group
    uniform_type: bool  # one UniformTypeKVCacheSpecs group: per-layer pages summed
    type_specs: tuple[LayerSpec, ...]  # the distinct layer specs inside a uniform-type group
    rank_block_bytes: tuple[int, ...]  # bytes of one block (all groups' layers sharing it) per PP rank
    rank_layers: tuple[tuple[int, ...], ...]
    min_block_size: int
    page_bytes: int  # uniform page size (hybrid) or largest layer page (uniform type)
    group_size: int
    padding_layers: int
    token_bytes_full: float  # bytes per token of layers that grow with context, whole model (one TP rank)
    k_share: float

    @property
    def n_groups(self) -> int:
        return len(self.groups)

    def blocks_per_request(self, ctx: npt.ArrayLike, mnbt: int) -> npt.NDArray[np.int64]:
        c = np.asarray(ctx, dtype=np.int64)
        if self.uniform_type:
            # UniformTypeKVCacheSpecs.max_memory_usage_bytes: the most pages any of its layers needs.
            out = np.zeros_like(c)
            for spec in self.type_specs:
                out = np.maximum(out, spec.blocks_per_request(c, mnbt))
            return out
        total = np.zeros_like(c)
        for spec, _ in self.groups:
            total = total + spec.blocks_per_request(c, mnbt)
        return total

    def num_blocks(self, available: list[int]) -> int:
        """``get_num_blocks`` per rank, then the smallest over ranks (``get_kv_cache_configs``)."""
        blocks = [max(0, int(a) // b) for a, b in zip(available, self.rank_block_bytes, strict=True) if b > 0]
        return min(blocks) if blocks else 0


def pp_partition(n_layers: int, pp: int) -> list[range]:
    """vllm/distributed/utils.py ``get_pp_indices``: extra layers go to the ranks before the last."""
    per = n_layers // pp
    sizes = [per] * pp
    for i in range(2, n_layers % pp + 2):
        sizes[-i] += 1
    out, start = [], 0
    for s in sizes:
        out.append(range(start, start + s))
        start += s
    return out


def _attention_spec(g: LayerGroup, tp: int, bs: int, t: KvType, heads_override: int | None) -> LayerSpec:
    size = int(t.bytes_per_value)
    if g.kind == "mla":
        # MLAAttentionSpec.real_page_size_bytes: block_size × 1 head × (kv_lora_rank + rope) × dtype.
        width = (g.kv_lora_rank or 0) + (g.rope_dim or 0)
        token = width * size
        if g.indexer_dim and t.name.startswith("fp8"):
            token = fp8_ds_mla_bytes(g)
        idx = indexer_token_bytes(g)
        # DeepSeek-V3.2: the layer's MLAAttentionSpec and its indexer's MLAAttentionSpec have one block
        # size and one type, so they share the UniformTypeKVCacheSpecs group: one page holding both.
        return LayerSpec("mla", bs, bs * (token + idx), 0, 1.0, (1, token, idx))
    heads = max(1, (heads_override or g.n_kv_heads) // tp)
    page = bs * heads * (g.head_dim_k + g.head_dim_v) * size
    window = (g.window or 0) if g.kind in ("sliding", "chunked") else 0
    share = g.head_dim_k / (g.head_dim_k + g.head_dim_v)
    return LayerSpec(g.kind, bs, page, window, share, (heads, g.head_dim_k, g.head_dim_v))


def fp8_ds_mla_bytes(g: LayerGroup) -> int:
    """Bytes per token of DeepSeek-V3.2's fp8 latent (vllm/model_executor/models/config.py
    DeepseekV32ForCausalLM: an fp8 cache becomes "fp8_ds_mla"; kv_cache_interface.py MLAAttentionSpec:
    block_size × 656): kv_lora_rank fp8 values + one fp32 scale per 128 + the rope part in bf16."""
    rank = g.kv_lora_rank or 0
    return rank + rank // 128 * 4 + 2 * (g.rope_dim or 0)


def indexer_token_bytes(g: LayerGroup) -> int:
    """Bytes per token of a DSA layer's lightning-indexer key cache (vllm deepseek_v2.py Indexer:
    DeepseekV32IndexerCache(head_dim + head_dim // quant_block_size(128) * 4, torch.uint8), one head):
    fp8 values plus an fp32 scale per 128, whatever --kv-cache-dtype is. 0 for other layers."""
    dim = g.indexer_dim or 0
    return dim + dim // 128 * 4 if g.kind == "mla" else 0


# vllm/platforms/cuda.py check_and_update_config: "Forcing kv cache block size to 64 for FlashMLASparse
# backend." for every sparse-attention model (hf_config has index_topk: DeepSeek-V3.2, GLM-5).
SPARSE_MLA_BLOCK = 64


def sparse_block_size(layers: Sequence[LayerGroup], block_size: int) -> int:
    """The KV block size vLLM runs with: 64 for sparse-attention MLA models, else --block-size."""
    return SPARSE_MLA_BLOCK if any(g.indexer_dim for g in layers) else block_size


def sparse_mla_rules(layers: Sequence[LayerGroup], kv_dtype: str) -> list[Rule]:
    """DeepSeek-V3.2-style layers: the indexer key page and the fp8_ds_mla latent."""
    idx = [g for g in layers if g.indexer_dim]
    if not idx:
        return []
    fp8 = kv_dtype.startswith("fp8")
    return [
        Rule(
            id="vllm.dsa_indexer",
            title=f"{sum(g.count for g in idx)} layers keep a lightning-indexer key: "
            f"{indexer_token_bytes(idx[0])} B per token (fp8 + fp32 scale per 128)"
            + (f"; fp8 latent as fp8_ds_mla, {fp8_ds_mla_bytes(idx[0])} B per token" if fp8 else ""),
            detail="indexer and latent MLAAttentionSpec share one uniform-type group (pages summed); 64-token blocks",
            source="vllm/model_executor/models/deepseek_v2.py DeepseekV32IndexerCache; "
            "vllm/model_executor/models/config.py DeepseekV32ForCausalLM; vllm/platforms/cuda.py",
        )
    ]


_STATE_BYTES = {"f32": 4, "bf16": 2, "f16": 2}


def mamba_page_bytes(g: LayerGroup, model_dtype_bytes: int, tp: int, ssm_default_bytes: int = 0) -> int:
    """MambaSpec.page_size_bytes of one recurrent layer on one TP rank.

    ModelSpec gives the state at f32. vLLM keeps the conv window in ``mamba_cache_dtype`` and the
    SSM / delta-net state in ``mamba_ssm_cache_dtype`` (MambaStateDtypeCalculator, "auto" = the model
    dtype, vllm/config/cache.py); a model's config may ask for another SSM dtype (Qwen3.5
    ``mamba_ssm_dtype`` float32: vLLM 0.18/0.19 logs print attention blocks of 528 / 1056 tokens, which
    only an f32 temporal state gives). ``ssm_default_bytes`` is the engine's own default for a model
    whose config names no SSM dtype (0 = the model dtype). Heads and conv channels are split over TP ranks.
    """
    total = int(g.state_bytes or 0)
    ssm = int(g.ssm_state_bytes or 0)
    ssm_bytes = _STATE_BYTES[g.ssm_state_dtype] if g.ssm_state_dtype else (ssm_default_bytes or model_dtype_bytes)
    conv_values, ssm_values = (total - ssm) // 4, ssm // 4
    return -(-(conv_values * model_dtype_bytes + ssm_values * ssm_bytes) // tp)


def _layer_specs(
    layers: tuple[LayerGroup, ...],
    tp: int,
    bs: int,
    t: KvType,
    heads_override: int | None,
    state_dtype_bytes: int,
    ssm_default_bytes: int = 0,
) -> list[tuple[int, LayerSpec]]:
    specs: list[tuple[int, LayerSpec]] = []
    idx = 0
    attn_token = 0
    mamba_pages: list[int] = []
    for g in layers:
        for _ in range(g.count):
            if g.has_kv:
                spec = _attention_spec(g, tp, bs, t, heads_override)
                attn_token = max(attn_token, spec.page_bytes // bs)
                specs.append((idx, spec))
            elif g.kind == "recurrent":
                page = mamba_page_bytes(g, state_dtype_bytes, tp, ssm_default_bytes)
                mamba_pages.append(page)
                specs.append((idx, LayerSpec("mamba", 1 << 30, page)))
            idx += 1
    if mamba_pages and attn_token:
        specs = _fit_mamba(specs, max(mamba_pages), attn_token, bs)
    return specs


def _fit_mamba(
    specs: list[tuple[int, LayerSpec]], mamba_page: int, attn_token: int, bs: int
) -> list[tuple[int, LayerSpec]]:
    """HybridAttentionMambaModelConfig: grow the attention block so one page holds a Mamba state,
    then pad the Mamba page to the attention page (page_size_padded)."""
    align = MAMBA_ATTN_BLOCK_ALIGN
    new_bs = max(bs, align * -(-mamba_page // (align * attn_token)))
    out = []
    for i, s in specs:
        if s.kind == "mamba":
            out.append((i, s))
            continue
        page = s.page_bytes // s.block_size * new_bs
        out.append((i, LayerSpec(s.kind, new_bs, page, s.window, s.k_share, s.shape)))
    attn_page = max(s.page_bytes for _, s in out if s.kind != "mamba")
    return [
        (i, LayerSpec("mamba", s.block_size, max(attn_page, s.page_bytes)) if s.kind == "mamba" else s) for i, s in out
    ]


def _is_uniform_type(specs: list[LayerSpec]) -> bool:
    """UniformTypeKVCacheSpecs.is_uniform_type (MLA is a FullAttentionSpec subclass in vLLM)."""
    if len({s.block_size for s in specs}) > 1:
        return False
    full_like = {"full", "mla"}
    if all(s.kind in full_like for s in specs):
        return True
    first = specs[0]
    return all(s.kind == first.kind and s.window == first.window for s in specs)


def _unify_pages(specs: list[tuple[int, LayerSpec]]) -> list[tuple[int, LayerSpec]]:
    """unify_kv_cache_spec_page_size: smaller pages get block_size × (max_page // page)."""
    top = max(s.page_bytes for _, s in specs)
    out = []
    for i, s in specs:
        if s.page_bytes == top:
            out.append((i, s))
            continue
        if top % s.page_bytes:
            raise InputError(
                "vLLM cannot unify this model's KV page sizes (a page size does not divide the largest); "
                "it refuses to start without --disable-hybrid-kv-cache-manager",
                "model",
            )
        ratio = top // s.page_bytes
        bs = s.block_size * ratio if s.kind != "mamba" else s.block_size
        out.append((i, LayerSpec(s.kind, bs, top, s.window, s.k_share, s.shape)))
    return out


def _hybrid_groups(specs: list[tuple[int, LayerSpec]]) -> tuple[list[tuple[LayerSpec, tuple[int, ...]]], int, int]:
    """_get_kv_cache_groups_uniform_page_size: same-spec layers split into equal-size groups."""
    same: dict[LayerSpec, list[int]] = {}
    for i, s in specs:
        same.setdefault(s, []).append(i)
    counts = [len(v) for v in same.values()]
    group_size = min(counts)
    if max(counts) < group_size * 1.5:
        group_size = max(counts)
    groups: list[tuple[LayerSpec, tuple[int, ...]]] = []
    padding = 0
    for spec, layers in same.items():
        n = -(-len(layers) // group_size)
        padding += n * group_size - len(layers)
        for i in range(n):
            groups.append((spec, tuple(layers[i::n])))
    return groups, group_size, padding


@lru_cache(maxsize=256)
def build_layout(
    layers: tuple[LayerGroup, ...],
    tp: int,
    pp: int,
    block_size: int,
    kv: KvType,
    heads_override: int | None,
    state_dtype_bytes: int = 4,
    ssm_default_bytes: int = 0,
) -> KvLayout:
    n_layers = sum(g.count for g in layers)
    if pp > n_layers:
        raise InputError(f"pp {pp} is more than the model's {n_layers} layers", "pp")
    specs = _layer_specs(layers, tp, block_size, kv, heads_override, state_dtype_bytes, ssm_default_bytes)
    ranks = [set(r) for r in pp_partition(n_layers, pp)]
    rank_layers = tuple(tuple(i for i, _ in specs if i in r) for r in ranks)
    if not specs:
        return KvLayout((), True, (), tuple(0 for _ in ranks), rank_layers, block_size, 0, 0, 0, 0.0, 1.0)
    plain = [s for _, s in specs]
    token_full = float(sum(s.page_bytes / s.block_size for s in plain if s.kind in ("full", "mla")))
    k_total = sum(s.page_bytes * s.k_share for s in plain)
    k_share = k_total / max(1, sum(s.page_bytes for s in plain))
    if len(set(plain)) == 1 or _is_uniform_type(plain):
        pages = dict(specs)
        rank_bytes = tuple(sum(pages[i].page_bytes for i in r) for r in rank_layers)
        return KvLayout(
            ((plain[0], tuple(i for i, _ in specs)),),
            True,
            tuple(dict.fromkeys(plain)),
            rank_bytes,
            rank_layers,
            min(s.block_size for s in plain),
            max(s.page_bytes for s in plain),
            len(specs),
            0,
            token_full,
            k_share,
        )
    unified = _unify_pages(specs)
    groups, group_size, padding = _hybrid_groups(unified)
    page = unified[0][1].page_bytes
    rank_sets = [set(r) for r in rank_layers]
    rank_bytes = tuple(page * max(sum(1 for i in g if i in r) for _, g in groups) for r in rank_sets)
    return KvLayout(
        tuple(groups),
        False,
        (),
        rank_bytes,
        rank_layers,
        min(s.block_size for s, _ in groups),
        page,
        group_size,
        padding,
        token_full,
        k_share,
    )
