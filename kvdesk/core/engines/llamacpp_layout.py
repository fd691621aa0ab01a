"""Per-layer layout of the llama.cpp cache: row bytes of K and V, which cache each layer is in, and
which device holds it. Computed once per (model, dtypes, build) and reused by every call.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import numpy.typing as npt

from kvdesk.core.dtypes import KvType
from kvdesk.core.engines.llamacpp_rules import (
    B_DSA_INDEXER,
    B_MLA_LATENT,
    B_MLA_NO_V,
    B_V_MAX,
    Build,
    ignores_sliding_window,
)
from kvdesk.core.model import LayerGroup, ModelSpec

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CacheGroup:
    """Layers that share one cell count: the base cache (window 0) or a SWA cache of ``window``."""

    window: int
    n_layers: int
    k_row: int  # K bytes per cell summed over the group's layers (DSA indexer keys included)
    v_row: int
    idx_row: int = 0  # of k_row: the DSA lightning-indexer cache's K bytes per cell (indexer_row())
    idx_layers: int = 0  # layers with an indexer key (llama_kv_cache_dsa's second llama_kv_cache)


@dataclass(frozen=True, eq=False)  # hashed by identity (it holds numpy arrays)
class Layout:
    groups: tuple[CacheGroup, ...]
    state_per_seq: int  # recurrent state bytes per sequence, all layers (f32 r + s) × rs_planes
    n_recurrent: int
    hybrid: bool
    # per layer, in order: cache group index (-1 = no KV), K/V row bytes, recurrent state bytes
    layer_group: npt.NDArray[np.int64]
    layer_k: npt.NDArray[np.int64]
    layer_v: npt.NDArray[np.int64]
    layer_state: npt.NDArray[np.int64]
    # Ollama < 0.30 ran some architectures on its Go engine (kvcache/causal.go), sized differently;
    # swa_memory is that engine's SWA memory (window, or 4096 for gpt-oss's NewSWAMemCache).
    go_engine: bool = False
    swa_memory: int = 0
    rs_planes: int = 1  # 1 + n_rs_seq copies of each recurrent state (llama.cpp#22673)

    @cached_property
    def cells_key(self) -> tuple[object, ...]:
        """Everything cell counts depend on besides the settings."""
        return (self.hybrid, self.windows, self.go_engine, self.swa_memory)

    @cached_property
    def has_swa(self) -> bool:
        return any(g.window for g in self.groups)

    @cached_property
    def windows(self) -> tuple[int, ...]:
        """The window of each cache group (0 = the base cache): all that cell counts depend on."""
        return tuple(g.window for g in self.groups)


def mla_widths(g: LayerGroup, build: Build) -> tuple[int, int]:
    """K and V values per cell of an MLA layer, as the build stores them.

    - ik_llama.cpp (-mla 2/3 with FA): only c^KV = kv_lora_rank + rope ("kv^T: not used").
    - llama.cpp < b5140: the uncompressed K/V (n_head_kv × 192 / × 128 for DeepSeek).
    - llama.cpp#12801 … #19067: K = kv_lora_rank + rope with n_head_kv = 1, V = kv_lora_rank.
    - llama.cpp#19067 (V-less cache): K only (llama-kv-cache.cpp has_v = !is_mla).
    """
    latent = (g.kv_lora_rank or 0) + (g.rope_dim or 0)
    if build.ik:
        return latent, 0
    if build.number < B_MLA_LATENT and g.n_kv_heads and g.head_dim_k and g.head_dim_v:
        return g.n_kv_heads * g.head_dim_k, g.n_kv_heads * g.head_dim_v
    if build.number < B_MLA_NO_V:
        return latent, g.kv_lora_rank or 0
    return latent, 0


def indexer_row(g: LayerGroup, tk: KvType, build: Build) -> int:
    """K bytes per cell of the layer's DSA lightning-indexer cache (0 if none): llama_kv_cache_dsa
    hand-tweaks hparams to one key head of indexer_head_size, stored in the -ctk type, no V (the model
    is MLA, so has_v = false). Builds before llama.cpp#23346 keep no indexer cache (dense MLA)."""
    if not g.indexer_dim or g.kind != "mla" or build.ik or build.number < B_DSA_INDEXER:
        return 0
    return tk.row_bytes(g.indexer_dim)


