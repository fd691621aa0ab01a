"""Every parser kvdesk points at outside input, as fuzz targets (see fuzzlib.Target).

A target's ``check`` calls the real parser; the only acceptable ways out are a result, a
``KvdeskError`` (or the parser's documented error, e.g. ``ProbeParseError``) — anything else escapes
and counts as a failure. Accepted results are checked too (a parsed plan must save and reload; a
computed breakdown must serialise to strict JSON).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import shutil
import struct
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from functools import cache
from io import StringIO
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from pydantic import ValidationError

from kvdesk.core.errors import KvdeskError
from tests.hardening.fuzzlib import (
    JSON_BOMBS,
    NASTY_FLOATS,
    NASTY_INTS,
    Target,
    json_values,
    mutated_bytes,
    mutated_doc,
    mutated_lines,
    mutated_text,
    numbers,
)

DATA = Path(__file__).resolve().parent.parent / "data"
_TMP = Path(tempfile.mkdtemp(prefix="kvdesk-fuzz-"))
atexit.register(shutil.rmtree, _TMP, True)


def _scratch(name: str, data: bytes) -> Path:
    path = _TMP / name
    path.write_bytes(data)
    return path


def _strict_json(value: Any) -> None:
    json.dumps(value, allow_nan=False)  # NaN/inf in a result is a bug: raises ValueError


# -- .kvplan ------------------------------------------------------------------------------------------
@cache
def _plan_seeds() -> tuple[list[dict], list[str]]:
    from kvdesk.core.defaults import default_plan
    from kvdesk.core.planfile import dumps_plan

    base = default_plan()
    plans = [
        base,
        base.with_engine(name="vllm", tp=2),
        base.with_engine(name="generic").with_workload(context=131072, batch=8, kv_dtype_k="q8_0"),
        base.with_engine(name="ollama"),
    ]
    texts = [dumps_plan(p) for p in plans]
    texts += [p.read_text(encoding="utf-8") for p in sorted((DATA / "plans").glob("*.kvplan"))]
    docs = [json.loads(t) for t in texts]
    return docs, texts


def _kvplan_strategy() -> st.SearchStrategy[str]:
    docs, texts = _plan_seeds()
    return st.one_of(
        mutated_doc(docs).map(lambda d: json.dumps(d)),
        mutated_text(texts),
        json_values.map(json.dumps),
        st.sampled_from(JSON_BOMBS),
    )


def check_kvplan(text: str) -> str:
    from kvdesk.core.planfile import load_plan, loads_plan, save_plan

    try:
        loaded = loads_plan(text)
    except KvdeskError:
        return "rejected"
    if loaded.breakdown is not None:
        _strict_json(loaded.breakdown.to_json())
    path = _TMP / "fuzz.kvplan"
    save_plan(path, loaded.plan)  # what opens must save and reopen
    again = load_plan(path, recompute_now=False)
    assert again.plan == loaded.plan
    return "accepted"


# -- numeric fields of a plan (pydantic validation, then every engine) --------------------------------
def _is_number(path: tuple, value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and path[0] != "format_version"


def _plan_fields_strategy() -> st.SearchStrategy[dict]:
    docs, _ = _plan_seeds()
    plans = [d["plan"] for d in docs]
    values = st.one_of(numbers, st.sampled_from([*NASTY_INTS, *NASTY_FLOATS]), st.none())
    return mutated_doc(plans, values, only=_is_number, max_mutations=6)


def check_plan_fields(doc: dict) -> str:
    from kvdesk.core.calculator import calculate, sweep
    from kvdesk.core.plan import ENGINE_NAMES, Plan

    try:
        plan = Plan.model_validate(doc)
    except ValidationError:
        return "rejected"
    for engine in ENGINE_NAMES:
        p = plan.with_engine(name=engine)
        try:
            breakdown = calculate(p)
        except KvdeskError:
            continue
        except ModuleNotFoundError as exc:  # an engine profile not written yet in this checkout
            if not (exc.name or "").startswith("kvdesk.core.engines."):
                raise
            continue
        _strict_json(breakdown.to_json())
        with contextlib.suppress(KvdeskError):
            sweep(p, [1, p.workload.context], [1, p.workload.batch])
    return "accepted"


# -- CLI flags ---------------------------------------------------------------------------------------
_FLAG_VALUES = st.one_of(
    st.sampled_from([*map(str, NASTY_INTS), *map(str, NASTY_FLOATS), "9" * 400, "9" * 400 + "k", "1e9999", "1.5M",
                     "32k", "0k", "-5", "", " ", "nan", "inf", "０", "٣"]),
    st.text(max_size=12),
    st.from_regex(r"\A[0-9]{1,400}(\.[0-9]{1,3})?[kKmM]?\Z"),
)
_FLAGS = ["--ctx", "--batch", "--vram-gib", "--gpus", "--kv-heads", "--tp", "--pp", "--ubatch",
          "--gpu-memory-utilization", "--kv-cache-memory", "--block-size", "--max-num-batched-tokens",
          "--weights-dtype", "--engine-version", "--kv-dtype", "--engine", "--flash-attn"]


@st.composite
def _cli_args(draw: st.DrawFn) -> list[str]:
    args = ["calc", "--model", "llama-3.1-8b", "--json"]
    for flag in draw(st.lists(st.sampled_from(_FLAGS), min_size=1, max_size=4, unique=True)):
        args += [flag, draw(_FLAG_VALUES)]
    return args


def check_cli(args: list[str]) -> str:
    from kvdesk.cli import main

    out, err = StringIO(), StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(args)
    except SystemExit as exc:  # argparse refusing a flag value: exit 2 with a usage line
        assert exc.code == 2, exc.code
        assert "error:" in err.getvalue()
        return "rejected"
    assert code in (0, 1, 2), code
    if code == 2:
        assert err.getvalue().startswith("kvdesk: error:"), err.getvalue()
        return "rejected"
    _strict_json(json.loads(out.getvalue()))
    return "accepted"


# -- Hugging Face config.json -------------------------------------------------------------------------
_CONFIG_SEEDS: list[dict] = [
    {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
     "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
     "max_position_embeddings": 131072, "torch_dtype": "bfloat16", "tie_word_embeddings": False},
    {"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "hidden_size": 2560, "head_dim": 256,
     "intermediate_size": 10240, "num_hidden_layers": 34, "num_attention_heads": 8, "num_key_value_heads": 4,
     "sliding_window": 1024, "sliding_window_pattern": 6, "vocab_size": 262208, "torch_dtype": "bfloat16",
     "layer_types": ["sliding_attention"] * 5 + ["full_attention"] + ["sliding_attention"] * 5 + ["full_attention"]},
    {"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "hidden_size": 7168,
     "num_hidden_layers": 61, "num_attention_heads": 128, "num_key_value_heads": 128, "kv_lora_rank": 512,
     "qk_rope_head_dim": 64, "qk_nope_head_dim": 128, "v_head_dim": 128, "q_lora_rank": 1536, "n_routed_experts": 256,
     "num_experts_per_tok": 8, "n_shared_experts": 1, "moe_intermediate_size": 2048, "intermediate_size": 18432,
     "first_k_dense_replace": 3, "vocab_size": 129280, "torch_dtype": "bfloat16"},
    {"architectures": ["MambaForCausalLM"], "model_type": "mamba", "hidden_size": 768, "num_hidden_layers": 24,
     "state_size": 16, "conv_kernel": 4, "expand": 2, "vocab_size": 50280},
    {"architectures": ["Qwen3NextForCausalLM"], "model_type": "qwen3_next", "hidden_size": 2048,
     "num_hidden_layers": 48, "num_attention_heads": 16, "num_key_value_heads": 2, "head_dim": 256,
     "full_attention_interval": 4, "linear_num_key_heads": 16, "linear_num_value_heads": 32,
     "linear_key_head_dim": 128, "linear_value_head_dim": 128, "linear_conv_kernel_dim": 4, "num_experts": 512,
     "num_experts_per_tok": 10, "moe_intermediate_size": 512, "vocab_size": 151936},
    {"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava",
     "text_config": {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32,
                     "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32064}},
]


@cache
def _config_seeds() -> list[dict]:
    seeds = list(_CONFIG_SEEDS)
    for path in sorted(DATA.glob("**/config*.json"))[:40]:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and ("num_hidden_layers" in doc or "text_config" in doc):
            seeds.append(doc)
    return seeds


def _hf_config_strategy() -> st.SearchStrategy[bytes]:
    seeds = _config_seeds()
    texts = [json.dumps(s).encode() for s in seeds]
    return st.one_of(
        mutated_doc(seeds).map(lambda d: json.dumps(d).encode()),
        mutated_bytes(texts),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.sampled_from(JSON_BOMBS).map(str.encode),
    )


def check_hf_config(data: bytes) -> str:
    from kvdesk.core.importers.hf_config import import_hf_config

    path = _scratch("config.json", data)
    try:
        result = import_hf_config(path)
    except KvdeskError:
        return "rejected"
    _strict_json(result.model.model_dump(mode="json"))
    return "accepted"


# -- safetensors headers ------------------------------------------------------------------------------
_ST_SEEDS: list[dict] = [
    {"__metadata__": {"format": "pt"},
     "model.embed_tokens.weight": {"dtype": "BF16", "shape": [8, 4], "data_offsets": [0, 64]},
     "model.layers.0.mlp.experts.0.down_proj.weight": {"dtype": "F8_E4M3", "shape": [4, 4], "data_offsets": [64, 80]},
     "model.layers.0.self_attn.q_proj.qweight": {"dtype": "I32", "shape": [2, 2], "data_offsets": [80, 96]}},
    {"lm_head.weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}},
]


def _safetensors_file(header: Any, pad: int = 96) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + b"\0" * pad


def _raw_safetensors(header_text: str) -> bytes:
    raw = header_text.encode()
    return struct.pack("<Q", len(raw)) + raw + b"\0" * 16


def _safetensors_strategy() -> st.SearchStrategy[bytes]:
    files = [_safetensors_file(h) for h in _ST_SEEDS]
    return st.one_of(
        mutated_doc(_ST_SEEDS).map(_safetensors_file),
        mutated_bytes(files),
        st.tuples(st.sampled_from(NASTY_INTS).filter(lambda n: 0 <= n < 2**64), st.binary(max_size=64)).map(
            lambda t: struct.pack("<Q", t[0]) + t[1]
        ),
        json_values.map(_safetensors_file),
        st.sampled_from(JSON_BOMBS).map(_raw_safetensors),
    )


def check_safetensors(data: bytes) -> str:
    from kvdesk.core.importers.safetensors import read_safetensors_weights

    path = _scratch("model.safetensors", data)
    try:
        weights = read_safetensors_weights(path)
    except KvdeskError:
        return "rejected"
    assert weights.total_bytes >= 0 and weights.n_params >= 0
    return "accepted"


# -- GGUF headers -------------------------------------------------------------------------------------
def _gguf_string(s: str) -> bytes:
    raw = s.encode()
    return struct.pack("<Q", len(raw)) + raw


def _gguf_value(value: Any) -> bytes:
    if isinstance(value, bool):
        return struct.pack("<I?", 7, value)
    if isinstance(value, int):
        return struct.pack("<Iq", 11, value) if value < 0 else struct.pack("<IQ", 10, value)
    if isinstance(value, float):
        return struct.pack("<Id", 12, value)
    if isinstance(value, str):
        return struct.pack("<I", 8) + _gguf_string(value)
    if all(isinstance(v, str) for v in value):
        return struct.pack("<IIQ", 9, 8, len(value)) + b"".join(_gguf_string(v) for v in value)
    return struct.pack("<IIQ", 9, 5, len(value)) + b"".join(struct.pack("<i", int(v)) for v in value)


def gguf_file(kv: dict[str, Any], tensors: list[tuple[str, tuple[int, ...], int]]) -> bytes:
    """A small but valid GGUF v3 file: key/values, F32/F16 tensor infos, aligned zero data."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for key, value in kv.items():
        out += _gguf_string(key) + _gguf_value(value)
    offset, infos = 0, b""
    for name, shape, type_id in tensors:
        infos += _gguf_string(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in shape)
        infos += struct.pack("<IQ", type_id, offset)
        n = 1
        for d in shape:
            n *= d
        offset += (n * (4 if type_id == 0 else 2) + 31) // 32 * 32
    out += infos
    out += b"\0" * ((-len(out)) % 32)
    return out + b"\0" * offset


