"""HF ``config.json`` (file or snapshot folder) → ModelSpec.

Multimodal configs keep the language model under ``text_config`` (Gemma 3, Llama 4, Mistral 3 …):
its fields win, the top level supplies what it lacks (dtype, quantization_config). Defaults that a
config may leave out come from the transformers configuration class of its ``model_type``.
When the folder holds safetensors (``model.safetensors.index.json`` or ``*.safetensors``), their
headers give the exact weight bytes and parameter count; otherwise both are computed from the
architecture (see ``hf_params``) and marked as computed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kvdesk.core.errors import InputError, describe_validation_error
from kvdesk.core.importers import ImportResult
from kvdesk.core.importers.hf_layers import build_layers, cfg_int
from kvdesk.core.importers.hf_params import count_params, n_experts, n_experts_active
from kvdesk.core.importers.safetensors import SafetensorsWeights, read_safetensors_weights
from kvdesk.core.model import ModelSpec, WeightFormat
from kvdesk.core.plan import ModelOrigin

MAX_CONFIG = 4 << 20
# transformers Gemma3TextConfig defaults (gemma-3-4b/12b text_config omit some of them)
MODEL_TYPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "gemma3_text": {
        "vocab_size": 262208,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "head_dim": 256,
        "max_position_embeddings": 131072,
        "sliding_window": 4096,
        "sliding_window_pattern": 6,
        "tie_word_embeddings": True,
    },
}
_DTYPES = {"bfloat16": "bf16", "float16": "f16", "float32": "f32", "half": "f16", "float": "f32"}


def _load(path: Path) -> tuple[dict[str, Any], Path]:
    cfg_path = path / "config.json" if path.is_dir() else path
    if not cfg_path.is_file():
        raise InputError(f"{path}: no config.json here")
    if cfg_path.stat().st_size > MAX_CONFIG:
        raise InputError(f"{cfg_path.name}: {cfg_path.stat().st_size:,} bytes is too large for a config.json")
    try:
        doc = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:  # bad UTF-8/JSON, a 5000-digit number, a nesting bomb
        raise InputError(f"{cfg_path.name}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{cfg_path.name}: not a model config (top level is not an object)")
    return doc, cfg_path


def flatten(doc: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """The language-model fields: ``text_config`` over the top level, then model-type defaults."""
    cfg = {k: v for k, v in doc.items() if k not in ("text_config", "vision_config", "audio_config")}
    text = doc.get("text_config")
    if isinstance(text, dict):
        cfg.update(text)
        notes.append("read the language model from text_config")
    defaults = MODEL_TYPE_DEFAULTS.get(str(cfg.get("model_type", "")), {})
    used = [k for k in defaults if cfg.get(k) is None]
    for k in used:
        cfg[k] = defaults[k]
    if used:
        notes.append(f"assumed transformers defaults for {cfg.get('model_type')}: {', '.join(used)}")
    return cfg


def _compressed_tensors_name(q: dict[str, Any]) -> str | None:
    """llm-compressor's ``config_groups``: weights ``{"num_bits": 8, "type": "float"}`` is fp8 (FP8-dynamic),
    8-bit ``int`` is int8 (w8a8), 4-bit ``int`` is group int4 (w4a16, sized like GPTQ); nvfp4 by format."""
    if "fp4" in str(q.get("format", "")).lower():
        return "nvfp4"
    groups = q.get("config_groups")
    for group in groups.values() if isinstance(groups, dict) else []:
        w = group.get("weights") if isinstance(group, dict) else None
        if isinstance(w, dict) and w.get("num_bits") in (4, 8):
            kind = str(w.get("type", "int")).lower()
            if w["num_bits"] == 8:
                return "fp8" if kind == "float" else "int8"
            return "nvfp4" if kind == "float" else "gptq-int4"
    return "fp8" if "fp8" in json.dumps(q).lower() else None


def _quant_name(q: dict[str, Any]) -> str | None:
    method = str(q.get("quant_method", "")).lower()
    bits = q.get("bits") or q.get("w_bit")
    if method in ("awq", "gptq") and bits:
        return f"{method}-int{bits}"
    if method == "compressed-tensors":
        return _compressed_tensors_name(q) or method
    if method == "fp8":
        return "fp8"
    if method == "mxfp4":
        return "MXFP4"
    if method == "bitsandbytes":
        return "nf4" if q.get("load_in_4bit") else "int8"
    return method or None


def _formats(
    cfg: dict[str, Any], params: int, weights: SafetensorsWeights | None, notes: list[str]
) -> tuple[str, list[WeightFormat]]:
    raw = str(cfg.get("torch_dtype") or cfg.get("dtype") or "bfloat16").lower().removeprefix("torch.")
    native = _DTYPES.get(raw, raw)
    q = cfg.get("quantization_config")
    quant = _quant_name(q) if isinstance(q, dict) else None
    name = quant or native
    if quant:
        notes.append(f"quantization_config: {q.get('quant_method') if isinstance(q, dict) else q} → weights '{quant}'")
    if weights is not None:
        src = f"safetensors headers of {len(weights.files)} file(s), exact"
        return name, [WeightFormat(name=name, bytes=weights.total_bytes, source=src)]
    if name in ("bf16", "f16"):
        return name, [WeightFormat(name=name, bytes=params * 2, source="computed: params × 2 (no safetensors read)")]
    if quant in QUANT_BITS:
        # Quantized checkpoints quantize the Linear layers only: the token embedding and (llm-compressor
        # "ignore": ["lm_head"]; GPTQ/AWQ alike) lm_head stay 16-bit. vLLM loads them so: Llama 3.1 8B
        # FP8 / w8a8 "Model loading took 8.49 GiB" against 7.48 GiB for every parameter at 1 byte
        # (llm-d-planner accuracy/results/v0.19.0/logs, w8a8-redhatai-llam…-dtf16.log, …-qfp8.log).
        embed = _embedding_params(cfg)
        size = int((params - embed) * QUANT_BITS[quant] / 8) + 2 * embed
        src = (
            f"computed: {params - embed:,} linear params at {QUANT_BITS[quant]:g} bits + {embed:,} embedding params × 2"
        )
        return name, [WeightFormat(name=name, bytes=size, source=src)]
    return name, []


# bits per quantized Linear weight. 8-bit checkpoints: per-channel/tensor scales are negligible. GPTQ/AWQ
# int4 (group 128): 4 bits + a 16-bit scale and a 4-bit zero point per group ≈ 4.25 bits, and they keep
# their 16-bit embeddings too: Llama 3.1 8B w4a16 "Model loading took 5.38 GiB" (llm-d-planner
# w4a16-redhatai-lla--h100-80gb--tp1pp1dp1--8192-dtf16.log), 5.41 GiB this way, 3.97 at 4.25 bits for all.
QUANT_BITS = {"fp8": 8.0, "int8": 8.0, "gptq-int4": 4.25, "awq-int4": 4.25}


def _embedding_params(cfg: dict[str, Any]) -> int:
    vocab = cfg_int(cfg, "vocab_size", default=0) or 0
    hidden = cfg_int(cfg, "hidden_size", "n_embd", "d_model", default=0) or 0
    return vocab * hidden * (1 if cfg.get("tie_word_embeddings") else 2)


def _safetensors(folder: Path, notes: list[str]) -> SafetensorsWeights | None:
    if not (folder / "model.safetensors.index.json").is_file() and not any(folder.glob("*.safetensors")):
        return None
    weights = read_safetensors_weights(folder)
    notes.append(
        f"weights from safetensors headers: {weights.total_bytes:,} B, {weights.n_params:,} elements "
        f"({', '.join(f'{k} {v:,} B' for k, v in sorted(weights.bytes_by_dtype.items()))})"
    )
    notes.extend(weights.notes)
    return weights


def _params(cfg: dict[str, Any], layers: list, weights: SafetensorsWeights | None, notes: list[str]) -> tuple[int, int]:
    total, active = count_params(cfg, layers)
    if weights is None or weights.notes:  # packed quant formats: shapes undercount
        notes.append(f"parameters computed from the architecture: {total:,} total, {active:,} active")
        return total, active
    exact = weights.n_params
    if weights.expert_params and n_experts(cfg) > 1:
        active = exact - weights.expert_params + weights.expert_params * n_experts_active(cfg) // n_experts(cfg)
    else:
        active = exact if total == active else max(1, exact - (total - active))
    return exact, min(active, exact)


def _repo_from_cache_path(cfg_path: Path) -> str | None:
    """``…/models--org--name/snapshots/<hash>/config.json`` (the HF hub cache) → ``org/name``."""
    parts = cfg_path.resolve().parts
    if len(parts) >= 4 and parts[-3] == "snapshots" and parts[-4].startswith("models--"):
        return parts[-4].removeprefix("models--").replace("--", "/", 1)
    return None


def import_hf_config(path: Path | str) -> ImportResult:
    """Import a HF config.json file, or a snapshot folder holding one (and maybe safetensors)."""
    p = Path(path)
    notes: list[str] = []
    doc, cfg_path = _load(p)
    cfg = flatten(doc, notes)
    if not isinstance(cfg.get("model_type", ""), str):
        raise InputError(f"{cfg_path.name}: model_type must be text, not {type(cfg['model_type']).__name__}")
    notes.append(f"architecture from {cfg_path}")
    try:
        layers = build_layers(cfg, notes)
    except ValidationError as exc:
        raise InputError(f"{cfg_path.name}: impossible attention layout ({describe_validation_error(exc)})") from None
    weights = _safetensors(cfg_path.parent, notes)
    total, active = _params(cfg, layers, weights, notes)
    try:
        dtype, formats = _formats(cfg, total, weights, notes)
    except ValidationError as exc:  # e.g. a vocab_size of 2**64 makes the weights too large for any model
        raise InputError(f"{cfg_path.name}: {describe_validation_error(exc)}") from None
    if not cfg.get("num_key_value_heads") and not cfg.get("kv_lora_rank") and cfg.get("num_attention_heads"):
        notes.append("no num_key_value_heads: multi-head attention assumed (KV heads = attention heads)")
    arch = (doc.get("architectures") or [""])[0] if isinstance(doc.get("architectures"), list) else ""
    repo = str(doc["_name_or_path"]) if isinstance(doc.get("_name_or_path"), str) and doc["_name_or_path"] else None
    repo = repo or _repo_from_cache_path(cfg_path)
    name = repo or (cfg_path.parent.name if cfg_path.name == "config.json" else cfg_path.stem) or "imported model"
    try:
        model = ModelSpec(
            name=name[:200] or "imported model",
            family=str(cfg.get("model_type", ""))[:200],
            architecture=str(arch)[:200],
            layers=layers,
            hidden_size=cfg_int(cfg, "hidden_size", "n_embd", "d_model", default=0) or 0,
            n_heads=cfg_int(cfg, "num_attention_heads", "n_head", default=0) or 0,
            vocab_size=cfg_int(cfg, "vocab_size", default=0) or 0,
            native_context=cfg_int(cfg, "max_position_embeddings", "n_positions", "max_seq_len", default=0) or 0,
            params_total=max(total, 1),
            params_active=active if active < total else None,
            n_experts=n_experts(cfg) or None,
            n_experts_active=n_experts_active(cfg) or None,
            dtype=dtype,
            weight_formats=formats,
            source=f"config.json at {cfg_path}",
            notes="; ".join(notes),
        )
    except ValidationError as exc:
        raise InputError(f"{cfg_path.name}: {describe_validation_error(exc)}") from None
    origin = ModelOrigin(config_path=str(cfg_path), hf_repo=repo)
    return ImportResult(model=model, origin=origin, notes=notes)
