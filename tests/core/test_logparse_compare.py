"""compare_log / --from-log: each observed figure beside the prediction, per device, and calibration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kvdesk.cli import main
from kvdesk.core.calculator import calculate
from kvdesk.core.defaults import default_plan
from kvdesk.core.errors import InputError
from kvdesk.core.gpu import custom_gpu
from kvdesk.core.logparse import compare_log, parse_log
from kvdesk.core.logparse_compare import compare, suggest_calibration
from kvdesk.core.plan import Plan

MIB, GIB = 1 << 20, 1 << 30
LOGS = Path(__file__).resolve().parents[1] / "data" / "logs"
VLLM_LOG = LOGS / "vllm_0.19_llama31_8b_h100.log"


def vllm_plan() -> Plan:
    """The run in VLLM_LOG: Llama 3.1 8B, one H100 (79.19 GiB seen by torch), util 0.95, 8192 tokens."""
    plan = default_plan().with_engine(name="vllm", gpu_memory_utilization=0.95)
    return plan.model_copy(update={"gpu": custom_gpu(79.19, "H100")}).with_workload(context=8192, batch=1)


def test_vllm_figures_have_prediction_and_difference() -> None:
    plan = vllm_plan()
    bd = calculate(plan)
    out = compare_log(VLLM_LOG, plan, bd)
    figs = out["figures"]
    assert figs["weights_bytes"]["observed"] == round(14.99 * GIB)
    assert figs["weights_bytes"]["predicted"] == bd.weights_bytes
    assert figs["weights_bytes"]["difference"] == round(14.99 * GIB) - bd.weights_bytes
    assert figs["kv_tokens"]["observed"] == 476016 and isinstance(figs["kv_tokens"]["observed"], int)
    assert figs["max_concurrency"]["observed"] == 58.11
    if "kv_cache_tokens" in bd.extra:  # the vLLM profile reports its token count
        assert figs["kv_tokens"]["predicted"] == bd.extra["kv_cache_tokens"]
    assert out["settings"]["context"]["observed"] == 8192 and out["settings"]["context"]["difference"] == 0
    assert out["engine"] == "vllm" and out["file"] == str(VLLM_LOG)
    json.dumps(out)  # JSON-ready


def test_calibration_closes_the_overhead_gap() -> None:
    plan = vllm_plan()
    bd = calculate(plan)
    observed = parse_log(VLLM_LOG.read_text())
    cal = suggest_calibration(observed, plan, bd, source="vllm_0.19 log")
    assert cal is not None and cal.source == "vllm_0.19 log"
    seen = round(1.89 * GIB) + round(0.25 * GIB) + round(0.91 * GIB)  # activation + non-torch + CUDA graphs
    assert cal.observed["overhead_bytes"] == seen
    assert cal.overhead_delta_bytes == seen - bd.overhead_bytes
    calibrated = plan.model_copy(update={"calibration": cal})
    after = compare(observed, calibrated, calculate(calibrated)).figure("overhead_bytes")
    assert after is not None and abs(after.difference or 0) <= 1
    # calibrating again from the calibrated plan keeps the same correction
    again = suggest_calibration(observed, calibrated, calculate(calibrated))
    assert again is not None and abs(again.overhead_delta_bytes - cal.overhead_delta_bytes) <= 1


def test_llamacpp_devices_pair_with_the_plan_devices() -> None:
    plan = default_plan().model_copy(update={"gpu_count": 2}).with_workload(context=4096)
    bd = calculate(plan)
    out = compare_log(LOGS / "llamacpp_b6209_rpc_llama31_70b.log", plan, bd)
    assert [d["device"] for d in out["per_device"]] == ["RPC[172.31.27.42:50052]", "RPC[172.31.20.38:50052]"]
    first = out["per_device"][0]
    assert first["plan_device"] == bd.per_device[0].name
    assert first["kv_cache_bytes"]["observed"] == 656 * MIB
    assert first["kv_cache_bytes"]["predicted"] == bd.per_device[0].kv_cache_bytes
    assert out["figures"]["kv_cache_bytes"]["observed"] == 1280 * MIB
    assert out["figures"]["k_cache_bytes"]["predicted"] == bd.k_cache_bytes
    assert out["kv_caches"][0]["cells"] == 4096
    assert not any("device(s)" in w for w in out["warnings"])


def test_device_count_mismatch_is_a_warning_not_a_guess() -> None:
    plan = default_plan()
    out = compare_log(LOGS / "ikllama_2025_deepseek_r1_mla_3gpu.log", plan, calculate(plan))
    assert all(d["plan_device"] is None for d in out["per_device"]) and len(out["per_device"]) == 3
    assert any("3 device(s), the plan 1" in w for w in out["warnings"])


def test_ollama_estimate_is_labelled() -> None:
    plan = default_plan().with_engine(name="ollama")
    out = compare_log(LOGS / "ollama_0.5_offload_to_cuda_issue8098.log", plan, calculate(plan))
    kv = out["figures"]["kv_cache_bytes"]
    assert kv["observed"] == 896 * MIB and "Ollama's estimate" in kv["label"]
    assert out["settings"]["context"]["observed"] == 2048 and out["settings"]["sequences"]["observed"] == 4


def test_engine_mismatch_warns() -> None:
    plan = default_plan()  # llama.cpp
    out = compare_log(VLLM_LOG, plan, calculate(plan))
    assert "the log is from vllm, the plan uses the llama.cpp engine" in out["warnings"]


def test_bad_files(tmp_path: Path) -> None:
    plan = default_plan()
    bd = calculate(plan)
    with pytest.raises(InputError, match="not found"):
        compare_log(tmp_path / "nope.log", plan, bd)
    with pytest.raises(InputError, match="not a file"):
        compare_log(tmp_path, plan, bd)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 1000)
    with pytest.raises(InputError, match=r"no llama\.cpp, Ollama or vLLM memory lines"):
        compare_log(junk, plan, bd)


def test_cli_calc_from_log_json(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["calc", "--model", "llama-3.1-8b", "--engine", "vllm", "--vram-gib", "79.19", "--ctx", "8192",
            "--gpu-memory-utilization", "0.95", "--json", "--from-log", str(VLLM_LOG)]  # fmt: skip
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    obs = data["observed"]["figures"]
    assert obs["available_kv_bytes"]["observed"] == round(58.11 * GIB)
    assert all(isinstance(f["observed"], int) for f in obs.values() if f["unit"] == "bytes")


def test_cli_calc_from_missing_log_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["calc", "--model", "llama-3.1-8b", "--from-log", str(tmp_path / "x.log")]) == 2
    assert "log file not found" in capsys.readouterr().err