def _gguf_seed_kvs() -> list[tuple[dict[str, Any], list]]:
    llama = {
        "general.architecture": "llama", "general.name": "tiny", "general.file_type": 1,
        "llama.block_count": 2, "llama.context_length": 4096, "llama.embedding_length": 64,
        "llama.attention.head_count": 4, "llama.attention.head_count_kv": 2, "llama.feed_forward_length": 128,
        "tokenizer.ggml.tokens": ["a", "b", "c"], "tokenizer.ggml.model": "gpt2",
    }
    gemma = {
        "general.architecture": "gemma3", "gemma3.block_count": 6, "gemma3.embedding_length": 64,
        "gemma3.attention.head_count": 4, "gemma3.attention.head_count_kv": [2, 2, 2, 2, 2, 1],
        "gemma3.attention.key_length": 32, "gemma3.attention.value_length": 32,
        "gemma3.attention.sliding_window": 512, "gemma3.context_length": 8192,
    }
    mla = {
        "general.architecture": "deepseek2", "deepseek2.block_count": 2, "deepseek2.embedding_length": 64,
        "deepseek2.attention.head_count": 4, "deepseek2.attention.head_count_kv": 4,
        "deepseek2.attention.kv_lora_rank": 16, "deepseek2.rope.dimension_count": 8,
        "deepseek2.attention.key_length": 24, "deepseek2.attention.value_length": 16,
        "deepseek2.expert_count": 4, "deepseek2.expert_used_count": 2,
    }
    mamba = {
        "general.architecture": "mamba", "mamba.block_count": 2, "mamba.embedding_length": 64,
        "mamba.ssm.conv_kernel": 4, "mamba.ssm.inner_size": 128, "mamba.ssm.state_size": 16,
        "mamba.ssm.time_step_rank": 4,
    }
    tensors = [("token_embd.weight", (64, 3), 0), ("blk.0.attn_q.weight", (64, 64), 1),
               ("blk.1.ffn_up_exps.weight", (64, 32, 4), 1)]
    return [(llama, tensors), (gemma, tensors[:2]), (mla, tensors), (mamba, tensors[:1])]