def _widths(g: LayerGroup, build: Build, override: int | None) -> tuple[int, int]:
    if g.kind == "mla":
        return mla_widths(g, build)
    return g.k_width(override), g.v_width(override)


def build_layout(
    model: ModelSpec,
    tk: KvType,
    tv: KvType,
    build: Build,
    v_trans: bool,
    override: int | None,
    rs_planes: int = 1,
) -> Layout:
    """Row bytes per layer (ggml_row_size of each cache tensor, llama-kv-cache.cpp constructor).

    A recurrent layer's state counts ``rs_planes`` times: llama-memory-recurrent.cpp allocates
    ``mem_size * (1 + n_rs_seq)`` rows of r and s (llama.cpp#22673, see llamacpp_rules.rs_planes)."""
    widths = [_widths(g, build, override) if g.has_kv else (0, 0) for g in model.layers]
    vmax = max((v for (_, v), g in zip(widths, model.layers, strict=True) if g.has_kv), default=0)
    pad_v = v_trans and not build.ik and build.number >= B_V_MAX  # [TAG_V_CACHE_VARIABLE]
    no_swa = ignores_sliding_window(model.architecture)
    windows: list[int] = [0]
    layer_group, layer_k, layer_v, layer_state, layer_idx = [], [], [], [], []
    for g, (kw, vw) in zip(model.layers, widths, strict=True):
        if g.kind == "recurrent":
            gi, kb, vb, sb = -1, 0, 0, int(g.state_bytes or 0) * rs_planes
        elif g.has_kv:
            windowed = g.kind == "chunked" or (g.kind == "sliding" and not no_swa)
            window = int(g.window or 0) if windowed else 0
            if window not in windows:
                windows.append(window)
            gi = windows.index(window)
            vb = tv.row_bytes(vmax if (pad_v and vw) else vw) if vw else 0
            kb, sb = tk.row_bytes(kw) + indexer_row(g, tk, build), 0
        else:
            gi, kb, vb, sb = -1, 0, 0, 0
        layer_group += [gi] * g.count
        layer_k += [kb] * g.count
        layer_v += [vb] * g.count
        layer_state += [sb] * g.count
        layer_idx += [indexer_row(g, tk, build)] * g.count
    lg = np.array(layer_group, dtype=np.int64)
    lk = np.array(layer_k, dtype=np.int64)
    lv = np.array(layer_v, dtype=np.int64)
    ls = np.array(layer_state, dtype=np.int64)
    li = np.array(layer_idx, dtype=np.int64)
    groups = tuple(
        CacheGroup(
            w,
            int((lg == i).sum()),
            int(lk[lg == i].sum()),
            int(lv[lg == i].sum()),
            int(li[lg == i].sum()),
            int((li[lg == i] > 0).sum()),
        )
        for i, w in enumerate(windows)
    )
    n_rec = sum(g.count for g in model.layers if g.kind == "recurrent")
    return Layout(
        groups=groups,
        state_per_seq=int(ls.sum()),
        n_recurrent=n_rec,
        hybrid=n_rec > 0 and bool((lg >= 0).any()),
        layer_group=lg,
        layer_k=lk,
        layer_v=lv,
        layer_state=ls,
        rs_planes=rs_planes,
    )


@lru_cache(maxsize=256)
def layer_devices(n_layer: int, n_devices: int) -> npt.NDArray[np.int64]:
    """Device of each repeating layer and of the output layer (index n_layer), for equal devices.

    llama-model.cpp load_tensors (split_mode layer): cumulative splits of the device shares, then
    ``upper_bound(splits, float(il)/act_gpu_layers)`` with act_gpu_layers = n_layer + 1 (the output
    layer counts). With 2 devices and 80 layers this gives 41 / 39 + output, as the RPC log shows.
    """
    if n_devices <= 1:
        out = np.zeros(n_layer + 1, dtype=np.int64)
        out.flags.writeable = False
        return out
    splits = (np.arange(1, n_devices + 1, dtype=np.float32) / np.float32(n_devices)).astype(np.float32)
    pos = (np.arange(n_layer + 1, dtype=np.float32) / np.float32(n_layer + 1)).astype(np.float32)
    out = np.minimum(np.searchsorted(splits, pos, side="right"), n_devices - 1).astype(np.int64)
    out.flags.writeable = False  # cached: callers must not modify it
    return out
