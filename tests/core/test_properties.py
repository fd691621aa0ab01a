"""Property tests over random models and plans, for every engine profile that is importable.

- more context or more sequences never needs less memory;
- ``max_context`` is the largest context that fits (it fits, one token more does not), ``max_batch``
  likewise, and both agree with ``fits``;
- per-device figures add up to the totals, and the KV bytes are what the engine's cache rule says.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kvdesk.core.breakdown import Breakdown
from kvdesk.core.calculator import calculate
from kvdesk.core.engines import get_engine
from kvdesk.core.engines.vllm import VllmEngine
from kvdesk.core.errors import InputError
from kvdesk.core.gpu import GpuSpec
from kvdesk.core.model import LayerGroup, ModelSpec
from kvdesk.core.plan import EngineSettings, Plan, Workload

GIB = 1 << 30
ENGINES = ["generic", "vllm"] + [
    name
    for name, module in (("llama.cpp", "kvdesk.core.engines.llamacpp"), ("ollama", "kvdesk.core.engines.ollama"))
    if importlib.util.find_spec(module) is not None
]
KV_DTYPES = {
    "generic": ["auto", "f16", "fp8", "q8_0", "q4_0"],
    "vllm": ["auto", "f16", "bf16", "fp8"],
    "llama.cpp": ["f16", "q8_0", "q4_0"],
    "ollama": ["f16", "q8_0", "q4_0"],
}
PROPS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def models(draw: st.DrawFn) -> ModelSpec:
    kv = draw(st.sampled_from([1, 2, 4, 8, 16]))
    head = draw(st.sampled_from([64, 80, 128, 256]))
    kinds = draw(st.lists(st.sampled_from(["full", "full", "sliding"]), min_size=1, max_size=3))
    layers = []
    for kind in kinds:
        count = draw(st.integers(1, 48))
        window = draw(st.sampled_from([128, 1024, 4096])) if kind == "sliding" else None
        layers.append(
            LayerGroup(count=count, kind=kind, n_kv_heads=kv, head_dim_k=head, head_dim_v=head, window=window)
        )
    if draw(st.booleans()) and draw(st.booleans()):
        layers = [LayerGroup(count=draw(st.integers(1, 64)), kind="mla", kv_lora_rank=512, rope_dim=64)]
    params = draw(st.integers(100_000_000, 40_000_000_000))
    return ModelSpec(
        name="random",
        layers=layers,
        params_total=params,
        n_heads=kv * 4,
        hidden_size=kv * 4 * head,
        vocab_size=draw(st.sampled_from([32000, 128256, 256000])),
        native_context=draw(st.sampled_from([8192, 131072])),
    )


@st.composite
def plans(draw: st.DrawFn, engine: str) -> Plan:
    model = draw(models())
    tp = draw(st.sampled_from([1, 2, 4])) if engine == "vllm" else 1
    gpus = tp if engine == "vllm" else draw(st.integers(1, 4))
    dtype = draw(st.sampled_from(KV_DTYPES[engine]))
    settings_: dict[str, object] = {"name": engine, "tp": tp}
    if engine == "vllm" and draw(st.booleans()):
        settings_["kv_cache_memory"] = draw(st.integers(GIB // 4, 40 * GIB))
    if engine in ("llama.cpp", "ollama") and dtype != "f16":
        settings_["flash_attn"] = True
    return Plan(
        model=model,
        gpu=GpuSpec(name="gpu", memory_bytes=draw(st.integers(8, 192)) * GIB),
        gpu_count=gpus,
        workload=Workload(
            context=draw(st.integers(1, 65536)), batch=draw(st.integers(1, 64)), kv_dtype_k=dtype, kv_dtype_v=dtype
        ),
        engine=EngineSettings.model_validate(settings_),
    )


def _calc(plan: Plan) -> Breakdown:
    try:
        return calculate(plan)
    except InputError:
        assume(False)  # a combination the engine rightly refuses (its message is tested elsewhere)
        raise


@pytest.mark.parametrize("engine", ENGINES)
@PROPS
@given(data=st.data())
def test_more_context_or_batch_never_needs_less(engine: str, data: st.DataObject) -> None:
    plan = data.draw(plans(engine))
    w = plan.workload
    base = _calc(plan)
    more_ctx = _calc(plan.with_workload(context=w.context + data.draw(st.integers(1, 50_000))))
    more_batch = _calc(plan.with_workload(batch=w.batch + data.draw(st.integers(1, 64))))
    assert more_ctx.total_bytes >= base.total_bytes
    assert more_ctx.kv_cache_bytes + more_ctx.recurrent_state_bytes >= base.kv_cache_bytes + base.recurrent_state_bytes
    assert more_batch.total_bytes >= base.total_bytes
    assert not (more_ctx.fits and not base.fits) and not (more_batch.fits and not base.fits)


@pytest.mark.parametrize("engine", ENGINES)
@PROPS
@given(data=st.data())
def test_max_context_is_the_largest_that_fits(engine: str, data: st.DataObject) -> None:
    plan = data.draw(plans(engine))
    bd = _calc(plan)
    limit = plan.model.native_context
    if bd.max_context == 0:
        assert not _calc(plan.with_workload(context=1)).fits
        return
    assert 1 <= bd.max_context <= limit
    assert _calc(plan.with_workload(context=bd.max_context)).fits
    if bd.max_context < limit:
        assert not _calc(plan.with_workload(context=bd.max_context + 1)).fits
    if plan.workload.context <= limit:  # max_context stops at the model's native context
        assert bd.fits == (plan.workload.context <= bd.max_context)


@pytest.mark.parametrize("engine", ENGINES)
@PROPS
@given(data=st.data())
def test_max_batch_is_the_largest_that_fits(engine: str, data: st.DataObject) -> None:
    plan = data.draw(plans(engine))
    bd = _calc(plan)
    if bd.max_batch == 0:
        assert not _calc(plan.with_workload(batch=1)).fits
        return
    assert _calc(plan.with_workload(batch=bd.max_batch)).fits
    if bd.max_batch < 1 << 16:
        assert not _calc(plan.with_workload(batch=bd.max_batch + 1)).fits
    assert bd.fits == (plan.workload.batch <= bd.max_batch)


@pytest.mark.parametrize("engine", ENGINES)
@PROPS
@given(data=st.data())
def test_per_device_sums_equal_totals(engine: str, data: st.DataObject) -> None:
    plan = data.draw(plans(engine))
    bd = _calc(plan)
    js = bd.to_json()
    for key in ("kv_cache_bytes", "k_cache_bytes", "v_cache_bytes", "weights_bytes", "overhead_bytes", "total_bytes"):
        assert js[key] == sum(d[key] for d in js["per_device"]), key
    assert js["kv_cache_bytes"] == js["k_cache_bytes"] + js["v_cache_bytes"]
    for d in js["per_device"]:
        assert d["total_bytes"] == (
            d["weights_bytes"] + d["kv_cache_bytes"] + d["recurrent_state_bytes"] + d["overhead_bytes"]
        )
        assert d["spill_bytes"] == max(0, d["total_bytes"] - d["budget_bytes"])
    assert js["spill_bytes"] == sum(d["spill_bytes"] for d in js["per_device"])
    assert plan.model.weights_bytes() - len(bd.per_device) <= bd.weights_bytes <= plan.model.weights_bytes()
    cache = get_engine(engine).cache(plan, plan.workload.context, plan.workload.batch)
    need = float(np.asarray(cache.total).reshape(-1)[0])
    if engine == "vllm":
        # vLLM reports the pool it allocates, or the batch's need when that is larger (then no fit)
        vllm = get_engine("vllm")
        assert isinstance(vllm, VllmEngine)
        pool = bd.extra["num_gpu_blocks"] * sum(vllm.state(plan).device_block_bytes())
        assert bd.kv_cache_bytes == pytest.approx(max(pool, need), abs=len(bd.per_device))
    else:
        assert bd.kv_cache_bytes + bd.recurrent_state_bytes == pytest.approx(need, abs=2 * len(bd.per_device) + 2)
