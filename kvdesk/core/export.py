"""Turn a plan into launch commands (llama.cpp, vLLM, Ollama) or a report (Markdown, CSV).

``export_plan(plan, target)`` returns text; the CLI prints it and the app's Export menu saves it.
llama.cpp and vLLM exports are shell scripts: every value that comes from the plan (paths, repo
names) is quoted with ``shlex.quote``; the Ollama export is a Modelfile whose comments carry the
server's environment. Values with control characters are refused; names in comments are flattened. Each flag's name is
checked against the engine's own documentation, cited next to it:

- llama.cpp: ``tools/server/README.md`` (generated from ``common/arg.cpp``), ggml-org/llama.cpp
  @00dc8057: ``-m``, ``-hf``, ``-c``, ``-np``, ``-b``, ``-ub``, ``-ctk``/``-ctv`` (f32, f16, bf16,
  q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1), ``-fa on|off|auto``, ``-ngl``, ``--kv-unified`` /
  ``--no-kv-unified``, ``--swa-full``, ``-fitt`` (margin MiB per device for ``--fit``).
- vLLM: ``vllm/config/cache.py`` (vllm-project/vllm @002f10e0: ``CacheDType``, ``kv_cache_memory_bytes``
  "per GPU ... ignores gpu_memory_utilization") and ``vllm/engine/arg_utils.py`` ``EngineArgs``:
  ``--max-model-len``, ``--max-num-seqs``, ``--kv-cache-dtype``, ``--gpu-memory-utilization``,
  ``--tensor-parallel-size``, ``--pipeline-parallel-size``, ``--kv-cache-memory-bytes``,
  ``--block-size``, ``--max-num-batched-tokens``, ``--enforce-eager``.
- Ollama: ``docs/faq.mdx`` (ollama/ollama @3b857a50: ``OLLAMA_FLASH_ATTENTION=1``,
  ``OLLAMA_KV_CACHE_TYPE`` f16|q8_0|q4_0 "when Flash Attention is enabled", ``OLLAMA_NUM_PARALLEL``;
  "a 2K context with 4 parallel requests will result in an 8K context", so ``num_ctx`` is per
  request) and ``envconfig/config.go``; Modelfile ``FROM`` / ``PARAMETER num_ctx`` (docs/modelfile).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable

from kvdesk.core.breakdown import Breakdown
from kvdesk.core.dtypes import kv_type, normalize_dtype_name
from kvdesk.core.errors import InputError, KvdeskError
from kvdesk.core.plan import Plan
from kvdesk.core.report import verdict_line
from kvdesk.core.units import format_bytes

TARGETS: tuple[str, ...] = ("llama.cpp", "vllm", "ollama", "markdown", "csv")
_ALIASES = {"llamacpp": "llama.cpp", "llama-cpp": "llama.cpp", "llama-server": "llama.cpp", "md": "markdown"}
# File suffix the app's Export dialog proposes per target.
SUFFIXES = {"llama.cpp": ".sh", "vllm": ".sh", "ollama": ".Modelfile", "markdown": ".md", "csv": ".csv"}

_LLAMACPP_KV = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")
_VLLM_KV = {"fp8": "fp8", "fp8_e4m3": "fp8_e4m3", "fp8_e5m2": "fp8_e5m2", "f16": "float16", "bf16": "bfloat16"}
_OLLAMA_KV = ("f16", "q8_0", "q4_0")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ExportError(InputError):
    """The plan uses something the target engine cannot express (e.g. an fp8 KV cache on llama.cpp)."""


def normalize_target(target: str) -> str:
    key = target.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in TARGETS:
        raise ExportError(f"unknown export target '{target}' (choose from {', '.join(TARGETS)})", "to")
    return key


def export_plan(plan: Plan, target: str) -> str:
    """The text of ``target`` for ``plan``; raises ExportError when the engine cannot realise it."""
    key = normalize_target(target)
    if key in ("markdown", "csv"):
        from kvdesk.core.export_report import csv_report, markdown_report

        return (markdown_report if key == "markdown" else csv_report)(plan, _breakdown(plan))
    return _COMMANDS[key](plan)


def _breakdown(plan: Plan) -> Breakdown:
    from kvdesk.core.planfile import recompute

    return recompute(plan)


# -- shared pieces ----------------------------------------------------------------------------
def _safe(value: str, what: str) -> str:
    if _CONTROL.search(value):
        raise ExportError(f"{what} '{value!r}' holds control characters (a newline?) and cannot go in a command")
    return value


def _comment(text: str) -> str:
    """Text for a ``#`` comment line: control characters (a newline would end the comment) become spaces."""
    return _CONTROL.sub(" ", text)


