"""The guided limit search (engines/search.py + each engine's closed-form guesses) is exact.

- search.py: for a monotone predicate, a guided search returns what the plain k-ary search returns,
  whatever the guess (right, wrong, infinite, NaN); ``solve_piecewise`` agrees with brute force.
- every engine: ``calculate().max_context`` / ``max_batch`` equal the plain k-ary search over the
  engine's exact ``fits_mask`` (the pre-closed-form algorithm) on random hybrid plans: sliding and
  chunked windows, padding by build, per-sequence streams, unified caches, recurrent state, MLA,
  several devices, vLLM blocks, Ollama versions.
- the closed forms are really used: the benchmark-like plans settle both limits in one call.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kvdesk.core.calculator import calculate
from kvdesk.core.engines import base as engine_base
from kvdesk.core.engines import get_engine
from kvdesk.core.engines.search import Guess, largest_true, largest_true_pair, solve_piecewise
from kvdesk.core.errors import InputError
from kvdesk.core.gpu import GpuSpec
from kvdesk.core.model import LayerGroup, ModelSpec
from kvdesk.core.plan import MAX_BATCH, MAX_CONTEXT, EngineSettings, Plan, Workload

GIB = 1 << 30
PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LLAMA_BUILDS = [
    None,
    "b2800",
    "b3000",
    "b5200",
    "b5500",
    "b6100",
    "b6700",
    "b6900",
    "b7000",
    "b7900",
    "b8000",
    "ik_llama",
]
OLLAMA_VERSIONS = [None, "0.6.8", "0.11.5", "0.12.4", "0.13.2", "0.30.0", "b7108"]


# -- search.py ---------------------------------------------------------------------------------
guesses = st.one_of(
    st.none(),
    st.builds(Guess, st.floats(-1e6, 3e5), st.floats(-1e6, 3e5)),
    st.sampled_from([Guess(math.inf, math.inf), Guess(-math.inf, -math.inf), Guess(math.nan, 1.0)]),
)


@settings(max_examples=300, deadline=None)
@given(
    a=st.integers(0, 200_000),
    b=st.integers(0, 70_000),
    step=st.sampled_from([1, 7, 256]),
    g0=guesses,
    g1=guesses,
    near=st.booleans(),
)
def test_guided_search_equals_plain_search(
    a: int, b: int, step: int, g0: Guess | None, g1: Guess | None, near: bool
) -> None:
    # monotone step predicates: ctx ≤ a (rounded to `step`), batch ≤ b
    def pred(c: np.ndarray, n: np.ndarray) -> np.ndarray:
        return np.asarray((-(-c // step) * step <= a) & (n <= b))

    if near:  # a guess around the true answer, as an engine's closed form gives
        g0, g1 = Guess(a - step, a + 1), Guess(b - 1, b + 1)
    first, second = (1, 131072, 1), (1, MAX_BATCH, 1)
    plain = largest_true_pair(pred, first, second)
    assert largest_true_pair(pred, first, second, guesses=(g0, g1)) == plain
    assert plain == (
        largest_true(lambda c: pred(c, np.ones_like(c)), 1, 131072),
        largest_true(lambda n: pred(np.ones_like(n), n), 1, MAX_BATCH),
    )


def test_a_good_guess_settles_in_one_call() -> None:
    calls = []

    def pred(c: np.ndarray, n: np.ndarray) -> np.ndarray:
        calls.append(c.size)
        return np.asarray((c <= 40_000) & (n <= 17))

    got = largest_true_pair(pred, (1, 131072, 1), (1, MAX_BATCH, 1), guesses=(Guess(39_990, 40_010), Guess(16, 18)))
    assert got == (40_000, 17) and len(calls) == 1
    calls.clear()  # a wrong guess costs rounds, not accuracy
    assert largest_true_pair(pred, (1, 131072, 1), (1, MAX_BATCH, 1), guesses=(Guess(5, 9), Guess(900, 901))) == got
    assert len(calls) > 1


RATES = st.one_of(st.just(0.0), st.floats(1e-3, 10))  # bytes per token: zero or a real rate


@settings(max_examples=300, deadline=None)
@given(
    const=st.floats(0, 1e3),
    slope=RATES,
    capped=st.lists(st.tuples(RATES, st.floats(0.5, 500)), max_size=3),
    kq=RATES,
    floor_=st.floats(0, 1e3),
    budget=st.floats(0, 5e3),
)
def test_solve_piecewise_matches_brute_force(
    const: float, slope: float, capped: list[tuple[float, float]], kq: float, floor_: float, budget: float
) -> None:
    def f(x: float) -> float:
        return const + slope * x + sum(a * min(x, cap) for a, cap in capped) + max(kq * x, floor_)

    x = solve_piecewise(const, slope, capped, kq, floor_, budget)
    if f(0.0) > budget:
        assert x == -1.0
        return
    if math.isinf(x):
        assert f(1e9) <= budget * (1 + 1e-9) + 1e-6
        return
    assert f(x) == pytest.approx(budget, rel=1e-6, abs=1e-6)  # on the boundary …
    assert f(x + 1.0) > budget - 1e-6  # … and past it f only grows


# -- engines -----------------------------------------------------------------------------------
@st.composite
def hybrid_models(draw: st.DrawFn) -> ModelSpec:
    kv = draw(st.sampled_from([1, 2, 8]))
    head = draw(st.sampled_from([64, 128, 256]))
    layers = []
    for kind in draw(
        st.lists(st.sampled_from(["full", "sliding", "chunked", "recurrent", "mla", "none"]), min_size=1, max_size=4)
    ):
        count = draw(st.integers(1, 40))
        if kind in ("full", "sliding", "chunked"):
            window = draw(st.sampled_from([128, 512, 1024, 4096])) if kind != "full" else None
            hv = draw(st.sampled_from([head, 128]))
            layers.append(
                LayerGroup(count=count, kind=kind, n_kv_heads=kv, head_dim_k=head, head_dim_v=hv, window=window)
            )
        elif kind == "mla":
            layers.append(LayerGroup(count=count, kind="mla", kv_lora_rank=512, rope_dim=64))
        elif kind == "recurrent":
            layers.append(
                LayerGroup(count=count, kind="recurrent", state_bytes=draw(st.sampled_from([1 << 16, 3 << 20])))
            )
        else:
            layers.append(LayerGroup(count=count, kind="none"))
    return ModelSpec(
        name="hybrid",
        architecture=draw(st.sampled_from(["", "gemma3", "llama", "gpt-oss"])),
        layers=layers,
        params_total=draw(st.integers(100_000_000, 30_000_000_000)),
        n_heads=kv * 4,
        hidden_size=kv * 4 * head,
        vocab_size=draw(st.sampled_from([32000, 256000])),
        native_context=draw(st.sampled_from([0, 8192, 131072])),
    )


@st.composite
def hybrid_plans(draw: st.DrawFn, engine: str) -> Plan:
    s: dict[str, object] = {"name": engine}
    gpus = draw(st.integers(1, 3))
    dtype = "auto"
    if engine in ("llama.cpp", "ollama"):
        s["version"] = draw(st.sampled_from(LLAMA_BUILDS if engine == "llama.cpp" else OLLAMA_VERSIONS))
        s["flash_attn"] = draw(st.sampled_from([None, True, False]))
        s["kv_unified"] = draw(st.sampled_from([None, True, False]))
        s["swa_full"] = draw(st.booleans())
        s["ubatch"] = draw(st.sampled_from([256, 512, 4096]))
        dtype = draw(st.sampled_from(["f16", "q8_0"]))
        if dtype != "f16":
            s["flash_attn"] = True
    elif engine == "vllm":
        s["tp"] = gpus = draw(st.sampled_from([1, 2]))
        s["block_size"] = draw(st.sampled_from([16, 64]))
        s["version"] = draw(st.sampled_from([None, "0.8.5", "0.19.0"]))
        dtype = draw(st.sampled_from(["auto", "fp8"]))
    else:
        dtype = draw(st.sampled_from(["auto", "q8_0"]))
    return Plan(
        model=draw(hybrid_models()),
        gpu=GpuSpec(name="gpu", memory_bytes=draw(st.integers(4, 160)) * GIB),
        gpu_count=gpus,
        workload=Workload(
            context=draw(st.one_of(st.integers(1, 300), st.integers(1, 200_000))),
            batch=draw(st.one_of(st.integers(1, 8), st.integers(1, 300))),
            kv_dtype_k=dtype,
            kv_dtype_v=dtype,
        ),
        engine=EngineSettings.model_validate(s),
    )


@pytest.mark.parametrize("engine", ["generic", "llama.cpp", "ollama", "vllm"])
@PROPS
@given(data=st.data())
def test_limits_equal_the_plain_search(engine: str, data: st.DataObject) -> None:
    plan = data.draw(hybrid_plans(engine))
    try:
        bd = calculate(plan)
    except InputError:
        assume(False)
        raise
    prof = get_engine(engine)
    fixed = prof.fixed(plan)
    w = plan.workload
    if engine == "vllm":  # closed forms of its own (blocks): compare with its fits_mask directly
        limit = max(plan.model.native_context or MAX_CONTEXT, 1)
        ctx, batch = prof.max_context(plan, fixed, w.batch), prof.max_batch(plan, fixed, w.context)
        assert (bd.max_context, bd.max_batch) == (ctx, batch)
        if 0 < ctx < limit:
            assert not prof.fits_mask(plan, np.array([ctx + 1]), np.array([w.batch]), fixed)[0]
        return
    limit = max(plan.model.native_context or MAX_CONTEXT, 1)
    plain = largest_true_pair(
        lambda c, b: prof.fits_mask(plan, c, b, fixed), (1, limit, w.batch), (1, MAX_BATCH, w.context)
    )
    assert (bd.max_context, bd.max_batch) == plain


def _bench_plan(engine: str, **settings_: object) -> Plan:
    group = LayerGroup(count=128, kind="full", n_kv_heads=8, head_dim_k=128, head_dim_v=128)
    model = ModelSpec(
        name="bench",
        layers=[group],
        hidden_size=4096,
        n_heads=32,
        vocab_size=128256,
        native_context=131072,
        params_total=30_000_000_000,
    )
    return Plan(
        model=model,
        gpu=GpuSpec(name="H200", memory_bytes=141 * GIB),
        workload=Workload(context=32768, batch=4),
        engine=EngineSettings.model_validate({"name": engine, **settings_}),
    )


def _gemma_like(engine: str, **settings_: object) -> Plan:
    layers = [
        LayerGroup(count=5, kind="sliding", n_kv_heads=16, head_dim_k=128, head_dim_v=128, window=1024),
        LayerGroup(count=1, kind="full", n_kv_heads=16, head_dim_k=128, head_dim_v=128),
    ] * 8
    model = ModelSpec(
        name="gemma-like",
        architecture="gemma3",
        layers=layers,
        hidden_size=5376,
        n_heads=32,
        vocab_size=262144,
        native_context=131072,
        params_total=27_000_000_000,
    )
    return Plan(
        model=model,
        gpu=GpuSpec(name="RTX", memory_bytes=80 * GIB),
        workload=Workload(context=20000, batch=3),
        engine=EngineSettings.model_validate({"name": engine, **settings_}),
    )


@pytest.mark.parametrize(
    "plan",
    [
        _bench_plan("generic"),
        _bench_plan("llama.cpp"),
        _bench_plan("llama.cpp", kv_unified=True),
        _bench_plan("llama.cpp", version="b6100", flash_attn=False),
        _bench_plan("ollama"),
        _gemma_like("generic"),
        _gemma_like("llama.cpp"),
        _gemma_like("llama.cpp", version="b6700"),
    ],
    ids=[
        "generic",
        "llama",
        "llama-unified",
        "llama-b6100-noFA",
        "ollama",
        "generic-swa",
        "llama-swa",
        "llama-swa-b6700",
    ],
)
def test_closed_form_settles_the_limits_in_one_call(plan: Plan, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = engine_base.largest_true_pair

    def counting(pred, *args, **kwargs):  # type: ignore[no-untyped-def]
        def counted(c: np.ndarray, b: np.ndarray) -> np.ndarray:
            calls.append(c.size)
            return pred(c, b)

        return real(counted, *args, **kwargs)

    monkeypatch.setattr(engine_base, "largest_true_pair", counting)
    bd = calculate(plan)
    assert len(calls) == 1, calls
    assert bd.max_context > 0 and bd.max_batch > 0


@pytest.mark.parametrize("engine", ["generic", "llama.cpp", "ollama", "vllm"])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_memos_never_leak_between_workloads(engine: str, data: st.DataObject) -> None:
    """The GUI recomputes one model at ever new contexts and batches: each result must equal the one
    for a fresh copy of the model (which shares no memo entry)."""
    plan = data.draw(hybrid_plans(engine))
    workloads = data.draw(st.lists(st.tuples(st.integers(1, 100_000), st.integers(1, 64)), min_size=2, max_size=5))
    for ctx, batch in workloads:
        p = plan.with_workload(context=ctx, batch=batch)
        fresh = p.model_copy(update={"model": ModelSpec.model_validate(p.model.model_dump())})
        try:
            got = calculate(p).model_dump()
        except InputError:
            continue
        assert got == calculate(fresh).model_dump()


@pytest.mark.parametrize("flash_attn", [True, False])
def test_llamacpp_compute_follows_the_context_without_flash_attention(flash_attn: bool) -> None:
    plan = _bench_plan("llama.cpp", flash_attn=flash_attn)
    results = []
    for ctx in (1024, 100_000, 1024):
        p = plan.with_workload(context=ctx)
        fresh = p.model_copy(update={"model": ModelSpec.model_validate(p.model.model_dump())})
        got = calculate(p)
        assert got.model_dump() == calculate(fresh).model_dump()
        results.append(got.compute_bytes)
    # the KQ matrix (n_head × n_kv × n_ubatch × 4 B) grows with the cells only without flash attention
    assert (results[1] > results[0]) == (not flash_attn) and results[2] == results[0]
