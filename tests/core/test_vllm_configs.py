"""vLLM end to end from the model's real config.json only, through the CLI, against real vLLM logs.

Each tests/data/vllm case that names an ``hf_config`` (tests/data/configs, sources in SOURCES.json) is
re-run the way a user would: ``kvdesk calc --hf-config <config> --gpu h100-sxm-80gb --engine vllm
--tp N --pp M --ctx L --gpu-memory-utilization U --json`` (plus ``--weights-dtype`` for a quantized
checkpoint or ``--dtype``, ``--kv-dtype`` for an fp8 cache). No logged figure goes in: weights come from
the config's parameter count, the profiled memory from vllm_budget's estimates. The KV token count must
be within 5 % of the log's ``GPU KV cache size``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kvdesk.cli import main
from kvdesk.core.calculator import calculate
from kvdesk.core.gpu import GpuSpec
from kvdesk.core.importers.hf_config import import_hf_config
from kvdesk.core.model import ModelSpec
from kvdesk.core.plan import EngineSettings, Plan, Workload
from tests.core.test_vllm import _check_given_budget as check_given_budget
from tests.core.test_vllm import _plan as vllm_plan

DATA = Path(__file__).parents[1] / "data"
CASES = [c for c in (json.loads(p.read_text()) for p in sorted((DATA / "vllm").glob("*.json"))) if c.get("hf_config")]


# The quantization_config llm-compressor writes into an FP8-dynamic / w8a8 checkpoint's config.json (the rest
# of the file is the base model's): 8-bit float or int weights on every Linear but lm_head.
def _compressed_tensors(kind: str) -> dict[str, Any]:
    weights = {"num_bits": 8, "type": kind, "strategy": "channel", "symmetric": True, "dynamic": False}
    return {
        "quant_method": "compressed-tensors",
        "format": "float-quantized" if kind == "float" else "int-quantized",
        "config_groups": {"group_0": {"targets": ["Linear"], "weights": weights}},
        "ignore": ["lm_head"],
        "quantization_status": "compressed",
    }


def _config(case: dict[str, Any], tmp: Path) -> tuple[Path, str | None]:
    """The config the checkpoint ships, and the --weights-dtype still needed (f16/f32 runs, GPTQ, and
    ``--quantization fp8``, which quantizes a 16-bit checkpoint while loading)."""
    path, wd = DATA / "configs" / case["hf_config"], case["run"].get("weights_dtype")
    quant = case["run"].get("quantization")
    if wd in ("fp8", "int8") and quant == "compressed-tensors":  # a RedHatAI checkpoint
        q = _compressed_tensors("float" if wd == "fp8" else "int")
    elif wd == "gptq-int4" and quant == "gptq_marlin":  # a GPTQ checkpoint (vLLM picks the Marlin kernel)
        q = {"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": True, "sym": True}
    else:
        return path, wd
    doc = json.loads(path.read_text())
    doc["quantization_config"] = q
    path = tmp / "config.json"
    path.write_text(json.dumps(doc))
    return path, None


def _cli(case: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp: Path) -> dict[str, Any]:
    run = case["run"]
    tp, pp = run["tensor_parallel_size"], run["pipeline_parallel_size"]
    config, weights_dtype = _config(case, tmp)
    argv = ["calc", "--hf-config", str(config), "--gpu", "h100-sxm-80gb"]
    argv += ["--engine", "vllm", "--tp", str(tp), "--pp", str(pp), "--gpus", str(tp * pp)]
    argv += ["--ctx", str(run["max_model_len"]), "--gpu-memory-utilization", str(run["gpu_memory_utilization"])]
    if run["kv_cache_dtype"] != "auto":
        argv += ["--kv-dtype", run["kv_cache_dtype"]]
    if weights_dtype:
        argv += ["--weights-dtype", weights_dtype]
    assert main([*argv, "--json"]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def test_there_are_config_cases() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_config_only_end_to_end_within_5_percent(
    case: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = _cli(case, capsys, tmp_path)
    obs = case["observed"]
    assert out["kv_budget_source"] == "gpu_memory_utilization"
    assert out["kv_cache_tokens"] == pytest.approx(obs["kv_tokens"], rel=0.05)
    assert out["max_concurrency"] == pytest.approx(obs["max_concurrency"], rel=0.05)
    assert out["fits"]


QUANTIZED = [c for c in CASES if c["run"].get("quantization") in ("compressed-tensors", "gptq_marlin")]


@pytest.mark.parametrize("case", QUANTIZED, ids=[c["id"] for c in QUANTIZED])
def test_quantized_checkpoints_keep_16_bit_embeddings(
    case: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """FP8 / w8a8 / GPTQ w4a16 weights per GPU within 0.1 GiB of "Model loading took" (embeddings and lm_head
    stay 16-bit)."""
    out = _cli(case, capsys, tmp_path)
    logged = case["observed"]["weights_gib"]
    assert out["per_device"][0]["weights_bytes"] / (1 << 30) == pytest.approx(logged, abs=0.1)


def test_failed_log_phi2_max_model_len_above_its_positions_does_not_fit() -> None:
    """microsoft-phi-2--h100-80gb--tp1pp1dp1--8192.FAILED.log (llm-d-planner @ d3121e05): vLLM 0.19 refused
    max_model_len 8192 > max_position_embeddings 2048; the same model at 2048 started (phi2-ctx2048 case)."""
    case = json.loads((DATA / "vllm" / "phi2-ctx2048.json").read_text())
    plan = Plan(
        model=ModelSpec.model_validate(case["model_spec"]),
        gpu=GpuSpec(name="NVIDIA H100 80GB", memory_bytes=round(case["run"]["gpu_total_gib"] * (1 << 30))),
        workload=Workload(context=8192),
        engine=EngineSettings(name="vllm", version="0.19.0", gpu_memory_utilization=0.95),
    )
    bd = calculate(plan)
    assert not bd.fits and bd.max_batch == 0
    assert any("vLLM refuses it" in w for w in bd.warnings)
    assert calculate(plan.with_workload(context=2048)).fits


def test_failed_log_qwen3_14b_tp5_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """qwen-qwen3-14b--h100-80gb--tp5pp1dp1--8192.FAILED.log: vLLM could not split Qwen3-14B five ways."""
    argv = ["calc", "--hf-config", str(DATA / "configs" / "qwen3-14b.json"), "--gpu", "h100-sxm-80gb"]
    argv += ["--engine", "vllm", "--tp", "5", "--gpus", "5", "--ctx", "8192", "--json"]
    assert main(argv) != 0
    assert "tp 5" in capsys.readouterr().err


RUNS = json.loads((DATA / "vllm" / "runs" / "llmd_runs_without_logs.json").read_text())["cases"]


def _run_plan(run_case: dict[str, Any]) -> Plan:
    run = run_case["run"]
    tp, pp = run["tensor_parallel_size"], run["pipeline_parallel_size"]
    kvd = run["kv_cache_dtype"] or "auto"
    weights = {"float16": "f16", "half": "f16", "float32": "f32"}.get(run["dtype"])
    return Plan(
        model=import_hf_config(DATA / "configs" / run_case["hf_config"]).model,
        gpu=GpuSpec(name="NVIDIA H100 80GB HBM3", memory_bytes=round(79.19 * (1 << 30))),
        gpu_count=tp * pp,
        workload=Workload(context=run["max_model_len"], kv_dtype_k=kvd, kv_dtype_v=kvd, weights_format=weights),
        engine=EngineSettings(
            name="vllm", version="0.19.0", tp=tp, pp=pp, gpu_memory_utilization=run["gpu_memory_utilization"]
        ),
    )


def _tokens_at(plan: Plan, budget: int) -> dict[str, Any]:
    return calculate(plan.with_engine(kv_cache_memory=budget)).extra


@pytest.mark.parametrize("run_case", RUNS, ids=[c["source"].split("/runs/")[1].split(".json")[0] for c in RUNS])
def test_runs_without_logs_given_budget_and_config_only(run_case: dict[str, Any]) -> None:
    """Given the logged budget (±0.005 GiB): some budget gives the logged tokens and concurrency exactly
    (the summaries' kv_cache_blocks is tokens / 16, not num_gpu_blocks, for hybrid models); from the
    config alone: tokens within 5 %."""
    obs, plan = run_case["observed"], _run_plan(run_case)
    lo, hi = (int((obs["kv_cache_memory_gib"] + d) * (1 << 30)) for d in (-0.005, 0.005))
    assert _tokens_at(plan, lo)["kv_cache_tokens"] <= obs["kv_cache_tokens"] <= _tokens_at(plan, hi)["kv_cache_tokens"]
    while lo < hi:  # the smallest budget reaching the logged tokens
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if _tokens_at(plan, mid)["kv_cache_tokens"] < obs["kv_cache_tokens"] else (lo, mid)
    extra = _tokens_at(plan, lo)
    assert (extra["kv_cache_tokens"], extra["max_concurrency"]) == (obs["kv_cache_tokens"], obs["max_concurrency"])
    assert calculate(plan).extra["kv_cache_tokens"] == pytest.approx(obs["kv_cache_tokens"], rel=0.05)


FAILED_AFTER_KV = [json.loads(p.read_text()) for p in sorted((DATA / "vllm" / "failed").glob("*.json"))]


@pytest.mark.parametrize("case", FAILED_AFTER_KV, ids=[c["id"] for c in FAILED_AFTER_KV])
def test_failed_after_kv_allocation_logs(
    case: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """gpt-oss-20b at gpu_memory_utilization 0.95 (TP1, TP2): vLLM sized and allocated its KV cache (these
    figures), then ran out of memory warming up the sampler with 1024 dummy requests. kvdesk reproduces the
    KV figures; it does not model that warm-up (outside the profiled budget), so it still reports a fit."""
    obs = case["observed"]
    check_given_budget(vllm_plan(case), min(obs["rank_available_kv_gib"]), 0.01, obs)
    out = _cli(case, capsys, tmp_path)
    assert out["kv_cache_tokens"] == pytest.approx(obs["kv_tokens"], rel=0.05)
