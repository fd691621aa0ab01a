"""GGUF → ModelSpec: architecture keys of the header, exact weight bytes from the tensor infos.

Key names follow llama.cpp src/llama-arch.cpp (``{arch}.block_count``, ``{arch}.attention.head_count_kv``
— a number or a per-layer array —, ``{arch}.attention.sliding_window``, ``…kv_lora_rank``, ``…ssm.*``).
Which layers use the sliding window is hard-coded per architecture in llama.cpp
src/llama-model.cpp ``load_hparams`` (``hparams.set_swa_pattern(n)``: layer il slides when
``il % n < n - 1``); newer files may carry ``{arch}.attention.sliding_window_pattern`` (a bool per layer).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kvdesk.core.errors import InputError, describe_validation_error
from kvdesk.core.importers import ImportResult, merge_layers, recurrent_state_bytes, shortconv_state_bytes
from kvdesk.core.importers.ggml_types import GGML_TYPES, LLAMA_FTYPES
from kvdesk.core.importers.gguf_reader import GgufHeader, SkippedArray, read_gguf_header
from kvdesk.core.model import LayerGroup, ModelSpec, WeightFormat
from kvdesk.core.plan import ModelOrigin

# llama-model.cpp load_hparams: set_swa_pattern(n) per architecture (n = 1 → every layer slides);
# OLMo 2/3 (olmo2) and AFMoE slide 3 of 4 layers when the file has a sliding window.
SWA_PATTERN = {
    "gemma2": 2,
    "gemma3": 6,
    "gpt-oss": 2,
    "cohere2": 4,
    "exaone4": 4,
    "gemma3n": 5,
    "olmo2": 4,
    "afmoe": 4,
}
# set_swa_pattern(4, dense_first = true) (LLM_ARCH_SMALLTHINKER): layer il slides when il % 4 != 0
SWA_DENSE_FIRST = {"smallthinker": 4}
# windows llama.cpp assumes when the file has none (LLM_ARCH_GEMMA2 4096, LLM_ARCH_EXAONE4 4096,
# LLM_ARCH_SMALLTHINKER 4096)
DEFAULT_WINDOW = {"gemma2": 4096, "exaone4": 4096, "smallthinker": 4096}
# llama-model.cpp LLM_ARCH_LLAMA4: swa_type CHUNKED, n_swa = 8192, set_swa_pattern(4)
CHUNKED = {"llama4": (8192, 4)}
# Layers from n_layer_kv_from_start on have no KV cache (llama-hparams.cpp has_kv(il)); llama-model.cpp
# load_hparams sets it to 20 for LLM_ARCH_GEMMA3N (hard-coded, both E2B and E4B), to n_layer −
# {arch}.attention.shared_kv_layers for Gemma 4, and to n_layer − {arch}.nextn_predict_layers for
# the MTP layer of GLM-4.5 (glm4moe) and Ling 2 (bailingmoe2), which llama.cpp loads but never runs.
KV_FROM_START = {"gemma3n": 20}
NEXTN_NO_KV = {"glm4moe", "bailingmoe2"}
_SPLIT = re.compile(r"^(?P<stem>.*)-(?P<i>\d{5})-of-(?P<n>\d{5})\.gguf$")
MAX_SPLITS = 256
MAX_LAYERS = 4096


def _per_layer(value: Any, n_layer: int, what: str, default: int) -> list[int]:
    if value is None:
        return [default] * n_layer
    if isinstance(value, list):
        if len(value) != n_layer:
            raise InputError(f"{what} has {len(value)} entries for {n_layer} layers")
        return [_whole(v, what) for v in value]
    if isinstance(value, SkippedArray):
        raise InputError(f"{what} is an array of {value.count:,} entries, more than any model has layers")
    return [_whole(value, what)] * n_layer


def _whole(value: Any, what: str) -> int:
    """A count from the header; text, NaN or infinity there is a damaged file, not a crash."""
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return int(value)
    raise InputError(f"{what}: {str(value)[:40]!r} is not a whole number")


def _int(kv: dict[str, Any], key: str, default: int | None = None) -> int | None:
    value = kv.get(key)
    if value is None or isinstance(value, (list, SkippedArray, str)):
        return default
    if isinstance(value, float) and not math.isfinite(value):
        return default
    return int(value)


def _sliding_flags(kv: dict[str, Any], arch: str, n_layer: int) -> tuple[list[bool], str]:
    pattern = kv.get(f"{arch}.attention.sliding_window_pattern")
    if isinstance(pattern, list) and len(pattern) == n_layer:
        return [bool(p) for p in pattern], f"{arch}.attention.sliding_window_pattern"
    n = int(pattern) if isinstance(pattern, (int, float)) and not isinstance(pattern, bool) else None
    source = f"{arch}.attention.sliding_window_pattern" if n else f"llama.cpp set_swa_pattern for {arch}"
    if not n and arch in SWA_DENSE_FIRST:
        d = SWA_DENSE_FIRST[arch]
        return [il % d != 0 for il in range(n_layer)], f"llama.cpp set_swa_pattern({d}, dense_first) for {arch}"
    n = n or SWA_PATTERN.get(arch, 1)
    return [il % n < n - 1 or n == 1 for il in range(n_layer)], source


def _recurrent_bytes(kv: dict[str, Any], arch: str, n_embd: int) -> int | None:
    l_cache = _int(kv, f"{arch}.shortconv.l_cache")
    if l_cache:
        return shortconv_state_bytes(n_embd, l_cache)
    d_conv = _int(kv, f"{arch}.ssm.conv_kernel")
    d_inner = _int(kv, f"{arch}.ssm.inner_size")
    d_state = _int(kv, f"{arch}.ssm.state_size")
    if not (d_conv and d_inner and d_state):
        return None
    return recurrent_state_bytes(d_conv, d_inner, d_state, _int(kv, f"{arch}.ssm.group_count", 0) or 0)


def _recurrent_flags(kv: dict[str, Any], arch: str, kv_heads: list[int]) -> list[bool]:
    interval = _int(kv, f"{arch}.full_attention_interval")
    if arch == "qwen3next" and not interval:
        interval = 4  # llama-model.cpp LLM_ARCH_QWEN3NEXT: recurrent_layer_arr[i] = (i + 1) % 4 != 0
    if interval:
        return [(il + 1) % interval != 0 for il in range(len(kv_heads))]
    if arch in ("mamba", "mamba2"):
        return [True] * len(kv_heads)
    ff = kv.get(f"{arch}.feed_forward_length")
    if isinstance(ff, list) and len(ff) == len(kv_heads):
        # Nemotron-H: MLP-only layers also have no KV heads (llama-model.cpp: recurrent = no KV and no FFN)
        return [h == 0 and f == 0 for h, f in zip(kv_heads, ff, strict=True)]
    return [h == 0 for h in kv_heads]


def _kv_layers(kv: dict[str, Any], arch: str, n_layer: int, notes: list[str]) -> int:
    """How many leading layers own a KV cache (llama.cpp hparams.n_layer_kv_from_start)."""
    shared = _int(kv, f"{arch}.attention.shared_kv_layers", 0) or 0
    nextn = (_int(kv, f"{arch}.nextn_predict_layers", 0) or 0) if arch in NEXTN_NO_KV else 0
    if arch in KV_FROM_START:
        start, why = KV_FROM_START[arch], f"llama.cpp hard-codes n_layer_kv_from_start = {KV_FROM_START[arch]}"
    elif shared:
        start, why = n_layer - shared, f"{arch}.attention.shared_kv_layers = {shared}"
    elif nextn:
        start, why = n_layer - nextn, f"{arch}.nextn_predict_layers = {nextn} (MTP layer, unused)"
    else:
        return n_layer
    if not 0 < start <= n_layer:
        raise InputError(f"{why} leaves {start} of {n_layer} layers with a KV cache")
    if start < n_layer:
        notes.append(f"layers {start}..{n_layer - 1} have no KV cache ({why})")
    return start


def build_layers(kv: dict[str, Any], arch: str, notes: list[str]) -> list[LayerGroup]:
    a = f"{arch}."
    n_layer = _int(kv, a + "block_count")
    if not n_layer or n_layer < 1:
        raise InputError(f"GGUF header has no {a}block_count")
    if n_layer > MAX_LAYERS:
        raise InputError(f"GGUF header claims {n_layer:,} layers (kvdesk accepts up to {MAX_LAYERS})")
    n_embd = _int(kv, a + "embedding_length", 0) or 0
    n_head = max(_per_layer(kv.get(a + "attention.head_count"), n_layer, "head_count", 0) or [0])
    kv_heads = _per_layer(kv.get(a + "attention.head_count_kv"), n_layer, "head_count_kv", n_head)
    head_k = _int(kv, a + "attention.key_length", n_embd // n_head if n_head else 0) or 0
    head_v = _int(kv, a + "attention.value_length", head_k) or 0
    # llama-hparams n_embd_head_k_swa / v_swa (Gemma 4: 256 on sliding layers, 512 on full ones)
    head_k_swa = _int(kv, a + "attention.key_length_swa", head_k) or head_k
    head_v_swa = _int(kv, a + "attention.value_length_swa", head_v) or head_v
    window = _int(kv, a + "attention.sliding_window", DEFAULT_WINDOW.get(arch))
    state = _recurrent_bytes(kv, arch, n_embd)
    recurrent = _recurrent_flags(kv, arch, kv_heads) if state is not None else [False] * n_layer
    mla_rank = _int(kv, a + "attention.kv_lora_rank")
    sliding, swa_src = _sliding_flags(kv, arch, n_layer)
    chunk = CHUNKED.get(arch)
    if chunk and a + "attention.sliding_window" in kv and not window:
        chunk = None  # LLM_ARCH_LLAMA4: a sliding_window of 0 in the file turns chunked attention off
    kv_layers = _kv_layers(kv, arch, n_layer, notes)
    # llama-model.cpp create_memory: LLM_ARCH_DEEPSEEK32 builds llama_kv_cache_dsa, whose lightning-indexer
    # cache keeps one attention.indexer.key_length key per token on every layer (glm-dsa keeps it only on
    # the layers that own an indexer, which the header does not say: left out there)
    indexer = (_int(kv, a + "attention.indexer.key_length") or None) if arch == "deepseek32" and mla_rank else None
    layers: list[LayerGroup] = []
    for il in range(n_layer):
        if recurrent[il]:
            layers.append(LayerGroup(kind="recurrent", state_bytes=state))
            continue
        if kv_heads[il] == 0 or il >= kv_layers:
            layers.append(LayerGroup(kind="none"))
            continue
        base = {"n_kv_heads": kv_heads[il], "head_dim_k": head_k, "head_dim_v": head_v}
        if mla_rank:
            base = {
                "n_kv_heads": n_head,
                "head_dim_k": _int(kv, a + "attention.key_length_mla", head_k) or head_k,
                "head_dim_v": _int(kv, a + "attention.value_length_mla", head_v) or head_v,
            }
            rope = _int(kv, a + "rope.dimension_count", 0)
            layers.append(LayerGroup(kind="mla", kv_lora_rank=mla_rank, rope_dim=rope, indexer_dim=indexer, **base))
        elif chunk and il % chunk[1] < chunk[1] - 1:
            layers.append(LayerGroup(kind="chunked", window=chunk[0], **base))
        elif window and sliding[il]:
            base.update(head_dim_k=head_k_swa, head_dim_v=head_v_swa)
            layers.append(LayerGroup(kind="sliding", window=window, **base))
        else:
            layers.append(LayerGroup(kind="full", **base))
    if arch == "falcon-h1" and state is not None:
        # Falcon-H1 runs attention and Mamba-2 side by side in every layer (llama-model.cpp
        # LLM_ARCH_FALCON_H1): the spec lists the attention layers, then the same number of SSM mixers.
        layers += [LayerGroup(kind="recurrent", state_bytes=state)] * n_layer
        notes.append("Falcon-H1: each layer has attention and a Mamba-2 mixer; both listed")
    if window:
        notes.append(f"sliding window {window} tokens; which layers slide: {swa_src}")
    if chunk:
        notes.append(f"{arch}: chunked attention {chunk[0]} on {chunk[1] - 1} of {chunk[1]} layers (llama.cpp)")
    if state is not None:
        notes.append(f"recurrent state {state:,} B per layer per sequence (llama.cpp n_embd_r + n_embd_s, f32)")
    return merge_layers(layers)


def _split_paths(path: Path, kv: dict[str, Any]) -> list[Path]:
    count = _int(kv, "split.count", 1) or 1
    m = _SPLIT.match(path.name)
    if count <= 1 or not m:
        return [path]
    if count > MAX_SPLITS:
        raise InputError(f"{path.name}: split.count {count} is absurd")
    return [path.with_name(f"{m['stem']}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)]


def _read_all(path: Path, notes: list[str]) -> tuple[GgufHeader, list[GgufHeader]]:
    first = read_gguf_header(path)
    parts = _split_paths(path, first.kv)
    if len(parts) == 1:
        return first, [first]
    missing = [p.name for p in parts if not p.exists()]
    if missing:
        raise InputError(f"{path.name} is part {len(parts)}-way split; missing: {', '.join(missing[:3])}")
    headers = [first if p == path else read_gguf_header(p) for p in parts]
    main = next((h for h in headers if "general.architecture" in h.kv), first)
    notes.append(f"split GGUF: read the headers of {len(parts)} files")
    return main, headers


def _active_params(headers: list[GgufHeader], kv: dict[str, Any], arch: str, total: int) -> int | None:
    n_exp = _int(kv, f"{arch}.expert_count")
    n_used = _int(kv, f"{arch}.expert_used_count")
    if not n_exp or not n_used or n_used >= n_exp:
        return None
    exps = 0
    for h in headers:
        for t in h.tensors:
            if "_exps" in t.name:
                n = 1
                for d in t.shape:
                    n *= d
                exps += n
    return total - exps + exps * n_used // n_exp


def _head_count(kv: dict[str, Any], arch: str) -> int:
    value = kv.get(f"{arch}.attention.head_count")
    if isinstance(value, list):
        return max((int(v) for v in value), default=0)
    return _int(kv, f"{arch}.attention.head_count", 0) or 0


def _vocab(kv: dict[str, Any], arch: str) -> int:
    tokens = kv.get("tokenizer.ggml.tokens")
    if isinstance(tokens, SkippedArray):
        return tokens.count
    if isinstance(tokens, list):
        return len(tokens)
    return _int(kv, f"{arch}.vocab_size", 0) or 0


def _format_name(kv: dict[str, Any], headers: list[GgufHeader]) -> str:
    ftype = _int(kv, "general.file_type")
    if ftype is not None and ftype in LLAMA_FTYPES:
        return LLAMA_FTYPES[ftype]
    counts: dict[int, int] = {}
    for h in headers:
        for t in h.tensors:
            counts[t.type_id] = counts.get(t.type_id, 0) + t.nbytes
    return GGML_TYPES[max(counts, key=lambda k: counts[k])].name if counts else "gguf"


def import_gguf(path: Path | str) -> ImportResult:
    """Read a GGUF file's header (and its split siblings) and describe the model it holds."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p}: a folder, not a .gguf file")
    notes: list[str] = []
    main, headers = _read_all(p, notes)
    kv = main.kv
    arch = kv.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise InputError(f"{p.name}: GGUF header has no general.architecture")
    try:
        layers = build_layers(kv, arch, notes)
    except ValidationError as exc:
        raise InputError(f"{p.name}: impossible attention layout ({describe_validation_error(exc)})") from None
    weights = sum(h.tensor_bytes for h in headers)
    params = sum(h.n_params for h in headers)
    file_size = sum(h.file_size for h in headers)
    fmt = _format_name(kv, headers)
    notes.append(f"weights {weights:,} B in {sum(len(h.tensors) for h in headers)} tensors (exact, ggml type sizes)")
    name = kv.get("general.name") if isinstance(kv.get("general.name"), str) else None
    try:
        model = ModelSpec(
            name=(name or p.stem)[:200],
            family=str(kv.get("general.basename", "") or "")[:200],
            architecture=arch,
            layers=layers,
            hidden_size=_int(kv, f"{arch}.embedding_length", 0) or 0,
            n_heads=_head_count(kv, arch),
            vocab_size=_vocab(kv, arch),
            native_context=_int(kv, f"{arch}.context_length", 0) or 0,
            params_total=max(params, 1),
            params_active=_active_params(headers, kv, arch, params),
            n_experts=_int(kv, f"{arch}.expert_count") or None,
            n_experts_active=_int(kv, f"{arch}.expert_used_count") or None,
            dtype=fmt,
            weight_formats=[WeightFormat(name=fmt, bytes=weights, source=f"GGUF tensor infos of {p.name}")],
            source=f"GGUF header of {p.name}",
            notes="; ".join(notes),
        )
    except ValidationError as exc:
        raise InputError(f"{p.name}: {describe_validation_error(exc)}") from None
    origin = ModelOrigin(gguf_file=str(p), gguf_size=file_size)
    return ImportResult(model=model, origin=origin, notes=notes)
