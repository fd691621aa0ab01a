"""llama.cpp profile against real llama.cpp / ik_llama.cpp logs (tests/data/llamacpp/kv_logs.json).

Each case is a real startup log with its source; the model is described from its config / GGUF
metadata. kvdesk must print the same cell counts and the same ``%.2f MiB`` K / V sizes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kvdesk.core.calculator import calculate
from kvdesk.core.engines import get_engine
from kvdesk.core.engines.llamacpp import LlamaCppEngine
from kvdesk.core.gpu import custom_gpu
from kvdesk.core.model import LayerGroup, ModelSpec
from kvdesk.core.plan import EngineSettings, Plan, Workload

HERE = Path(__file__).parents[1] / "data" / "llamacpp"
DATA = json.loads((HERE / "kv_logs.json").read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = DATA["cases"]


def mib(n: float) -> str:
    """llama.cpp prints (float)bytes / (1024.0f*1024.0f) with %.2f."""
    return f"{float(np.float32(n) / np.float32(1024 * 1024)):.2f}"


def model_of(name: str) -> ModelSpec:
    m = DATA["models"][name]
    return ModelSpec(
        name=name,
        layers=[LayerGroup(**g) for g in m["layers"]],
        hidden_size=m["hidden_size"],
        n_heads=m["n_heads"],
        vocab_size=m["vocab_size"],
        params_total=10**9,
    )


def plan_of(case: dict[str, Any], engine: str = "llama.cpp") -> Plan:
    run = case["run"]
    keys = ("flash_attn", "kv_unified", "swa_full", "ubatch", "batch_tokens", "rs_seq")
    settings = {k: run[k] for k in keys if k in run}
    return Plan(
        model=model_of(case["model"]),
        gpu=custom_gpu(80),
        gpu_count=run.get("gpus", 1),
        workload=Workload(
            context=run["ctx"], batch=run["batch"], kv_dtype_k=run["kv_dtype_k"], kv_dtype_v=run["kv_dtype_v"]
        ),
        engine=EngineSettings(name=engine, version=case["engine_version"], **settings),
    )


def test_at_least_eight_real_cases_beyond_the_validation_set() -> None:
    extra = [c for c in CASES if "validation" not in c["source"]]
    assert len(extra) >= 8
    assert all(c["log"] and c["source"] for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_cells_and_bytes_match_the_log(case: dict[str, Any]) -> None:
    plan = plan_of(case)
    eng = get_engine("llama.cpp")
    assert isinstance(eng, LlamaCppEngine)
    run = case["run"]
    cells = eng.cells(plan, run["ctx"], run["batch"])
    layout = eng.layout(plan)
    total = 0
    for want in case["expect"]["caches"]:
        window = want.get("window", 0)
        key = f"swa{window}" if window else "base"
        group = next(g for g in layout.groups if g.window == window)
        n_cells = int(cells[key])
        streams = int(cells["streams"])
        # the DSA lightning-indexer cache (llama_kv_cache_dsa's second cache) shares the base cells
        indexer = want.get("indexer", False)
        n_layers = group.idx_layers if indexer else group.n_layers
        assert (n_cells, streams, n_layers) == (want["cells"], want["streams"], want["layers"])
        k = (group.idx_row if indexer else group.k_row - group.idx_row) * n_cells * streams
        v = 0 if indexer else group.v_row * n_cells * streams
        assert (mib(k), mib(v)) == (want["k_mib"], want["v_mib"])
        total += k + v
    bd = calculate(plan)
    assert bd.kv_cache_bytes == total
    assert bd.extra["kv_cells"] == case["expect"]["caches"][0]["cells"]
    if "recurrent_mib" in case["expect"]:
        assert mib(bd.recurrent_state_bytes) == case["expect"]["recurrent_mib"]
    else:
        assert bd.recurrent_state_bytes == 0
    if "per_device_kv_mib" in case["expect"]:
        assert [mib(d.kv_cache_bytes) for d in bd.per_device] == case["expect"]["per_device_kv_mib"]


COMPUTE = json.loads((HERE / "compute_buffers.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", COMPUTE["cases"], ids=[c["id"] for c in COMPUTE["cases"]])
def test_compute_buffer_estimate_within_15_percent(case: dict[str, Any]) -> None:
    run = case["run"]
    kv = run.get("kv_dtype", "f16")
    fake = {
        "model": case["model"],
        "engine_version": case["engine_version"],
        "run": {**run, "kv_dtype_k": kv, "kv_dtype_v": kv},
    }
    bd = calculate(plan_of(fake))
    est = bd.per_device[-1].compute_bytes  # the device holding the output layer
    observed = case["observed_mib"] * 1024 * 1024
    assert abs(est - observed) / observed < 0.15, f"estimate {est / 2**20:.2f} MiB vs {case['observed_mib']} MiB"
