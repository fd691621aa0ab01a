"""Core planner speed: ``calculate()`` on a 128-layer model and a 128 × 128 context × batch sweep.

Run alone: ``python benchmarks/core_speed.py``. Prints a few readable lines, then ONE JSON object on
the last line with ``calculate_us_median`` (worst engine), per-engine medians, ``sweep_128x128_ms``,
``baseline_loop_ms`` (a plain-Python loop over the same grid) and ``speedup``.
Targets (issue 4): calculate ≤ 100 µs, sweep ≤ 10 ms.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from kvdesk.core.calculator import calculate, sweep
from kvdesk.core.dtypes import kv_type
from kvdesk.core.gpu import GpuSpec
from kvdesk.core.model import LayerGroup, ModelSpec
from kvdesk.core.plan import EngineSettings, Plan, Workload

GIB = 1 << 30
REPEATS = 400


def model_128_layers() -> ModelSpec:
    """A 128-layer GQA model (8 KV heads × 128), 30B parameters in bf16: fits one H200."""
    group = LayerGroup(count=128, kind="full", n_kv_heads=8, head_dim_k=128, head_dim_v=128)
    return ModelSpec(
        name="bench-128L",
        layers=[group],
        hidden_size=4096,
        n_heads=32,
        vocab_size=128256,
        native_context=131072,
        params_total=30_000_000_000,
    )


def plan_for(engine: str, tp: int = 1) -> Plan:
    return Plan(
        model=model_128_layers(),
        gpu=GpuSpec(name="H200", memory_bytes=141 * GIB, bandwidth_bytes_per_s=4.8e12),
        gpu_count=tp,
        workload=Workload(context=32768, batch=4),
        engine=EngineSettings.model_validate({"name": engine, "tp": tp}),
    )


def timings_us(fn: Callable[[], object], repeats: int = REPEATS) -> list[float]:
    fn()  # warm caches
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e6)
    return times


def median_us(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    return statistics.median(timings_us(fn, repeats))


def baseline_loop(plan: Plan, contexts: list[int], batches: list[int]) -> list[list[float]]:
    """The same KV grid with plain Python: per cell, per layer, K and V rows × tokens."""
    t = kv_type(plan.workload.kv_dtype_k, plan.model.dtype)
    out = []
    for c in contexts:
        row = []
        for b in batches:
            kv = 0.0
            for layer in plan.model.iter_layers():
                kv += (t.row_bytes(layer.k_width()) + t.row_bytes(layer.v_width())) * c * b
            row.append(kv)
        out.append(row)
    return out


def main() -> dict[str, object]:
    engines = ["generic", "vllm"]
    if importlib.util.find_spec("kvdesk.core.engines.llamacpp") is not None:
        engines.append("llama.cpp")
    calc, calc_min = {}, {}
    for name in engines:
        times = timings_us(functools.partial(calculate, plan_for(name)))
        calc[name], calc_min[name] = round(statistics.median(times), 1), round(min(times), 1)
    # the GUI's case: every call a new plan (another context or batch) of the same model and GPU,
    # so nothing keyed on the workload is reused between calls
    varying = {}
    for name in engines:
        start = plan_for(name)
        plans = [
            start.with_workload(context=int(c), batch=1 + i % 8)
            for i, c in enumerate(np.linspace(2048, 65536, REPEATS).astype(int))
        ]
        it = iter(plans * 2)
        times = timings_us(lambda it=it: calculate(next(it)))  # type: ignore[misc]
        varying[name] = round(statistics.median(times), 1)
    tp8 = plan_for("vllm", tp=8)
    vllm_tp8_us = round(median_us(lambda: calculate(tp8)), 1)
    plan = plan_for("generic")
    contexts = np.linspace(1024, 131072, 128).astype(np.int64)
    batches = np.arange(1, 129, dtype=np.int64)
    sweep_ms = median_us(lambda: sweep(plan, contexts, batches), 50) / 1000
    vllm_sweep_ms = median_us(lambda: sweep(plan_for("vllm"), contexts, batches), 50) / 1000
    t0 = time.perf_counter()
    base = baseline_loop(plan, contexts.tolist(), batches.tolist())
    baseline_ms = (time.perf_counter() - t0) * 1000
    check = sweep(plan, contexts, batches).kv_bytes[0]
    assert np.allclose(check, np.array(base)), "sweep and baseline disagree"
    result: dict[str, object] = {
        "calculate_us_median": max(calc.values()),
        "calculate_us_median_by_engine": calc,
        "calculate_us_min_by_engine": calc_min,
        "calculate_us_median_varying_workload_by_engine": varying,
        "calculate_us_median_vllm_tp8": vllm_tp8_us,
        "sweep_128x128_ms": round(sweep_ms, 3),
        "sweep_128x128_ms_vllm": round(vllm_sweep_ms, 3),
        "baseline_loop_ms": round(baseline_ms, 1),
        "speedup": round(baseline_ms / sweep_ms, 1),
        "model_layers": 128,
        "targets": {"calculate_us_median": 100, "sweep_128x128_ms": 10},
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    return result


if __name__ == "__main__":
    res = main()
    print(f"calculate() median per engine (µs): {res['calculate_us_median_by_engine']}")
    print(f"  min (µs): {res['calculate_us_min_by_engine']}")
    print(f"  a new context/batch every call (µs): {res['calculate_us_median_varying_workload_by_engine']}")
    print(f"  vLLM TP8 (µs): {res['calculate_us_median_vllm_tp8']}; load average {res['load_average_1min']}")
    print(f"sweep 128×128: {res['sweep_128x128_ms']} ms (plain loop {res['baseline_loop_ms']} ms)")
    print(json.dumps(res))