def _header(plan: Plan, engine: str, label: str) -> list[str]:
    w, e = plan.workload, plan.engine
    lines = [
        f"# kvdesk plan for {label}: {_comment(plan.model.name)} on {plan.gpu_count}× {_comment(plan.gpu.name)}",
        f"# {w.batch} sequence(s) × {w.context:,} tokens, KV cache K {w.kv_dtype_k} / V {w.kv_dtype_v}",
    ]
    try:
        bd = _breakdown(plan)
    except (KvdeskError, ValueError) as exc:
        lines.append(_comment(f"# kvdesk could not compute this plan: {exc}"))
    else:
        lines.append(f"# kvdesk predicts {format_bytes(bd.total_bytes)} of {format_bytes(bd.budget_bytes)}: "
                     f"{verdict_line(bd)}")
    if e.name != engine:
        lines.append(f"# note: the numbers above use the '{e.name}' profile; recompute with --engine {engine} "
                     f"for {label}'s own rules")
    return lines


def _command(program: list[str], args: list[list[str]]) -> str:
    """``program`` then one flag (with its value) per line, each token shell-quoted."""
    lines = [" ".join(shlex.quote(t) for t in program)]
    lines += ["  " + " ".join(shlex.quote(t) for t in pair) for pair in args]
    return " \\\n".join(lines)


def _dtype(name: str) -> str:
    """kvdesk's canonical KV dtype name ('auto' stays 'auto')."""
    key = normalize_dtype_name(name)
    return "auto" if key == "auto" else kv_type(key).name


def _gguf_path(plan: Plan) -> str | None:
    name = plan.origin.gguf_file
    return _safe(name, "GGUF file name") if name else None


# -- llama.cpp --------------------------------------------------------------------------------
def _llamacpp_kv(name: str, which: str) -> str | None:
    key = _dtype(name)
    if key == "auto":
        return None  # llama.cpp's default (f16), which the plan was computed with
    if key not in _LLAMACPP_KV:
        raise ExportError(f"llama.cpp has no {key} {which} cache (it offers {', '.join(_LLAMACPP_KV)})", "kv_dtype")
    return key


def llamacpp_command(plan: Plan) -> str:
    w, e = plan.workload, plan.engine
    lines = _header(plan, "llama.cpp", "llama.cpp")
    args: list[list[str]] = []
    gguf = _gguf_path(plan)
    repo = plan.origin.hf_repo
    if gguf:
        args.append(["-m", gguf])
    elif repo and repo.lower().endswith("-gguf"):
        args.append(["-hf", _safe(repo, "Hugging Face repo")])
    else:
        lines.append("# replace MODEL.gguf with the path of the model's GGUF file")
        args.append(["-m", "MODEL.gguf"])
    # -c is the TOTAL context of all slots: each of the -np slots gets c / np tokens.
    args += [["-c", str(w.context * w.batch)], ["-np", str(w.batch)]]
    args += [["-b", str(e.batch_tokens)], ["-ub", str(e.ubatch)]]
    k, v = _llamacpp_kv(w.kv_dtype_k, "K"), _llamacpp_kv(w.kv_dtype_v, "V")
    if k:
        args.append(["-ctk", k])
    if v:
        args.append(["-ctv", v])
    v_quantized = v is not None and kv_type(v).quantized
    if e.flash_attn is False and v_quantized:
        raise ExportError("a quantized V cache needs flash attention in llama.cpp; turn flash attention on",
                          "flash_attn")
    if e.flash_attn is not None or v_quantized:
        args.append(["-fa", "on" if (e.flash_attn or v_quantized) else "off"])
    args.append(["-ngl", "999"])  # every layer on the GPU(s): the plan puts all weights in VRAM
    if e.kv_unified is not None:
        args.append(["--kv-unified" if e.kv_unified else "--no-kv-unified"])
    if e.swa_full:
        args.append(["--swa-full"])
    if e.fit_margin_bytes is not None:
        args.append(["-fitt", str(e.fit_margin_bytes >> 20)])
    if plan.gpu_count > 1:
        lines.append(f"# uses all {plan.gpu_count} visible GPUs (split mode 'layer', llama.cpp's default)")
    return "\n".join([*lines, _command(["llama-server"], args)]) + "\n"


# -- vLLM -------------------------------------------------------------------------------------
def _vllm_kv(plan: Plan) -> str:
    w = plan.workload
    k, v = _dtype(w.kv_dtype_k), _dtype(w.kv_dtype_v)
    if k != v:
        raise ExportError(f"vLLM has one KV cache dtype for K and V (the plan has K {k}, V {v})", "kv_dtype")
    if k == "auto" or k == _dtype(plan.model.dtype):
        return "auto"  # the model's own dtype
    if k not in _VLLM_KV:
        offered = ", ".join(["auto", *sorted(set(_VLLM_KV.values()))])
        raise ExportError(f"vLLM has no {k} KV cache (it offers {offered}); try fp8", "kv_dtype")
    return _VLLM_KV[k]