def _gguf_strategy() -> st.SearchStrategy[bytes]:
    seeds = _gguf_seed_kvs()
    files = [gguf_file(kv, t) for kv, t in seeds]
    gguf_values = st.one_of(
        st.integers(-(2**63), 2**64 - 1), st.booleans(), st.floats(), st.text(max_size=8),
        st.lists(st.integers(-(2**31), 2**31 - 1), max_size=8), st.lists(st.text(max_size=3), max_size=4),
    )
    kv_docs = [kv for kv, _ in seeds]
    structured = st.tuples(
        mutated_doc(kv_docs, gguf_values, only=lambda p, v: len(p) == 1), st.sampled_from([t for _, t in seeds])
    ).map(lambda t: gguf_file(*t))
    return st.one_of(structured, mutated_bytes(files, max_mutations=3))


def check_gguf(data: bytes) -> str:
    from kvdesk.core.importers.gguf import import_gguf

    path = _scratch("model.gguf", data)
    try:
        result = import_gguf(path)
    except KvdeskError:
        return "rejected"
    _strict_json(result.model.model_dump(mode="json"))
    return "accepted"


# -- GPU tool output ----------------------------------------------------------------------------------
@cache
def _probe_seeds() -> dict[str, list[str]]:
    folder = DATA / "probe"
    def read(pattern: str) -> list[str]:
        return [p.read_text(encoding="utf-8", errors="replace") for p in sorted(folder.glob(pattern))]
    return {
        "nvidia": read("nvidia_smi_*.csv") or ["index, name, memory.total [MiB]\n0, NVIDIA H100, 81559 MiB\n"],
        "rocm": read("rocm_smi_*.json") or ['{"card0": {"VRAM Total Memory (B)": "21458059264"}}'],
        "amd": read("amd_smi_*.json") or ["[]"],
        "mac": read("macos_*.txt") or ["Mach Virtual Memory Statistics: (page size of 16384 bytes)\n"],
    }


