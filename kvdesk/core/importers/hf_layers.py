"""Layer layout of a Hugging Face ``config.json``: which layers are full / sliding / chunked / MLA /
recurrent, with their KV heads and K/V widths.

Rules follow each model's transformers configuration/modeling code:
- ``layer_types`` (transformers ≥ 4.53) wins when present;
- Gemma 2: even layers slide (``(i + 1) % 2``); Gemma 3 / Cohere 2: ``sliding_window_pattern``
  (layer i slides unless ``(i + 1) % pattern == 0``);
- Llama 4: ``no_rope_layers`` (1 = RoPE + chunked attention) or every 4th layer global,
  chunk ``attention_chunk_size``;
- Qwen2/Mistral: ``sliding_window`` applies only when ``use_sliding_window`` is not false (Qwen2:
  from layer ``max_window_layers`` on);
- Qwen3-Next: every ``full_attention_interval``-th layer attends, the rest are gated delta-nets;
- Jamba: attention where ``i % attn_layer_period == attn_layer_offset``, Mamba elsewhere;
- Nemotron-H: ``hybrid_override_pattern`` (M = Mamba-2, * = attention, - = MLP only);
- Falcon-H1: attention and Mamba-2 side by side in every layer (both listed);
- MLA (DeepSeek V2/V3, Kimi K2): ``kv_lora_rank`` + ``qk_rope_head_dim`` per token;
- Gemma 3n / Gemma 4: the last ``num_kv_shared_layers`` layers reuse an earlier layer's K/V and
  own no cache (listed as ``none``); Gemma 4 full layers use ``global_head_dim`` and, with
  ``attention_k_eq_v``, ``num_global_key_value_heads`` (transformers modeling_gemma4 Gemma4TextAttention).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from kvdesk.core.errors import InputError
from kvdesk.core.importers import merge_layers, recurrent_state_bytes, shortconv_state_bytes
from kvdesk.core.model import LayerGroup

_KIND = {
    "full_attention": "full",
    "attention": "full",
    "global": "full",
    "full": "full",
    "sliding_attention": "sliding",
    "sliding": "sliding",
    "local": "sliding",
    "chunked_attention": "chunked",
    "linear_attention": "recurrent",
    "mamba": "recurrent",
    "mamba2": "recurrent",
    "conv": "recurrent",
}


def cfg_int(c: dict[str, Any], *keys: str, default: int | None = None) -> int | None:
    for k in keys:
        v = c.get(k)
        if isinstance(v, bool):
            continue
        if isinstance(v, int) or (isinstance(v, float) and math.isfinite(v)):  # NaN/Infinity: not a count
            return int(v)
    return default


def head_dims(c: dict[str, Any]) -> tuple[int, int, int, int]:
    """(n_heads, n_kv_heads, head_dim_k, head_dim_v); a missing num_key_value_heads means MHA."""
    hidden = cfg_int(c, "hidden_size", "n_embd", "d_model", default=0) or 0
    n_heads = cfg_int(c, "num_attention_heads", "n_head", "num_heads", default=0) or 0
    n_kv = cfg_int(c, "num_key_value_heads", "n_head_kv", "num_kv_heads", default=n_heads) or n_heads
    if c.get("multi_query") is True:
        n_kv = 1
    head = cfg_int(c, "head_dim", default=None) or (hidden // n_heads if n_heads else 0)
    head_v = (cfg_int(c, "v_head_dim", default=head) or head) if c.get("kv_lora_rank") else head
    return n_heads, n_kv, head, head_v


def state_bytes(c: dict[str, Any], kind_name: str, notes: list[str]) -> tuple[int, int]:
    """Recurrent state per layer per sequence (llama.cpp n_embd_r + n_embd_s, f32), and its SSM part.

    The SSM / delta-net part is ``n_embd_s = d_state · d_inner`` (vLLM's temporal state, shape
    (heads, head_dim, d_state) for Mamba-2 and (v_heads, k_dim, v_dim) for gated delta-nets); the
    rest is the conv window. Short-conv layers (LFM2) have no SSM part.
    """
    hidden = cfg_int(c, "hidden_size", default=0) or 0
    if kind_name == "conv" or "conv_L_cache" in c:
        return shortconv_state_bytes(hidden, cfg_int(c, "conv_L_cache", default=3) or 3), 0
    if "linear_num_value_heads" in c:  # Qwen3-Next / Qwen3.5 gated delta-net
        d_inner = (cfg_int(c, "linear_num_value_heads") or 0) * (cfg_int(c, "linear_value_head_dim") or 0)
        d_key = cfg_int(c, "linear_key_head_dim") or 0
        d_conv = cfg_int(c, "linear_conv_kernel_dim", default=4) or 4
        total = recurrent_state_bytes(d_conv, d_inner, d_key, cfg_int(c, "linear_num_key_heads") or 0)
        return total, 4 * d_key * d_inner
    d_state = cfg_int(c, "mamba_d_state", "ssm_state_size", "state_size", default=16) or 16
    d_conv = cfg_int(c, "mamba_d_conv", "conv_kernel", default=4) or 4
    heads = cfg_int(c, "mamba_n_heads", "mamba_num_heads")
    head = cfg_int(c, "mamba_d_head", "mamba_head_dim")
    d_inner = cfg_int(c, "mamba_d_ssm") or (heads * head if heads and head else 0)
    if not d_inner:
        expand = cfg_int(c, "mamba_expand", "expand", default=2) or 2
        plain_mamba = c.get("model_type") == "mamba"
        d_inner = (cfg_int(c, "intermediate_size") or 0) if plain_mamba else expand * hidden
    groups = cfg_int(c, "mamba_n_groups", "n_groups", default=None)
    if groups is None:
        groups = 0 if c.get("model_type") in ("jamba", "mamba", "falcon_mamba") else 1
    notes.append(
        f"recurrent state: d_conv {d_conv}, d_inner {d_inner}, d_state {d_state}, groups {groups} "
        "→ (d_conv−1)(d_inner+2·groups·d_state) + d_state·d_inner values at f32 (llama.cpp)"
    )
    return recurrent_state_bytes(d_conv, d_inner or 0, d_state, groups), 4 * d_state * (d_inner or 0)


StateDtype = Literal["f32", "bf16", "f16"]
_STATE_DTYPES: dict[str, StateDtype] = {
    "float32": "f32",
    "f32": "f32",
    "bfloat16": "bf16",
    "bf16": "bf16",
    "float16": "f16",
    "f16": "f16",
}


def ssm_dtype(c: dict[str, Any], notes: list[str]) -> StateDtype | None:
    """The dtype the config asks engines to keep the SSM state in (None = the engine's default).

    vLLM vllm/model_executor/models/config.py: Qwen3.5's VerifyAndUpdateConfig copies the config's
    ``mamba_ssm_dtype`` into ``cache_config.mamba_ssm_cache_dtype`` when that is "auto";
    NemotronHForCausalLMConfig reads ``mamba_ssm_cache_dtype`` the same way (vllm#29978).
    """
    raw = c.get("mamba_ssm_dtype") or c.get("mamba_ssm_cache_dtype")
    if not isinstance(raw, str):
        return None
    name = _STATE_DTYPES.get(raw.strip().lower())
    if name is None:
        notes.append(f"mamba_ssm_dtype {raw[:20]!r} not understood: SSM state assumed in the model dtype")
        return None
    notes.append(f"SSM state kept in {name} (config {raw}; vLLM mamba_ssm_cache_dtype)")
    return name


# Architectures whose SSM state dtype vLLM picks itself when the config names none (vLLM engine
# profile: NemotronH float32 from vllm#39032): the importer keeps their state split for it.
_SPLIT_STATE_TYPES = ("nemotron_h",)


def recurrent_group(c: dict[str, Any], kind_name: str, notes: list[str]) -> LayerGroup:
    """One recurrent layer; the SSM part is split out when the config names its dtype (or the
    engine has a per-model default for it)."""
    total, ssm = state_bytes(c, kind_name, notes)
    dtype = ssm_dtype(c, notes) if ssm else None
    if dtype is None and not (ssm and c.get("model_type") in _SPLIT_STATE_TYPES):
        return LayerGroup(kind="recurrent", state_bytes=total)
    return LayerGroup(kind="recurrent", state_bytes=total, ssm_state_bytes=ssm, ssm_state_dtype=dtype)


def _pattern_kinds(c: dict[str, Any], n: int) -> list[str]:
    mt = str(c.get("model_type", ""))
    window = c.get("sliding_window")
    if isinstance(c.get("layer_types"), list):
        raw = [str(t) for t in c["layer_types"]]
        if len(raw) != n:
            raise InputError(f"layer_types has {len(raw)} entries for {n} layers")
        return raw
    if mt == "qwen3_next":
        k = cfg_int(c, "full_attention_interval", default=4) or 4
        return ["full" if (i + 1) % k == 0 else "linear_attention" for i in range(n)]
    if mt == "jamba":
        period, offset = cfg_int(c, "attn_layer_period", default=8) or 8, cfg_int(c, "attn_layer_offset", default=4)
        return ["full" if i % period == offset else "mamba" for i in range(n)]
    if isinstance(c.get("hybrid_override_pattern"), str):
        pat = c["hybrid_override_pattern"]
        if len(pat) != n:
            raise InputError(f"hybrid_override_pattern has {len(pat)} entries for {n} layers")
        return [{"M": "mamba", "*": "full", "-": "none"}.get(ch, "none") for ch in pat]
    if mt.startswith("llama4"):
        chunked = c.get("no_rope_layers") or [int((i + 1) % 4 != 0) for i in range(n)]
        if not isinstance(chunked, list) or len(chunked) != n:
            raise InputError(f"no_rope_layers must list one 0/1 per layer ({n})")
        return ["chunked_attention" if chunked[i] else "full" for i in range(n)]
    if window and mt in ("gemma2",):
        return ["sliding" if (i + 1) % 2 else "full" for i in range(n)]
    if window and ("sliding_window_pattern" in c or mt in ("gemma3_text", "gemma3", "cohere2")):
        p = cfg_int(c, "sliding_window_pattern", default=6 if mt.startswith("gemma3") else 4) or 1
        return ["sliding" if (i + 1) % p else "full" for i in range(n)]
    if window and c.get("use_sliding_window", True) is not False:
        start = cfg_int(c, "max_window_layers", default=0) if mt.startswith("qwen2") else 0
        return ["sliding" if i >= (start or 0) else "full" for i in range(n)]
    return ["full"] * n


def _kv_shared_from(c: dict[str, Any], n: int, notes: list[str]) -> int:
    """Index of the first layer without its own KV (n when every layer has one).

    transformers Gemma3n/Gemma4 attention: ``first_kv_shared_layer_idx = num_hidden_layers -
    num_kv_shared_layers``; later layers read the cache of the last earlier layer of their type.
    vLLM gives them ``kv_sharing_target_layer_name`` and no KV spec (gpu_model_runner
    get_kv_cache_spec skips them); llama.cpp ``hparams.has_kv(il)`` is false from
    ``n_layer_kv_from_start`` on (llama-kv-cache.cpp: "does not have KV cache").
    """
    shared = cfg_int(c, "num_kv_shared_layers", default=0) or 0
    if shared <= 0:
        return n
    if shared >= n:
        raise InputError(f"num_kv_shared_layers {shared} leaves none of the {n} layers with a KV cache")
    notes.append(f"num_kv_shared_layers {shared}: layers {n - shared}..{n - 1} reuse earlier KV (no own cache)")
    return n - shared


def _full_heads(c: dict[str, Any], n_kv: int, hd_k: int, hd_v: int) -> tuple[int, int, int]:
    """KV heads and K/V widths of full-attention layers (Gemma 4: global_head_dim, k_eq_v heads)."""
    glob = cfg_int(c, "global_head_dim")
    if not glob:
        return n_kv, hd_k, hd_v
    heads = n_kv
    if c.get("attention_k_eq_v") is True:
        heads = cfg_int(c, "num_global_key_value_heads", default=n_kv) or n_kv
    return heads, glob, glob


def build_layers(c: dict[str, Any], notes: list[str]) -> list[LayerGroup]:
    n = cfg_int(c, "num_hidden_layers", "n_layer", "num_layers", "n_layers")
    if not n or n < 1:
        raise InputError("config.json has no num_hidden_layers")
    if n > 4096:
        raise InputError(f"config.json claims {n:,} layers (kvdesk accepts up to 4096)")
    n_heads, n_kv, hd_k, hd_v = head_dims(c)
    kinds = _pattern_kinds(c, n)
    window = cfg_int(c, "sliding_window", "attention_chunk_size")
    ctx = cfg_int(c, "max_position_embeddings", default=0) or 0
    if window and ctx and window >= ctx and not c.get("attention_chunk_size"):
        notes.append(f"sliding_window {window} ≥ context {ctx}: every layer attends to the whole context")
        window = None
    chunk = cfg_int(c, "attention_chunk_size")
    mla = cfg_int(c, "kv_lora_rank")
    # DeepSeek-V3.2 / GLM-5 sparse attention: a lightning indexer keeps one index_head_dim key per
    # token in every layer (vllm deepseek_v2.py DeepseekV32IndexerCache; llama.cpp llama_kv_cache_dsa)
    indexer = (cfg_int(c, "index_head_dim") or None) if mla and c.get("index_topk") else None
    if indexer:
        notes.append(
            f"sparse attention: a {indexer}-wide lightning-indexer key per token on every MLA layer "
            "(models that share one indexer across layers keep fewer)"
        )
    state: LayerGroup | None = None
    layers: list[LayerGroup] = []
    shared_from = _kv_shared_from(c, n, notes)
    full_kv, full_k, full_v = _full_heads(c, n_kv, hd_k, hd_v)
    for il, raw in enumerate(kinds):
        kind = _KIND.get(raw, "none" if raw == "none" else "full")
        if il >= shared_from and kind != "recurrent":
            kind = "none"
        if kind == "recurrent":
            state = state if state is not None else recurrent_group(c, raw, notes)
            layers.append(state)
        elif kind == "none":
            layers.append(LayerGroup(kind="none"))
        elif mla:
            nope, rope = cfg_int(c, "qk_nope_head_dim", default=0) or 0, cfg_int(c, "qk_rope_head_dim", default=0)
            layers.append(
                LayerGroup(
                    kind="mla",
                    n_kv_heads=n_heads,
                    head_dim_k=nope + (rope or 0),
                    head_dim_v=hd_v,
                    kv_lora_rank=mla,
                    rope_dim=rope,
                    indexer_dim=indexer,
                )
            )
        elif kind == "chunked":
            layers.append(
                LayerGroup(kind="chunked", window=chunk or window, n_kv_heads=n_kv, head_dim_k=hd_k, head_dim_v=hd_v)
            )
        elif kind == "sliding" and window:
            layers.append(
                LayerGroup(
                    kind="sliding",
                    window=cfg_int(c, "sliding_window") or window,
                    n_kv_heads=n_kv,
                    head_dim_k=hd_k,
                    head_dim_v=hd_v,
                )
            )
        else:
            layers.append(LayerGroup(kind="full", n_kv_heads=full_kv, head_dim_k=full_k, head_dim_v=full_v))
    if str(c.get("model_type")) == "falcon_h1":
        layers += [recurrent_group(c, "mamba2", notes)] * n
        notes.append("Falcon-H1: each layer has attention and a Mamba-2 mixer side by side; both listed")
    return merge_layers(layers)