def _vllm_model(plan: Plan) -> tuple[str, str | None]:
    o = plan.origin
    if o.hf_repo:
        return _safe(o.hf_repo, "Hugging Face repo"), None
    if o.config_path:
        path = o.config_path
        folder = path.rsplit("/", 1)[0] if path.endswith("config.json") and "/" in path else path
        return _safe(folder or ".", "model folder"), None
    return "MODEL", "# replace MODEL with the Hugging Face repo or local folder of the model"


def vllm_command(plan: Plan) -> str:
    w, e = plan.workload, plan.engine
    lines = _header(plan, "vllm", "vLLM")
    model, hint = _vllm_model(plan)
    if hint:
        lines.append(hint)
    args = [
        ["--max-model-len", str(w.context)],
        ["--max-num-seqs", str(w.batch)],
        ["--kv-cache-dtype", _vllm_kv(plan)],
        ["--gpu-memory-utilization", repr(e.gpu_memory_utilization)],
        ["--tensor-parallel-size", str(e.tp)],
        ["--pipeline-parallel-size", str(e.pp)],
    ]
    if e.kv_cache_memory is not None:
        lines.append("# --kv-cache-memory-bytes is per GPU and makes vLLM ignore --gpu-memory-utilization")
        args.append(["--kv-cache-memory-bytes", str(e.kv_cache_memory)])
    if e.block_size != 16:  # vLLM CacheConfig.DEFAULT_BLOCK_SIZE = 16; other sizes are backend-specific
        args.append(["--block-size", str(e.block_size)])
    if e.max_num_batched_tokens is not None:
        args.append(["--max-num-batched-tokens", str(e.max_num_batched_tokens)])
    if e.enforce_eager:
        args.append(["--enforce-eager"])
    if e.tp * e.pp != plan.gpu_count:
        lines.append(f"# note: tensor × pipeline parallel = {e.tp * e.pp} GPU(s), but the plan has {plan.gpu_count}")
    return "\n".join([*lines, _command(["vllm", "serve", model], args)]) + "\n"


# -- Ollama -----------------------------------------------------------------------------------
def _ollama_kv(plan: Plan) -> str | None:
    w = plan.workload
    k, v = _dtype(w.kv_dtype_k), _dtype(w.kv_dtype_v)
    if k != v:
        raise ExportError(f"Ollama's OLLAMA_KV_CACHE_TYPE sets K and V together (the plan has K {k}, V {v})",
                          "kv_dtype")
    if k == "auto":
        return None
    if k not in _OLLAMA_KV:
        raise ExportError(f"Ollama has no {k} KV cache (it offers {', '.join(_OLLAMA_KV)})", "kv_dtype")
    return k


def _modelfile_value(value: str) -> str:
    """Quote like Ollama's parser/parser.go ``quote``: only values with edge spaces need it."""
    if value != value.strip():
        return f'"""{value}"""' if '"' in value else f'"{value}"'
    return value


def _ollama_name(plan: Plan) -> str:
    slug = re.sub(r"[^a-z0-9._-]+", "-", plan.model.name.lower()).strip("-._") or "model"
    ctx = plan.workload.context
    return f"{slug[:60]}-{ctx // 1024}k" if ctx % 1024 == 0 else f"{slug[:60]}-{ctx}"


def ollama_modelfile(plan: Plan) -> str:
    """A Modelfile (``#`` lines are comments to Ollama's parser) whose comments give the server settings."""
    w, e = plan.workload, plan.engine
    lines = _header(plan, "ollama", "Ollama")
    env: list[str] = []
    kv = _ollama_kv(plan)
    quantized = kv is not None and kv != "f16"
    if e.flash_attn is False and quantized:
        raise ExportError("Ollama quantizes the KV cache only with flash attention; set flash attention on",
                          "flash_attn")
    if e.flash_attn is not None or quantized:
        env.append(f"OLLAMA_FLASH_ATTENTION={1 if (e.flash_attn or quantized) else 0}")
    if kv:
        env.append(f"OLLAMA_KV_CACHE_TYPE={kv}")
    env.append(f"OLLAMA_NUM_PARALLEL={w.batch}")
    source = _gguf_path(plan)
    if source is None:
        lines.append("# replace MODEL.gguf with the model's GGUF file (or an Ollama model name)")
        source = "MODEL.gguf"
    elif "/" not in source:
        source = "./" + source
    lines += [
        "# 1. start the server with these settings (they apply to every model it runs):",
        "#    " + " ".join(env) + " ollama serve",
        "# 2. create the model from this file; num_ctx is per request (Ollama multiplies it by NUM_PARALLEL):",
        f"#    ollama create {shlex.quote(_ollama_name(plan))} -f Modelfile",
        f"FROM {_modelfile_value(source)}",
        f"PARAMETER num_ctx {w.context}",
    ]
    return "\n".join(lines) + "\n"


_COMMANDS: dict[str, Callable[[Plan], str]] = {
    "llama.cpp": llamacpp_command,
    "vllm": vllm_command,
    "ollama": ollama_modelfile,
}
