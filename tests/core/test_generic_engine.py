"""Generic engine: reproduces the textbook worked examples to the byte (shared/validation)."""

from __future__ import annotations

import pytest

from kvdesk.core.calculator import calculate
from kvdesk.core.gpu import custom_gpu
from kvdesk.core.model import uniform_model
from kvdesk.core.plan import Plan, Workload
from tests.conftest import load_validation

EXAMPLES = load_validation("worked_examples.json")


def _plan(case: dict) -> Plan:
    arch, run = case["arch"], case["run"]
    model = uniform_model("m", arch["n_layers"], arch["n_kv_heads"], arch["head_dim"], params_total=10**9)
    work = Workload(context=run["ctx"], batch=run["batch"], kv_dtype_k=run["kv_dtype"], kv_dtype_v=run["kv_dtype"])
    return Plan(model=model, gpu=custom_gpu(80), workload=work)


@pytest.mark.parametrize("case", EXAMPLES, ids=[c["id"] for c in EXAMPLES])
def test_worked_examples_to_the_byte(case: dict) -> None:
    bd = calculate(_plan(case))
    expected = case["expected"]
    assert bd.kv_cache_bytes == expected["kv_cache_bytes"]
    if "kv_bytes_per_token" in expected:
        assert bd.kv_bytes_per_token == expected["kv_bytes_per_token"]
    if "kv_bytes_per_sequence" in expected:
        assert bd.kv_cache_bytes // case["run"]["batch"] == expected["kv_bytes_per_sequence"]


def test_max_context_is_the_largest_that_fits() -> None:
    plan = _plan(EXAMPLES[3]).model_copy(update={"gpu": custom_gpu(8)})
    bd = calculate(plan)
    assert bd.max_context > 0
    at_max = calculate(plan.with_workload(context=bd.max_context))
    beyond = calculate(plan.with_workload(context=bd.max_context + 1))
    assert at_max.fits and not beyond.fits


def test_decode_time_units() -> None:
    # worked example note: 512 MiB of KV at 3.35 TB/s is ≈0.16 ms, not 149 ms
    plan = _plan(EXAMPLES[3])
    plan = plan.model_copy(update={"gpu": plan.gpu.model_copy(update={"bandwidth_bytes_per_s": 3.35e12})})
    bd = calculate(plan)
    weights_ms = plan.model.weights_bytes() / 3.35e12 * 1e3
    assert bd.decode_ms_per_token - weights_ms == pytest.approx(0.16, abs=0.01)


def test_plan_copies_are_validated() -> None:
    from pydantic import ValidationError

    plan = _plan(EXAMPLES[0])
    with pytest.raises(ValidationError):
        plan.with_workload(context=0)
    with pytest.raises(ValidationError):
        plan.with_workload(kv_dtype_k="nonsense")
    with pytest.raises(ValidationError):
        plan.with_engine(gpu_memory_utilization=1.5)
    assert plan.with_workload(context=1024).workload.context == 1024