def _probe_strategy() -> st.SearchStrategy[tuple[str, str]]:
    seeds = _probe_seeds()
    json_seeds = {k: [json.loads(t) for t in seeds[k] if t.strip()] for k in ("rocm", "amd")}
    return st.one_of(
        *(st.tuples(st.just(kind), st.one_of(mutated_lines(texts), mutated_text(texts)))
          for kind, texts in seeds.items()),
        *(st.tuples(st.just(kind), mutated_doc(docs).map(json.dumps)) for kind, docs in json_seeds.items() if docs),
        st.tuples(st.sampled_from(["rocm", "amd"]), st.sampled_from(JSON_BOMBS)),
    )


def _as_tool_output(text: str) -> str:
    """What run_tool hands a parser: bytes decoded as UTF-8 with errors replaced (no lone surrogates)."""
    return text.encode("utf-8", "replace").decode("utf-8", "replace")


def check_probe(case: tuple[str, str]) -> str:
    from kvdesk.core.probe import parsers as p

    kind, text = case[0], _as_tool_output(case[1])
    try:
        if kind == "nvidia":
            devices = p.parse_nvidia_smi_gpus(text)
            p.attach_processes(devices, p.parse_nvidia_smi_apps(text))
        elif kind == "rocm":
            devices = p.parse_rocm_smi_json(text)
        elif kind == "amd":
            devices = p.parse_amd_smi_metric(text, p.parse_amd_smi_names(text))
        else:
            p.parse_vm_stat_used(text)
            devices = [p.parse_macos(text.split("\n", 1)[0], text[:8], text, text[:20])]
    except (p.ProbeParseError, KvdeskError):
        return "rejected"
    for device in devices:
        _strict_json(device.model_dump(mode="json"))
        device.to_gpu_spec()
    return "accepted"


