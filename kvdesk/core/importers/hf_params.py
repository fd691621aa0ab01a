"""Parameter counts (total and active per token) from a config.json's architecture numbers.

Used only when no safetensors headers are at hand. Per layer (biases and tiny norms aside):

- attention: ``h·(H·d_k) + h·(KV·(d_k + d_v)) + (H·d_v)·h`` (q, k, v, o projections);
- MLA: ``h·r_q + r_q·H·(d_nope + d_rope)`` (or ``h·H·(d_nope + d_rope)`` without q LoRA)
  ``+ h·(r_kv + d_rope) + r_kv·H·(d_nope + d_v) + H·d_v·h``;
- gated MLP: ``3·h·i`` (2·h·i for plain GELU MLPs: GPT-2, Phi-2 …);
- MoE layer: ``E·3·h·i_e`` experts + ``h·E`` router + shared experts ``3·h·i_s``;
  active = ``k·3·h·i_e`` + router + shared;
- Mamba / gated delta-net mixers: their projection and conv weights;
plus ``vocab·h`` embeddings (twice unless ``tie_word_embeddings``) and 2 norms of ``h`` per layer.
DeepSeek's multi-token-prediction layer (``num_nextn_predict_layers``) is not counted (engines do
not load it by default). Gemma 3n / Gemma 4 E-models: layers that share an earlier layer's KV still
hold their q/k/v/o projections, and the per-layer embeddings (``vocab_size_per_layer_input ×
layers × hidden_size_per_layer_input``), their projections, LAuReL and AltUp weights are counted
(transformers modeling_gemma3n Gemma3nTextModel / Gemma3nTextDecoderLayer); Gemma 4 MoE layers
(``enable_moe_block``) keep a dense MLP of ``intermediate_size`` beside the experts (26B-A4B: 25.2B
total, 3.8B active). Llama 3.1 8B comes out at 8,030,261,248 — the exact safetensors count.
"""

from __future__ import annotations

from typing import Any

from kvdesk.core.importers.hf_layers import cfg_int, head_dims
from kvdesk.core.model import LayerGroup

_PLAIN_MLP = {"gpt2", "phi", "gpt_neox", "gpt_bigcode", "starcoder2", "falcon", "bloom", "opt", "gptj"}
_TIED_DEFAULT = {
    "gemma",
    "gemma2",
    "gemma3_text",
    "gemma3",
    "gemma3n_text",
    "gemma3n",
    "gemma4_text",
    "gemma4",
    "phi3",
    "qwen3",
    "granite",
}


def n_experts(c: dict[str, Any]) -> int:
    keys = ("num_experts", "num_local_experts", "n_routed_experts", "num_routed_experts", "moe_num_experts")
    return cfg_int(c, *keys, default=0) or 0


def n_experts_active(c: dict[str, Any]) -> int:
    keys = ("num_experts_per_tok", "experts_per_token", "moe_top_k", "num_experts_per_token", "top_k_experts")
    return cfg_int(c, *keys, default=0) or 0  # top_k_experts: Gemma 4


def _attention(c: dict[str, Any], g: LayerGroup, h: int) -> int:
    n_heads, n_kv, hd_k, hd_v = head_dims(c)
    if g.kind == "mla":
        nope, rope = cfg_int(c, "qk_nope_head_dim", default=0) or 0, g.rope_dim or 0
        q_rank = cfg_int(c, "q_lora_rank")
        q = h * q_rank + q_rank * n_heads * (nope + rope) if q_rank else h * n_heads * (nope + rope)
        kv_rank = g.kv_lora_rank or 0
        return q + h * (kv_rank + rope) + kv_rank * n_heads * (nope + g.head_dim_v) + n_heads * g.head_dim_v * h
    return h * n_heads * hd_k + h * n_kv * (hd_k + hd_v) + n_heads * hd_v * h


