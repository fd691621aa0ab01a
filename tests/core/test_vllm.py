"""vLLM engine profile against real vLLM logs (tests/data/validation + tests/data/vllm, sources inside).

Given the KV budget a log prints (2-decimal GiB, so known to ±0.005 GiB), kvdesk's num_gpu_blocks range
must contain the logged one; at a budget giving exactly the logged blocks, tokens and the printed
max concurrency must match exactly. End to end (model, GPU, gpu_memory_utilization only) the token
count must be within 5 %.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kvdesk.core.calculator import calculate
from kvdesk.core.engines.vllm_budget import rope_cache_bytes
from kvdesk.core.errors import InputError
from kvdesk.core.gpu import GpuSpec
from kvdesk.core.model import LayerGroup, ModelSpec, uniform_model
from kvdesk.core.plan import EngineSettings, Plan, Workload
from tests.conftest import load_validation

GIB = 1 << 30
CASES = [json.loads(p.read_text()) for p in sorted((Path(__file__).parents[1] / "data" / "vllm").glob("*.json"))]
VALIDATION = [c for c in load_validation("engine_logs.json") if c["engine"] == "vllm"]
MEMORY = {c["id"]: c for c in load_validation("engine_memory.json") if c["engine"] == "vllm"}


def _plan(case: dict[str, Any], weights_bytes: int | None = None, **engine: Any) -> Plan:
    run = case["run"]
    spec = dict(case["model_spec"])
    if weights_bytes is not None:
        spec["weight_formats"] = [{"name": spec["dtype"], "bytes": weights_bytes}]
    tp, pp = run["tensor_parallel_size"], run["pipeline_parallel_size"]
    kvd = run["kv_cache_dtype"]
    return Plan(
        model=ModelSpec.model_validate(spec),
        gpu=GpuSpec(name="NVIDIA H100 80GB", memory_bytes=round(run["gpu_total_gib"] * GIB)),
        gpu_count=tp * pp,
        workload=Workload(context=run["max_model_len"], kv_dtype_k=kvd, kv_dtype_v=kvd),
        engine=EngineSettings(
            name="vllm",
            version=case["engine_version"],
            tp=tp,
            pp=pp,
            gpu_memory_utilization=run["gpu_memory_utilization"],
            max_num_batched_tokens=run["max_num_batched_tokens"],
            **engine,
        ),
    )


def _extra(plan: Plan, kv_bytes: int) -> dict[str, Any]:
    return calculate(plan.with_engine(kv_cache_memory=kv_bytes)).extra


def _budget_for_blocks(plan: Plan, lo: int, hi: int, blocks: int) -> int:
    """Smallest budget in [lo, hi] at which kvdesk allocates ``blocks`` blocks."""
    while lo < hi:
        mid = (lo + hi) // 2
        if _extra(plan, mid)["num_gpu_blocks"] < blocks:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _check_given_budget(plan: Plan, gib: float, tol_gib: float, obs: dict[str, Any]) -> None:
    lo, hi = int((gib - tol_gib) * GIB), int((gib + tol_gib) * GIB)
    b_lo, b_hi = _extra(plan, lo)["num_gpu_blocks"], _extra(plan, hi)["num_gpu_blocks"]
    assert b_lo <= obs["num_gpu_blocks"] <= b_hi, (b_lo, b_hi)
    assert b_hi - b_lo < 0.001 * obs["num_gpu_blocks"] + 110  # the range is tight: the rule is tested
    extra = _extra(plan, _budget_for_blocks(plan, lo, hi, obs["num_gpu_blocks"]))
    assert extra["num_gpu_blocks"] == obs["num_gpu_blocks"]
    assert extra["kv_cache_tokens"] == obs["kv_tokens"]
    assert extra["max_concurrency"] == obs["max_concurrency"]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_real_log_given_budget(case: dict[str, Any]) -> None:
    obs = case["observed"]
    # the smallest rank's budget limits every rank (get_kv_cache_configs); per-rank budgets are
    # requested − each rank's "Total non KV cache memory", both printed to 2 decimals.
    tol = 0.005 if len(obs["rank_available_kv_gib"]) == 1 else 0.01
    _check_given_budget(_plan(case), min(obs["rank_available_kv_gib"]), tol, obs)


def _logged_parameters(case: dict[str, Any]) -> int:
    """All ranks' "Model loading took" minus the RoPE cos/sin buffer each rank loads with them.

    kvdesk charges that buffer itself (vllm_budget.rope_cache_bytes), so the weights it is given are the
    parameters alone.
    """
    run = case["run"]
    ranks = run["tensor_parallel_size"] * run["pipeline_parallel_size"]
    return round(case["observed"]["weights_gib_all_ranks"] * GIB) - ranks * rope_cache_bytes(_plan(case))


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_real_log_end_to_end_within_5_percent(case: dict[str, Any]) -> None:
    obs = case["observed"]
    plan = _plan(case, weights_bytes=_logged_parameters(case))
    bd = calculate(plan)
    assert bd.extra["kv_budget_source"] == "gpu_memory_utilization"
    assert bd.extra["kv_cache_tokens"] == pytest.approx(obs["kv_tokens"], rel=0.05)
    assert bd.extra["activation_peak_bytes"] / GIB == pytest.approx(obs["activation_gib"], abs=0.5)
    assert bd.fits


def _validation_plan(case: dict[str, Any]) -> Plan:
    arch, run = case["arch"], case["run"]
    model = uniform_model(
        case["model"],
        arch["n_layers"],
        arch["n_kv_heads"],
        arch["head_dim_k"],
        params_total=8_030_261_248,
        hidden_size=arch["hidden_size"],
        n_heads=arch["n_heads"],
        vocab_size=128256,
        native_context=131072,
    )
    mem = MEMORY[case["id"]]["vllm"]
    return Plan(
        model=model,
        gpu=GpuSpec(name="H100", memory_bytes=mem["total_gpu_bytes"]),
        workload=Workload(context=run["max_model_len"], kv_dtype_k=run["kv_dtype_k"], kv_dtype_v=run["kv_dtype_v"]),
        engine=EngineSettings(name="vllm", version="0.19.0", gpu_memory_utilization=run["gpu_memory_utilization"]),
    )


@pytest.mark.parametrize("case", VALIDATION, ids=[c["id"] for c in VALIDATION])
def test_validation_engine_logs(case: dict[str, Any]) -> None:
    obs = case["observed"]
    plan = _validation_plan(case)
    extra = _extra(plan, case["run"]["available_kv_memory_bytes"])
    # at the budget derived from the printed GiB, tokens are within the blocks that ±0.005 GiB holds
    # (one block group for bf16, 16 tokens; fp8 blocks are half as big, so ±5 of them fit)
    block_bytes = extra["kv_page_size_bytes"] * extra["kv_group_size"]
    slack_blocks = -(-int(0.005 * GIB) // block_bytes)
    assert abs(extra["kv_cache_tokens"] - obs["kv_tokens"]) <= 16 * extra["kv_cache_groups"] * slack_blocks
    _check_given_budget(plan, obs["available_kv_gib_printed"], 0.005, obs)


@pytest.mark.parametrize("case", VALIDATION, ids=[c["id"] for c in VALIDATION])
def test_validation_end_to_end(case: dict[str, Any]) -> None:
    mem = MEMORY[case["id"]]["vllm"]
    plan = _validation_plan(case)
    spec = {**plan.model.model_dump(), "weight_formats": [{"name": "bf16", "bytes": mem["weights_bytes"]}]}
    plan = plan.model_copy(update={"model": ModelSpec.model_validate(spec)})
    extra = calculate(plan).extra
    assert extra["kv_cache_tokens"] == pytest.approx(case["observed"]["kv_tokens"], rel=0.01)
    # budget arithmetic: requested = util × total (a fraction of TOTAL memory)
    assert extra["requested_memory_bytes"] == pytest.approx(mem["requested_bytes"], abs=1 << 20)


def _simple(**engine: Any) -> Plan:
    model = uniform_model("m", 32, 8, 128, params_total=8_000_000_000, n_heads=32, hidden_size=4096, vocab_size=128256)
    return Plan(
        model=model,
        gpu=GpuSpec(name="g", memory_bytes=80 * GIB),
        gpu_count=4,
        workload=Workload(context=8192, batch=4),
        engine=EngineSettings(name="vllm", **engine),
    )


def test_page_formula_and_fp8_halves_it() -> None:
    bf16 = _extra(_simple(), 64 * GIB)
    fp8 = calculate(_simple(kv_cache_memory=64 * GIB).with_workload(kv_dtype_k="fp8", kv_dtype_v="fp8")).extra
    assert bf16["kv_page_size_bytes"] == 2 * 16 * 8 * 128 * 2
    assert bf16["num_gpu_blocks"] == 64 * GIB // (2 * 16 * 8 * 128 * 2 * 32)
    assert fp8["num_gpu_blocks"] == 2 * bf16["num_gpu_blocks"]


def test_tp_splits_heads_but_never_below_one() -> None:
    assert _extra(_simple(tp=2), GIB)["kv_page_size_bytes"] == 2 * 16 * 4 * 128 * 2
    model = uniform_model("m", 32, 2, 128, params_total=10**9, n_heads=32)
    plan = _simple(tp=4).model_copy(update={"model": model})
    assert _extra(plan, GIB)["kv_page_size_bytes"] == 2 * 16 * 1 * 128 * 2  # max(1, 2 // 4)


def test_sliding_window_only_needs_window_plus_batched_tokens() -> None:
    layers = [
        LayerGroup(count=1, kind=k, n_kv_heads=8, head_dim_k=128, head_dim_v=128, window=w)
        for k, w in (("sliding", 1024), ("full", None))
    ] * 8
    model = ModelSpec(name="h", layers=layers, params_total=10**9)
    plan = _simple(max_num_batched_tokens=2048).model_copy(update={"model": model}).with_workload(context=65536)
    extra = _extra(plan, 8 * GIB)
    # full 65536/16 = 4096 blocks; sliding cdiv(1023 + 2048, 16) + 1 = 193 blocks
    assert extra["max_concurrency"] == round(extra["num_gpu_blocks"] / (4096 + 193), 2)
    assert extra["kv_cache_groups"] == 2


def test_fits_follows_max_concurrency_and_limits_are_exact() -> None:
    plan = _simple(kv_cache_memory=8 * GIB).with_workload(context=32768)
    bd = calculate(plan)
    conc = bd.extra["max_concurrency"]
    assert bd.max_batch == int(conc)
    assert calculate(plan.with_workload(batch=bd.max_batch)).fits
    assert not calculate(plan.with_workload(batch=bd.max_batch + 1)).fits
    at = calculate(plan.with_workload(batch=2, context=calculate(plan.with_workload(batch=2)).max_context))
    assert at.fits and at.max_context % 16 == 0


def test_kv_reported_is_the_whole_pool() -> None:
    bd = calculate(_simple(kv_cache_memory=8 * GIB).with_workload(batch=1, context=1024))
    per_block = 2 * 16 * 8 * 128 * 2 * 32
    assert len(bd.per_device) == 1  # tp × pp = 1: vLLM uses one of the 4 GPUs
    assert bd.kv_cache_bytes == bd.extra["num_gpu_blocks"] * per_block  # far more than 1 × 1024 tokens
    assert any("not counted" in w for w in bd.warnings)
    tp2 = calculate(_simple(kv_cache_memory=8 * GIB, tp=2))
    assert [d.kv_cache_bytes for d in tp2.per_device] == [tp2.extra["num_gpu_blocks"] * per_block // 2] * 2


def test_legacy_versions_print_tokens_over_max_model_len() -> None:
    plan = _simple(kv_cache_memory=8 * GIB, version="0.8.5").with_workload(context=1000)
    extra = calculate(plan).extra
    assert extra["max_concurrency"] == round(extra["kv_cache_tokens"] / 1000, 2)
    new = calculate(plan.with_engine(version="0.10.0")).extra
    assert new["max_concurrency"] == round(new["num_gpu_blocks"] / 63, 2)  # cdiv(1000, 16)


@pytest.mark.parametrize(
    ("change", "field"),
    [({"tp": 3}, "tp"), ({"tp": 8, "pp": 1}, "gpus"), ({"version": "banana"}, "engine_version")],
)
def test_bad_settings_raise_clear_errors(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as err:
        calculate(_simple(**change))
    assert err.value.field == field


def test_quantised_ggml_kv_types_are_refused() -> None:
    with pytest.raises(InputError, match="vLLM has no 'q8_0'"):
        calculate(_simple().with_workload(kv_dtype_k="q8_0", kv_dtype_v="q8_0"))


def test_weights_beyond_budget_do_not_fit() -> None:
    plan = _simple(gpu_memory_utilization=0.1).with_workload(batch=1)
    bd = calculate(plan)
    assert bd.extra["num_gpu_blocks"] == 0 and not bd.fits and bd.max_batch == 0


def test_mamba_hybrid_grows_the_attention_block_and_warns() -> None:
    layers = [
        LayerGroup(count=3, kind="recurrent", state_bytes=2_000_000),
        LayerGroup(count=1, kind="full", n_kv_heads=8, head_dim_k=128, head_dim_v=128),
    ] * 4
    model = ModelSpec(name="hybrid", layers=layers, params_total=10**9, n_heads=32)
    bd = calculate(_simple(kv_cache_memory=4 * GIB).model_copy(update={"model": model}))
    # state 2,000,000 B at f32 is 1,000,000 B in the bf16 model dtype; attention page per token
    # 2 × 8 × 128 × 2 = 4096 B, so the block grows to 16 × cdiv(1e6, 16 × 4096) = 256 tokens
    assert bd.extra["block_size"] == 256
    assert bd.extra["kv_page_size_bytes"] == 256 * 4096
    assert any("Mamba" in w for w in bd.warnings)


LEGACY = [
    json.loads(p.read_text()) for p in sorted((Path(__file__).parents[1] / "data" / "vllm" / "legacy").glob("*.json"))
]


@pytest.mark.parametrize("case", LEGACY, ids=[c["id"] for c in LEGACY])
def test_legacy_v0_logs(case: dict[str, Any]) -> None:
    """V0 (vLLM 0.6): same blocks, concurrency = blocks × 16 / max_model_len; it refused < 1 request."""
    obs, run = case["observed"], case["run"]
    plan = Plan(
        model=ModelSpec.model_validate(case["model_spec"]),
        gpu=GpuSpec(name="RTX 3090", memory_bytes=24 * GIB),
        workload=Workload(context=run["max_model_len"]),
        engine=EngineSettings(name="vllm", version=case["engine_version"]),
    )
    lo, hi = int((obs["kv_cache_gib"] - 0.005) * GIB), int((obs["kv_cache_gib"] + 0.005) * GIB)
    assert _extra(plan, lo)["num_gpu_blocks"] <= obs["num_gpu_blocks"] <= _extra(plan, hi)["num_gpu_blocks"]
    bd = calculate(plan.with_engine(kv_cache_memory=_budget_for_blocks(plan, lo, hi, obs["num_gpu_blocks"])))
    assert bd.extra["max_concurrency"] == obs["max_concurrency"]
    assert bd.fits == (obs["max_concurrency"] >= 1)
    if obs["kv_tokens_from_error"]:
        assert bd.extra["kv_cache_tokens"] == obs["kv_tokens_from_error"]


@pytest.mark.parametrize(
    ("name", "gib", "tokens", "seqs"),
    [("NVIDIA H100 80GB", 80, 8192, 1024), ("NVIDIA A100-SXM4-80GB", 80, 2048, 256), ("RTX 4090", 24, 2048, 256)],
)
def test_batch_defaults_follow_the_gpu(name: str, gib: int, tokens: int, seqs: int) -> None:
    # vllm/engine/arg_utils.py get_batch_defaults: ≥ 70 GiB and not A100 → 8192 / 1024, else 2048 / 256
    plan = _simple().model_copy(update={"gpu": GpuSpec(name=name, memory_bytes=gib * GIB), "gpu_count": 1})
    vocab = plan.model.vocab_size
    act = calculate(plan).extra["activation_peak_bytes"]
    # sampler 14.2 B per (seq, vocab) + forward 2.35 B per (token, hidden) + 0.1 GiB (vllm_budget.py fit)
    assert act == int(14.2 * seqs * vocab + (2.35 * tokens * plan.model.hidden_size + int(0.1 * GIB)))


VERSIONS = [
    json.loads(p.read_text()) for p in sorted((Path(__file__).parents[1] / "data" / "vllm" / "versions").glob("*.json"))
]


@pytest.mark.parametrize("case", VERSIONS, ids=[c["id"] for c in VERSIONS])
def test_version_sweep_given_budget_and_end_to_end(case: dict[str, Any]) -> None:
    """Qwen3-14B on H100 with vLLM 0.15-0.18: exact tokens/concurrency; end to end within 5 %."""
    obs = case["observed"]
    plan = _plan(case, weights_bytes=round(obs["weights_gib"] * GIB))
    _check_given_budget(plan, obs["available_kv_gib"], 0.005, obs)
    bd = calculate(plan)
    assert bd.extra["kv_cache_tokens"] == pytest.approx(obs["kv_tokens"], rel=0.05)
    assert bd.extra["activation_peak_bytes"] / GIB == pytest.approx(obs["activation_gib"], abs=0.3)


HYBRID = [
    json.loads(p.read_text()) for p in sorted((Path(__file__).parents[1] / "data" / "vllm" / "hybrid").glob("*.json"))
]


@pytest.mark.parametrize("case", HYBRID, ids=[c["id"] for c in HYBRID])
def test_mamba_hybrid_real_log(case: dict[str, Any]) -> None:
    """Qwen3-Next (gated delta-net + full attention), TP2, fp8 KV: block size, tokens and concurrency."""
    obs, run = case["observed"], case["run"]
    plan = Plan(
        model=ModelSpec.model_validate(case["model_spec"]),
        gpu=GpuSpec(name="NVIDIA L40S", memory_bytes=48 * GIB),
        gpu_count=run["tensor_parallel_size"],
        workload=Workload(
            context=run["max_model_len"], kv_dtype_k=run["kv_cache_dtype"], kv_dtype_v=run["kv_cache_dtype"]
        ),
        engine=EngineSettings(
            name="vllm",
            version=case["engine_version"],
            tp=run["tensor_parallel_size"],
            max_num_batched_tokens=run["max_num_batched_tokens"],
        ),
    )
    lo, hi = int((obs["available_kv_gib"] - 0.005) * GIB), int((obs["available_kv_gib"] + 0.005) * GIB)
    extra = _extra(plan, lo)
    assert extra["block_size"] == obs["attention_block_size"]
    assert extra["kv_cache_groups"] == 4 and extra["kv_group_size"] == 12
    found = [_extra(plan, b) for b in range(lo, hi, 1 << 20)]
    assert any(
        e["kv_cache_tokens"] == obs["kv_tokens"] and e["max_concurrency"] == obs["max_concurrency"] for e in found
    )


def test_not_fitting_says_why() -> None:
    plan = _simple(kv_cache_memory=GIB).with_workload(context=8192)
    many = calculate(plan.with_workload(batch=100))
    assert not many.fits and any("holds" in w and "not 100" in w for w in many.warnings)
    huge = calculate(plan.with_workload(context=131072, batch=1))
    assert not huge.fits and any("would not start" in w for w in huge.warnings)
