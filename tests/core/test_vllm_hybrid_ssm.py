"""vLLM Mamba / gated-delta-net hybrids against real logs (tests/data/vllm/hybrid_ssm, sources inside).

vLLM grows the attention block until one attention page holds a layer's recurrent state
("Setting attention block size to N tokens"), pads the state page to it ("Padding mamba page size
by X%"), then groups layers into pages of equal size. The state page counts the conv window in the
model dtype and the SSM state in ``mamba_ssm_cache_dtype`` (float32 for Qwen3.5, from its config).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kvdesk.core.calculator import calculate
from kvdesk.core.dtypes import kv_type
from kvdesk.core.engines.vllm_layout import mamba_page_bytes
from kvdesk.core.gpu import GpuSpec
from kvdesk.core.importers.hf_config import import_hf_config
from kvdesk.core.importers.hf_layers import build_layers
from kvdesk.core.model import LayerGroup, ModelSpec
from kvdesk.core.plan import EngineSettings, Plan, Workload

GIB = 1 << 30
DATA = Path(__file__).parents[1] / "data"
CASES = [json.loads(p.read_text()) for p in sorted((DATA / "vllm" / "hybrid_ssm").glob("*.json"))]


def _model(case: dict[str, Any]) -> ModelSpec:
    if "model_spec" in case:
        return ModelSpec.model_validate(case["model_spec"])
    model = import_hf_config(DATA / "configs" / case["config"]).model
    return model.model_copy(update={"dtype": case["dtype"]})


def _plan(case: dict[str, Any], kv_bytes: int) -> Plan:
    run = case["run"]
    return Plan(
        model=_model(case),
        gpu=GpuSpec(name="GPU", memory_bytes=48 * GIB),
        gpu_count=run["tensor_parallel_size"],
        workload=Workload(
            context=run["max_model_len"], kv_dtype_k=run["kv_cache_dtype"], kv_dtype_v=run["kv_cache_dtype"]
        ),
        engine=EngineSettings(
            name="vllm",
            version=case["engine_version"],
            tp=run["tensor_parallel_size"],
            max_num_batched_tokens=run["max_num_batched_tokens"],
            kv_cache_memory=kv_bytes,
        ),
    )


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_attention_block_and_mamba_padding_match_the_log(case: dict[str, Any]) -> None:
    obs = case["observed"]
    plan = _plan(case, 8 * GIB)
    extra = calculate(plan).extra
    assert extra["block_size"] == obs["attention_block_size"]
    state = next(g for g in plan.model.layers if g.kind == "recurrent")
    model_bytes = kv_type("auto", plan.model.dtype).block_bytes  # mamba_cache_dtype "auto" = model dtype
    raw_page = mamba_page_bytes(state, model_bytes, case["run"]["tensor_parallel_size"])
    pad = (extra["kv_page_size_bytes"] / raw_page - 1) * 100  # vLLM prints it with %.2f
    assert f"{pad:.2f}" == f"{obs['mamba_pad_percent']:.2f}"


LOGGED = [c for c in CASES if "kv_tokens" in c["observed"]]


@pytest.mark.parametrize("case", LOGGED, ids=[c["id"] for c in LOGGED])
def test_tokens_and_concurrency_given_the_logged_budget(case: dict[str, Any]) -> None:
    obs = case["observed"]
    lo, hi = int((obs["available_kv_gib"] - 0.005) * GIB), int((obs["available_kv_gib"] + 0.005) * GIB)
    found = [calculate(_plan(case, b)).extra for b in range(lo, hi, 1 << 20)]
    assert {(e["kv_cache_groups"], e["kv_group_size"]) for e in found} == {
        (obs["kv_cache_groups"], obs["kv_group_size"])
    }
    assert any(
        e["kv_cache_tokens"] == obs["kv_tokens"] and e["max_concurrency"] == obs["max_concurrency"] for e in found
    )
    # the printed budget (±0.005 GiB) holds about 1 block: the answer cannot drift far from the log
    assert all(abs(e["kv_cache_tokens"] - obs["kv_tokens"]) <= obs["attention_block_size"] for e in found)


def test_ssm_state_in_model_dtype_unless_the_config_asks_otherwise() -> None:
    # Qwen3.5 gated delta-net: conv 3 x 8192 values, SSM 32 x 128 x 128 values (f32 total 2,195,456 B)
    auto = LayerGroup(kind="recurrent", state_bytes=2_195_456, ssm_state_bytes=2_097_152)
    f32 = auto.model_copy(update={"ssm_state_dtype": "f32"})
    assert mamba_page_bytes(auto, 2, 1) == (24_576 + 524_288) * 2
    assert mamba_page_bytes(f32, 2, 1) == 24_576 * 2 + 524_288 * 4
    assert mamba_page_bytes(f32, 2, 2) == (24_576 * 2 + 524_288 * 4) // 2


def test_importer_reads_mamba_ssm_dtype_and_splits_the_state() -> None:
    result = import_hf_config(DATA / "configs" / "qwen3.5-35b-a3b.json")
    states = {
        (g.state_bytes, g.ssm_state_bytes, g.ssm_state_dtype) for g in result.model.layers if g.kind == "recurrent"
    }
    # linear_num_value_heads 32 x linear_value_head_dim 128, linear_key_head_dim 128
    assert states == {(2_195_456, 4 * 128 * 32 * 128, "f32")}
    next_model = import_hf_config(DATA / "configs" / "qwen3-next-80b-a3b-instruct.json").model
    # Qwen3-Next's config has no mamba_ssm_dtype: vLLM keeps its state in the model dtype (0.13 log: block 1072)
    assert {g.ssm_state_dtype for g in next_model.layers if g.kind == "recurrent"} == {None}


NANO_9B_V2 = {
    # NVIDIA-Nemotron-Nano-9B-v2 mixer shapes (config.json: mamba_num_heads 128, mamba_head_dim 80,
    # n_groups 8, ssm_state_size 128, conv_kernel 4; attention 8 KV heads x 128); layer pattern cut short
    "model_type": "nemotron_h",
    "architectures": ["NemotronHForCausalLM"],
    "num_hidden_layers": 4,
    "hidden_size": 4480,
    "num_attention_heads": 40,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "hybrid_override_pattern": "M-M*",
    "mamba_num_heads": 128,
    "mamba_head_dim": 80,
    "ssm_state_size": 128,
    "n_groups": 8,
    "conv_kernel": 4,
    "torch_dtype": "bfloat16",
}


@pytest.mark.parametrize(("version", "block"), [("0.10.2", 672), ("0.19.0", 672), ("0.20.0", 1312)])
def test_nemotron_h_ssm_dtype_default_follows_the_vllm_version(tmp_path: Path, version: str, block: int) -> None:
    """vllm#24280 (2025-09) reports 672-token blocks for Nemotron-Nano-9B-v2 (SSM state in bf16);
    vllm#39032 (2026-04) keeps the state in float32 unless the config says otherwise: 1312."""
    (tmp_path / "config.json").write_text(json.dumps(NANO_9B_V2))
    model = import_hf_config(tmp_path).model
    rec = {(g.ssm_state_bytes, g.ssm_state_dtype) for g in model.layers if g.kind == "recurrent"}
    assert rec == {(4 * 128 * 128 * 80, None)}  # the config names no dtype: the engine decides
    plan = Plan(
        model=model,
        gpu=GpuSpec(name="GPU", memory_bytes=48 * GIB),
        workload=Workload(context=8192),
        engine=EngineSettings(name="vllm", version=version, kv_cache_memory=4 * GIB),
    )
    assert calculate(plan).extra["block_size"] == block


def test_config_mamba_ssm_cache_dtype_wins_over_the_default() -> None:
    layers = build_layers({**NANO_9B_V2, "mamba_ssm_cache_dtype": "float32"}, [])
    assert {g.ssm_state_dtype for g in layers if g.kind == "recurrent"} == {"f32"}
