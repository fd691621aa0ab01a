"""Exports: snapshot per engine/report (exact text), flag names from the engines' docs, shell safety.

Snapshots live in tests/data/export_snapshots/. After an intended change, regenerate them with
``KVDESK_UPDATE_SNAPSHOTS=1 pytest tests/core/test_export.py`` and review the diff.
"""

from __future__ import annotations

import csv
import io
import os
import shlex
from pathlib import Path

import pytest

from kvdesk.core.calculator import calculate
from kvdesk.core.export import SUFFIXES, TARGETS, ExportError, export_plan, normalize_target
from kvdesk.core.plan import EngineSettings, ModelOrigin, Plan
from tests.core.test_planfile import hybrid_plan, llama_plan

SNAPSHOTS = Path(__file__).parents[1] / "data" / "export_snapshots"

# Documented option names (see the citations in kvdesk/core/export.py).
LLAMACPP_FLAGS = {"-m", "-hf", "-c", "-np", "-b", "-ub", "-ctk", "-ctv", "-fa", "-ngl", "--kv-unified",
                  "--no-kv-unified", "--swa-full", "-fitt"}
VLLM_FLAGS = {"--max-model-len", "--max-num-seqs", "--kv-cache-dtype", "--gpu-memory-utilization",
              "--tensor-parallel-size", "--pipeline-parallel-size", "--kv-cache-memory-bytes", "--block-size",
              "--max-num-batched-tokens", "--enforce-eager"}
OLLAMA_ENV = {"OLLAMA_FLASH_ATTENTION", "OLLAMA_KV_CACHE_TYPE", "OLLAMA_NUM_PARALLEL"}


def vllm_plan() -> Plan:
    plan = llama_plan(context=32768, batch=64, kv_dtype_k="fp8", kv_dtype_v="fp8")
    return plan.model_copy(update={
        "gpu_count": 2,
        "engine": EngineSettings(tp=2, gpu_memory_utilization=0.92, kv_cache_memory=20 << 30,
                                 max_num_batched_tokens=8192, enforce_eager=True, block_size=32),
    })


def tricky_path_plan() -> Plan:
    origin = ModelOrigin(gguf_file="/models/Tom's \"best\" $(rm -rf ~)/m q4.gguf")
    return llama_plan(kv_dtype_k="q4_0", kv_dtype_v="q4_0").model_copy(update={"origin": origin})


def hybrid_llamacpp_plan() -> Plan:
    plan = hybrid_plan()
    return plan.with_engine(kv_unified=True, swa_full=True, fit_margin_bytes=1 << 30, ubatch=1024)


CASES = {
    "llama_q8": (llama_plan(kv_dtype_k="q8_0", kv_dtype_v="q8_0"), ["llama.cpp", "ollama", "markdown", "csv"]),
    "vllm_tp2": (vllm_plan(), ["vllm", "markdown", "csv"]),
    "hybrid": (hybrid_llamacpp_plan(), ["llama.cpp", "markdown", "csv"]),
    "tricky_path": (tricky_path_plan(), ["llama.cpp", "ollama"]),
    "hf_repo": (llama_plan().model_copy(update={"origin": ModelOrigin(hf_repo="meta-llama/Llama-3.1-8B")}),
                ["vllm", "llama.cpp"]),
}
SNAPSHOT_CASES = [(name, target) for name, (_, targets) in CASES.items() for target in targets]


def _snapshot_path(name: str, target: str) -> Path:
    return SNAPSHOTS / f"{name}.{target.replace('.', '')}{SUFFIXES[target]}"


