"""Verdict wording: fits / tight / spills (llama.cpp-like engines) / does not fit (vLLM)."""

from __future__ import annotations

from kvdesk.core.calculator import calculate
from kvdesk.core.gpu import GIB, custom_gpu
from kvdesk.core.model import uniform_model
from kvdesk.core.plan import EngineSettings, Plan, Workload
from kvdesk.core.verdict import verdict


def _plan(vram_gib: float, engine: str = "generic") -> Plan:
    model = uniform_model("m", 32, 8, 128, params_total=8 * 10**9, dtype="bf16")
    return Plan(model=model, gpu=custom_gpu(vram_gib), workload=Workload(context=4096),
                engine=EngineSettings(name=engine))  # type: ignore[arg-type]


def test_fits_and_tight_threshold() -> None:
    bd = calculate(_plan(40))
    assert verdict(bd).kind == "fits" and verdict(bd).headline.startswith("Fits — ")
    # budget such that headroom is just under 5 % of it
    need = bd.total_bytes
    tight = calculate(_plan(need / 0.96 / GIB))
    assert verdict(tight).kind == "tight"
    roomy = calculate(_plan(need / 0.94 / GIB))
    assert verdict(roomy).kind == "fits"


def test_spill_names_bytes_and_slowdown() -> None:
    bd = calculate(_plan(10))
    v = verdict(bd)
    assert v.kind == "spills"
    assert "to system RAM" in v.headline and "slower" in v.headline


def test_vllm_never_claims_to_spill() -> None:
    bd = calculate(_plan(10, "vllm"))
    v = verdict(bd)
    assert not bd.fits
    assert v.kind == "no_fit" and v.headline.startswith("Does not fit")
