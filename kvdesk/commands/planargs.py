"""The flags shared by ``kvdesk calc`` and friends, and turning them into a Plan."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kvdesk.core.catalog import find_gpu, find_model, origin_for
from kvdesk.core.dtypes import KV_DTYPE_CHOICES
from kvdesk.core.errors import InputError
from kvdesk.core.gpu import GpuSpec, custom_gpu
from kvdesk.core.model import ModelSpec
from kvdesk.core.plan import ENGINE_NAMES, EngineSettings, ModelOrigin, Plan, Workload
from kvdesk.core.units import parse_tokens


def _on_off(text: str) -> bool:
    value = text.strip().lower()
    if value in ("on", "1", "true", "yes", "enabled"):
        return True
    if value in ("off", "0", "false", "no", "disabled"):
        return False
    raise argparse.ArgumentTypeError(f"expected on or off, got '{text}'")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got '{text}'")
    return value


def add_gpu_arguments(parser: argparse.ArgumentParser) -> None:
    gpu = parser.add_mutually_exclusive_group()
    gpu.add_argument("--gpu", help="GPU id or name from `kvdesk list gpus`")
    gpu.add_argument("--vram-gib", type=_positive_float, help="a GPU given only by its memory in GiB")
    parser.add_argument("--gpus", type=int, help="number of GPUs (default 1)")


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="model id or name from `kvdesk list models`")
    src.add_argument("--hf-config", metavar="PATH", help="a Hugging Face config.json or a folder holding one")
    src.add_argument("--gguf", metavar="PATH", help="a GGUF model file (only its header is read)")
    src.add_argument("--plan", metavar="FILE", help="a .kvplan file; other flags override its settings")
    add_gpu_arguments(parser)
    parser.add_argument("--ctx", help="context of ONE sequence in tokens (8192, 32k, 1M)")
    parser.add_argument("--batch", type=int, help="sequences served at once")
    parser.add_argument("--kv-dtype", choices=KV_DTYPE_CHOICES, help="KV cache dtype for K and V")
    parser.add_argument("--kv-dtype-k", choices=KV_DTYPE_CHOICES, help="K cache dtype")
    parser.add_argument("--kv-dtype-v", choices=KV_DTYPE_CHOICES, help="V cache dtype")
    parser.add_argument("--kv-heads", type=int, help="override the model's KV heads per layer")
    parser.add_argument("--weights-dtype", help="weights format: bf16, fp8, Q4_K_M, awq-int4 … (default: native)")
    parser.add_argument("--engine", choices=ENGINE_NAMES, help="engine profile (default generic)")
    parser.add_argument("--engine-version", help="engine build/version, e.g. b6209 or 0.19.0")
    parser.add_argument("--flash-attn", type=_on_off, metavar="on|off", help="llama.cpp flash attention")
    parser.add_argument("--ubatch", type=int, help="llama.cpp -ub (physical batch)")
    parser.add_argument("--kv-unified", type=_on_off, metavar="on|off", help="llama.cpp --kv-unified")
    parser.add_argument("--swa-full", action="store_true", default=None, help="llama.cpp --swa-full")
    parser.add_argument(
        "--rs-seq",
        type=int,
        metavar="N",
        help="llama.cpp n_rs_seq: recurrent-state rollback copies per sequence (= --spec-draft-n-max "
        "with --spec-type draft-mtp/eagle3/dflash; default 0)",
    )
    parser.add_argument("--tp", type=int, help="tensor parallel size")
    parser.add_argument("--pp", type=int, help="pipeline parallel size")
    parser.add_argument("--gpu-memory-utilization", type=_positive_float, help="vLLM fraction of total memory")
    parser.add_argument("--kv-cache-memory", type=int, metavar="BYTES", help="vLLM KV cache bytes per GPU")
    parser.add_argument("--block-size", type=int, help="vLLM KV block size in tokens (default 16)")
    parser.add_argument("--max-num-batched-tokens", type=int, help="vLLM scheduler token budget")


def _model_from_args(args: argparse.Namespace) -> tuple[ModelSpec, ModelOrigin]:
    if args.model:
        entry = find_model(args.model)
        return entry.to_spec(), origin_for(entry)
    if args.hf_config:
        from kvdesk.core.importers.hf_config import import_hf_config

        result = import_hf_config(Path(args.hf_config))
        return result.model, result.origin
    from kvdesk.core.importers.gguf import import_gguf

    result = import_gguf(Path(args.gguf))
    return result.model, result.origin


def gpu_from_args(args: argparse.Namespace) -> tuple[GpuSpec | None, str | None]:
    if getattr(args, "vram_gib", None):
        return custom_gpu(args.vram_gib), None
    if getattr(args, "gpu", None):
        entry = find_gpu(args.gpu)
        return entry.to_spec(), entry.id
    return None, None


def _set(target: dict[str, object], key: str, value: object) -> None:
    if value is not None:
        target[key] = value


def plan_from_args(args: argparse.Namespace) -> Plan:
    """Build the Plan the flags describe (a --plan file is the base; flags override it)."""
    if getattr(args, "plan", None):
        from kvdesk.core.planfile import load_plan

        loaded = load_plan(Path(args.plan))
        for message in loaded.messages:
            print(f"kvdesk: {message}", file=sys.stderr)
        base = loaded.plan
    else:
        model, origin = _model_from_args(args)
        gpu, gpu_id = gpu_from_args(args)
        base = Plan(model=model, origin=origin, gpu=gpu or find_gpu("rtx-4090").to_spec(),
                    gpu_preset_id=gpu_id if gpu else "rtx-4090")
    return apply_overrides(base, args)


def apply_overrides(base: Plan, args: argparse.Namespace) -> Plan:
    gpu, gpu_id = gpu_from_args(args)
    work = base.workload.model_dump()
    if args.ctx is not None:
        work["context"] = parse_tokens(args.ctx, "ctx")
    _set(work, "batch", args.batch)
    if args.kv_dtype:
        work["kv_dtype_k"] = work["kv_dtype_v"] = args.kv_dtype
    _set(work, "kv_dtype_k", args.kv_dtype_k)
    _set(work, "kv_dtype_v", args.kv_dtype_v)
    _set(work, "kv_heads_override", args.kv_heads)
    _set(work, "weights_format", args.weights_dtype)
    eng = base.engine.model_dump()
    for key, value in (
        ("name", args.engine), ("version", args.engine_version), ("flash_attn", args.flash_attn),
        ("ubatch", args.ubatch), ("kv_unified", args.kv_unified), ("swa_full", args.swa_full),
        ("rs_seq", getattr(args, "rs_seq", None)),
        ("tp", args.tp), ("pp", args.pp), ("gpu_memory_utilization", args.gpu_memory_utilization),
        ("kv_cache_memory", args.kv_cache_memory), ("block_size", args.block_size),
        ("max_num_batched_tokens", args.max_num_batched_tokens),
    ):
        _set(eng, key, value)
    update: dict[str, object] = {
        "workload": Workload.model_validate(work),
        "engine": EngineSettings.model_validate(eng),
    }
    if gpu is not None:
        update["gpu"], update["gpu_preset_id"] = gpu, gpu_id
    if getattr(args, "gpus", None) is not None:
        update["gpu_count"] = args.gpus
    dumped = {k: (v.model_dump() if hasattr(v, "model_dump") else v) for k, v in update.items()}
    plan = Plan.model_validate({**base.model_dump(), **dumped})
    model = plan.model
    if plan.workload.weights_format:
        model.weight_format(plan.workload.weights_format)  # raises a clear InputError if unknown
    if plan.workload.context > (1 << 26):
        raise InputError("ctx: larger than 64M tokens", field="ctx")
    return plan