@pytest.mark.parametrize(("name", "target"), SNAPSHOT_CASES, ids=[f"{n}-{t}" for n, t in SNAPSHOT_CASES])
def test_export_snapshot(name: str, target: str) -> None:
    text = export_plan(CASES[name][0], target)
    path = _snapshot_path(name, target)
    if os.environ.get("KVDESK_UPDATE_SNAPSHOTS"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_no_orphan_snapshots() -> None:
    expected = {_snapshot_path(n, t).name for n, t in SNAPSHOT_CASES}
    assert {p.name for p in SNAPSHOTS.iterdir()} == expected


def _argv(script: str) -> list[str]:
    """The command of an exported script: comment lines dropped, continuations joined, shell-split."""
    body = "\n".join(line for line in script.splitlines() if not line.startswith("#"))
    return shlex.split(body.replace("\\\n", " "))


def _flags(argv: list[str]) -> set[str]:
    return {a for a in argv if a.startswith("-")}


@pytest.mark.parametrize("name", [n for n, (_, t) in CASES.items() if "llama.cpp" in t])
def test_llamacpp_command_means_the_plan(name: str) -> None:
    plan = CASES[name][0]
    argv = _argv(export_plan(plan, "llama.cpp"))
    assert argv[0] == "llama-server"
    assert _flags(argv) <= LLAMACPP_FLAGS
    opts = dict(zip(argv[1::2], argv[2::2], strict=False))
    w = plan.workload
    assert int(argv[argv.index("-c") + 1]) == w.context * w.batch  # -c is the total over -np slots
    assert int(argv[argv.index("-np") + 1]) == w.batch
    assert argv[argv.index("-ub") + 1] == str(plan.engine.ubatch)
    if w.kv_dtype_k != "auto":
        assert opts["-ctk"] == w.kv_dtype_k and opts["-ctv"] == w.kv_dtype_v
    if plan.origin.gguf_file:
        assert argv[argv.index("-m") + 1] == plan.origin.gguf_file  # quoted, arrives as one argument


def test_vllm_command_means_the_plan() -> None:
    plan = vllm_plan()
    argv = _argv(export_plan(plan, "vllm"))
    assert argv[:2] == ["vllm", "serve"]
    assert _flags(argv) <= VLLM_FLAGS
    opt = {argv[i]: argv[i + 1] for i in range(3, len(argv) - 1) if argv[i].startswith("--")}
    assert opt["--max-model-len"] == "32768" and opt["--max-num-seqs"] == "64"
    assert opt["--kv-cache-dtype"] == "fp8" and opt["--tensor-parallel-size"] == "2"
    assert opt["--gpu-memory-utilization"] == "0.92"
    assert opt["--kv-cache-memory-bytes"] == str(20 << 30)
    assert "--enforce-eager" in argv


def test_vllm_auto_dtype_for_the_models_own_dtype() -> None:
    for dtype in ("auto", "bf16", "bfloat16"):
        plan = llama_plan(kv_dtype_k=dtype, kv_dtype_v=dtype)
        argv = _argv(export_plan(plan, "vllm"))
        assert argv[argv.index("--kv-cache-dtype") + 1] == "auto"
    argv = _argv(export_plan(llama_plan(kv_dtype_k="f16", kv_dtype_v="f16"), "vllm"))
    assert argv[argv.index("--kv-cache-dtype") + 1] == "float16"


def test_ollama_modelfile_sets_documented_variables() -> None:
    plan = llama_plan(kv_dtype_k="q8_0", kv_dtype_v="q8_0", batch=3, context=12000)
    text = export_plan(plan, "ollama")
    serve = next(line for line in text.splitlines() if line.endswith("ollama serve"))
    env = dict(tok.split("=", 1) for tok in serve.lstrip("# ").split()[:-2])
    assert set(env) <= OLLAMA_ENV
    assert env == {"OLLAMA_FLASH_ATTENTION": "1", "OLLAMA_KV_CACHE_TYPE": "q8_0", "OLLAMA_NUM_PARALLEL": "3"}
    instructions = [line for line in text.splitlines() if not line.startswith("#")]
    assert instructions == ["FROM ./Llama 3.1 8B Q4_K_M.gguf", "PARAMETER num_ctx 12000"]  # per request


def test_modelfile_value_quoting_follows_ollamas_parser() -> None:
    plan = llama_plan().model_copy(update={"origin": ModelOrigin(gguf_file=" /m/x.gguf")})
    assert 'FROM " /m/x.gguf"' in export_plan(plan, "ollama")


@pytest.mark.parametrize(
    ("plan", "target", "needle"),
    [
        (llama_plan(kv_dtype_k="fp8", kv_dtype_v="fp8"), "llama.cpp", "llama.cpp has no fp8"),
        (llama_plan(kv_dtype_k="q8_0", kv_dtype_v="q8_0"), "vllm", "vLLM has no q8_0"),
        (llama_plan(kv_dtype_k="q8_0", kv_dtype_v="f16"), "vllm", "one KV cache dtype"),
        (llama_plan(kv_dtype_k="q8_0", kv_dtype_v="f16"), "ollama", "K and V together"),
        (llama_plan(kv_dtype_k="q5_1", kv_dtype_v="q5_1"), "ollama", "Ollama has no q5_1"),
        (llama_plan(kv_dtype_k="f16", kv_dtype_v="q8_0").with_engine(flash_attn=False), "llama.cpp",
         "needs flash attention"),
        (llama_plan(kv_dtype_k="q4_0", kv_dtype_v="q4_0").with_engine(flash_attn=False), "ollama",
         "only with flash attention"),
        (llama_plan().model_copy(update={"origin": ModelOrigin(gguf_file="a\nrm -rf ~\n.gguf")}), "llama.cpp",
         "control characters"),
        (llama_plan(), "tensorrt", "unknown export target"),
    ],
)
def test_what_an_engine_cannot_do_is_a_clear_error(plan: Plan, target: str, needle: str) -> None:
    with pytest.raises(ExportError, match=needle):
        export_plan(plan, target)


def test_newline_in_a_name_cannot_escape_a_comment() -> None:
    plan = llama_plan().model_copy(update={"model": llama_plan().model.model_copy(
        update={"name": "evil\nrm -rf ~"})})
    for target in ("llama.cpp", "ollama"):
        text = export_plan(plan, target)
        assert "\nrm -rf" not in text
        assert all(line.startswith(("#", " ", "llama-server", "FROM", "PARAMETER")) for line in text.splitlines())


def test_csv_report_adds_up() -> None:
    plan = vllm_plan()
    rows = list(csv.DictReader(io.StringIO(export_plan(plan, "csv"))))
    bd = calculate(plan)
    assert [r["device"] for r in rows] == [*(d.name for d in bd.per_device), "all"]
    for key in ("weights_bytes", "kv_cache_bytes", "total_bytes", "budget_bytes"):
        assert sum(int(r[key]) for r in rows[:-1]) == int(rows[-1][key]) == getattr(bd, key)


def test_markdown_report_has_the_numbers() -> None:
    plan = hybrid_plan()
    text = export_plan(plan, "markdown")
    bd = calculate(plan)
    assert f"| **Total** | {bd.total_bytes:,} |" in text
    assert f"| Recurrent state | {bd.recurrent_state_bytes:,} |" in text
    for rule in bd.rules:
        assert f"(`{rule.id}`)" in text


def test_targets_and_aliases() -> None:
    assert set(TARGETS) == set(SUFFIXES)
    assert normalize_target("LlamaCpp") == "llama.cpp" and normalize_target("md") == "markdown"


def test_engine_specific_round_trip() -> None:
    pytest.importorskip("kvdesk.core.engines.vllm")
    plan = vllm_plan().with_engine(name="vllm")
    text = export_plan(plan, "vllm")
    assert "use the" not in text  # no "numbers use another profile" note
    assert "kvdesk predicts" in text


def test_vllm_utilisation_keeps_full_precision() -> None:
    plan = vllm_plan().with_engine(gpu_memory_utilization=0.123456789)
    argv = _argv(export_plan(plan, "vllm"))
    assert float(argv[argv.index("--gpu-memory-utilization") + 1]) == 0.123456789
