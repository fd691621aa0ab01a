"""vLLM logs that print the KV budget but not the memory profile (tests/data/vllm/budget_only).

Given ``Available KV cache memory`` (2-decimal GiB, ±0.005), some budget in that range must give the
logged ``GPU KV cache size`` and ``Maximum concurrency`` exactly. Covers Gemma 4 (sliding 256-wide and
global 512-wide heads in one pool) and the token count of vLLM ≥ 0.20 (``int(max_concurrency ×
max_model_len)``, vllm/v1/core/kv_cache_utils.py _report_kv_cache_config).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kvdesk.core.calculator import calculate
from kvdesk.core.engines.vllm_budget import parse_version
from kvdesk.core.gpu import GpuSpec
from kvdesk.core.importers.hf_config import import_hf_config
from kvdesk.core.model import ModelSpec
from kvdesk.core.plan import EngineSettings, Plan, Workload

GIB = 1 << 30
DATA = Path(__file__).parents[1] / "data"
CASES = [json.loads(p.read_text()) for p in sorted((DATA / "vllm" / "budget_only").glob("*.json"))]


def _plan(case: dict[str, Any], kv_bytes: int, version: str | None = None) -> Plan:
    run = case["run"]
    if "model_spec" in case:
        model = ModelSpec.model_validate(case["model_spec"])
    else:
        model = import_hf_config(DATA / "configs" / case["config"]).model
    return Plan(
        model=model,
        gpu=GpuSpec(name="GPU", memory_bytes=48 * GIB),
        gpu_count=run["tensor_parallel_size"],
        workload=Workload(
            context=run["max_model_len"], kv_dtype_k=run["kv_cache_dtype"], kv_dtype_v=run["kv_cache_dtype"]
        ),
        engine=EngineSettings(
            name="vllm",
            version=version or case["engine_version"],
            tp=run["tensor_parallel_size"],
            max_num_batched_tokens=run["max_num_batched_tokens"],
            kv_cache_memory=kv_bytes,
        ),
    )


def _scan(case: dict[str, Any], version: str | None = None) -> list[dict[str, Any]]:
    gib = case["observed"]["available_kv_gib"]
    lo, hi = int((gib - 0.005) * GIB), int((gib + 0.005) * GIB)
    first = calculate(_plan(case, lo, version)).extra
    step = first["kv_page_size_bytes"] * first["kv_group_size"]  # one block of every group: no block skipped
    return [first] + [calculate(_plan(case, b, version)).extra for b in range(lo + step, hi + 1, step)]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_logged_tokens_and_concurrency_at_the_logged_budget(case: dict[str, Any]) -> None:
    obs = case["observed"]
    found = _scan(case)
    hits = [
        e for e in found if (e["kv_cache_tokens"], e["max_concurrency"]) == (obs["kv_tokens"], obs["max_concurrency"])
    ]
    assert hits, sorted({(e["kv_cache_tokens"], e["max_concurrency"]) for e in found})
    # ±0.005 GiB is a few blocks: every budget in the range stays within 1 % of the log
    assert all(abs(e["kv_cache_tokens"] - obs["kv_tokens"]) <= 0.01 * obs["kv_tokens"] for e in found)


NEW = [c for c in CASES if parse_version(c["engine_version"]) >= (0, 20, 0)]


@pytest.mark.parametrize("case", NEW, ids=[c["id"] for c in NEW])
def test_the_old_token_formula_would_miss_these_logs(case: dict[str, Any]) -> None:
    """The same pool reported as num_blocks // groups × block (vLLM 0.19) is not what 0.20+ prints."""
    assert all(e["kv_cache_tokens"] != case["observed"]["kv_tokens"] for e in _scan(case, "0.19.0"))