def _mixer(c: dict[str, Any], h: int) -> int:
    """Weights of one recurrent mixer (gated delta-net or Mamba-1/2)."""
    if "linear_num_value_heads" in c:
        kd = (cfg_int(c, "linear_num_key_heads") or 0) * (cfg_int(c, "linear_key_head_dim") or 0)
        nv = cfg_int(c, "linear_num_value_heads") or 0
        vd = nv * (cfg_int(c, "linear_value_head_dim") or 0)
        conv = (2 * kd + vd) * (cfg_int(c, "linear_conv_kernel_dim", default=4) or 4)
        return h * (2 * kd + 2 * vd) + h * 2 * nv + conv + vd * h
    d_state = cfg_int(c, "mamba_d_state", "ssm_state_size", "state_size", default=16) or 16
    d_conv = cfg_int(c, "mamba_d_conv", "conv_kernel", default=4) or 4
    heads = cfg_int(c, "mamba_n_heads", "mamba_num_heads")
    d_head = cfg_int(c, "mamba_d_head", "mamba_head_dim")
    d_inner = cfg_int(c, "mamba_d_ssm") or (heads * d_head if heads and d_head else None)
    d_inner = d_inner or (cfg_int(c, "mamba_expand", "expand", default=2) or 2) * h
    if heads:  # Mamba-2
        g = cfg_int(c, "mamba_n_groups", "n_groups", default=1) or 1
        conv_dim = d_inner + 2 * g * d_state
        return h * (2 * d_inner + 2 * g * d_state + heads) + conv_dim * d_conv + d_inner * h + 3 * heads
    dt_rank = cfg_int(c, "mamba_dt_rank", "time_step_rank", default=-(-h // 16)) or 1
    return (
        h * 2 * d_inner
        + d_inner * d_conv
        + d_inner * (dt_rank + 2 * d_state)
        + dt_rank * d_inner
        + d_inner * d_state
        + d_inner * h
    )


def _is_moe_layer(c: dict[str, Any], i: int) -> bool:
    if n_experts(c) <= 1:
        return False
    if i < (cfg_int(c, "first_k_dense_replace", default=0) or 0):
        return False
    only = c.get("mlp_only_layers")
    if isinstance(only, list) and i in only:
        return False
    step = cfg_int(c, "interleave_moe_layer_step", "decoder_sparse_step", "moe_layer_freq", default=1) or 1
    if c.get("model_type") == "jamba":
        period, offset = cfg_int(c, "expert_layer_period", default=2) or 2, cfg_int(c, "expert_layer_offset", default=1)
        return i % period == offset
    return (i + 1) % step == 0


def _mlp(c: dict[str, Any], i: int, h: int) -> tuple[int, int]:
    """(total, active) parameters of layer i's feed-forward block."""
    inter = cfg_int(c, "intermediate_size", "n_inner", "ffn_dim", default=4 * h) or 4 * h
    mult = 2 if c.get("model_type") in _PLAIN_MLP else 3
    if not _is_moe_layer(c, i):
        if str(c.get("model_type", "")).startswith("llama4"):
            inter = cfg_int(c, "intermediate_size_mlp", default=inter) or inter
        dense = mult * h * inter
        return dense, dense
    e, k = n_experts(c), n_experts_active(c) or 1
    moe_inter = cfg_int(c, "moe_intermediate_size", default=inter) or inter
    shared = cfg_int(c, "shared_expert_intermediate_size", "shared_intermediate_size", default=0) or 0
    if not shared and cfg_int(c, "n_shared_experts", "num_shared_experts", default=0):
        shared = (cfg_int(c, "n_shared_experts", "num_shared_experts") or 0) * moe_inter
    if not shared and str(c.get("model_type", "")).startswith("llama4"):
        shared = inter
    router = h * e
    fixed = router + 3 * h * shared
    if c.get("enable_moe_block") is True:  # Gemma 4: the dense MLP runs beside the experts
        fixed += 3 * h * inter
    return e * 3 * h * moe_inter + fixed, k * 3 * h * moe_inter + fixed


def _per_layer_inputs(c: dict[str, Any], h: int, n_layers: int) -> int:
    """Gemma 3n / Gemma 4 per-layer-embedding (PLE), LAuReL and AltUp weights."""
    ple = cfg_int(c, "hidden_size_per_layer_input", default=0) or 0
    if not ple:
        return 0
    vocab = cfg_int(c, "vocab_size_per_layer_input", "vocab_size", default=0) or 0
    table = vocab * n_layers * ple  # embed_tokens_per_layer
    model_proj = h * n_layers * ple  # per_layer_model_projection
    per_layer = 2 * h * ple  # per_layer_input_gate + per_layer_projection
    rank = cfg_int(c, "laurel_rank", default=0) or 0
    per_layer += 2 * h * rank  # laurel linear_left / linear_right
    n_alt = cfg_int(c, "altup_num_inputs", default=0) or 0
    if n_alt:  # altup correction/prediction coefs + router, and the (n-1) up/down projections
        per_layer += n_alt * n_alt + n_alt * n_alt * n_alt + h * n_alt
        model_proj += 2 * (n_alt - 1) * h * h
    return table + model_proj + n_layers * per_layer


def count_params(c: dict[str, Any], layers: list[LayerGroup]) -> tuple[int, int]:
    """(params_total, params_active) of the architecture described by config ``c``."""
    h = cfg_int(c, "hidden_size", "n_embd", "d_model", default=0) or 0
    vocab = cfg_int(c, "vocab_size", default=0) or 0
    tied = c.get("tie_word_embeddings", str(c.get("model_type", "")) in _TIED_DEFAULT)
    total = active = vocab * h * (1 if tied else 2) + h
    n_layers = cfg_int(c, "num_hidden_layers", "n_layer", "num_layers", default=0) or 0
    mixers = [g for g in layers for _ in range(g.count)]
    shared_from = n_layers - (cfg_int(c, "num_kv_shared_layers", default=0) or 0)
    for i, g in enumerate(mixers):
        if g.kind == "none" and i >= shared_from:  # KV-sharing layer: its projections are still there
            g = LayerGroup(kind="full", n_kv_heads=1, head_dim_k=1, head_dim_v=1)
        part = _mixer(c, h) if g.kind == "recurrent" else _attention(c, g, h) if g.has_kv else 0
        total += part
        active += part
    ple = _per_layer_inputs(c, h, n_layers)
    total += ple
    active += ple
    for i in range(n_layers):
        t, a = _mlp(c, i, h)
        total += t + 2 * h
        active += a + 2 * h
    return total, active