# -- engine logs --------------------------------------------------------------------------------------
@cache
def _log_seeds() -> list[str]:
    entries = json.loads((DATA / "validation" / "engine_logs.json").read_text(encoding="utf-8"))
    texts = ["\n".join(e["observed"]["raw_log_lines"]) for e in entries if e.get("observed", {}).get("raw_log_lines")]
    texts += [p.read_text(encoding="utf-8", errors="replace") for p in sorted((DATA / "logs").glob("*"))[:20]
              if p.is_file() and p.stat().st_size < 1 << 20]
    return texts


def _log_strategy() -> st.SearchStrategy[str]:
    seeds = _log_seeds()
    return st.one_of(mutated_lines(seeds), mutated_text(seeds), st.text(max_size=200))


def check_log(text: str) -> str:
    from kvdesk.core.logparse import parse_log

    text = _as_tool_output(text)  # read_log_text and a Qt paste both give text without lone surrogates
    try:
        result = parse_log(text)
    except KvdeskError:
        return "rejected"
    dump = getattr(result, "model_dump", None)
    if callable(dump):
        _strict_json(dump(mode="json"))
    return "accepted"


TARGETS: dict[str, Target] = {
    t.name: t
    for t in [
        Target("kvplan", "kvdesk.core.planfile", _kvplan_strategy, check_kvplan, ".kvplan text → loads_plan"),
        Target("plan_fields", "kvdesk.core.plan", _plan_fields_strategy, check_plan_fields,
               "numeric plan fields → Plan validation → calculate/sweep on every engine"),
        Target("cli", "kvdesk.commands.calc", lambda: _cli_args(), check_cli, "kvdesk calc flag values"),
        Target("hf_config", "kvdesk.core.importers.hf_config", _hf_config_strategy, check_hf_config,
               "config.json → import_hf_config"),
        Target("safetensors", "kvdesk.core.importers.safetensors", _safetensors_strategy, check_safetensors,
               "safetensors header → read_safetensors_weights"),
        Target("gguf", "kvdesk.core.importers.gguf", _gguf_strategy, check_gguf, "GGUF header → import_gguf"),
        Target("gpu_tools", "kvdesk.core.probe.parsers", _probe_strategy, check_probe,
               "nvidia-smi / rocm-smi / amd-smi / macOS output → probe parsers"),
        Target("engine_log", "kvdesk.core.logparse", _log_strategy, check_log, "engine startup log → parse_log"),
    ]
}


def available(name: str) -> bool:
    try:
        importlib.import_module(TARGETS[name].module)
    except ImportError:
        return False
    return True

