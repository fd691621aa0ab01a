"""vLLM end to end from the model's real config.json only, through the CLI, against real vLLM logs.

Each tests/data/vllm case that names an ``hf_config`` (tests/data/configs, sources in SOURCES.json) is
re-run the way a user would: ``kvdesk calc --hf-config <config> --gpu h100-sxm-80gb --engine vllm
--tp N --pp M --ctx L --gpu-memory-utilization U --json`` (plus ``--weights-dtype`` for a quantized
checkpoint or ``--dtype``, ``--kv-dtype`` for an fp8 cache). No logged figure goes in: weights come from
the config's parameter count, the profiled memory from vllm_budget's estimates. The KV token count must
be within 5 % of the log's ``GPU KV cache size``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kvdesk.cli import main

DATA = Path(__file__).parents[1] / "data"
CASES = [
    c
    for c in (json.loads(p.read_text()) for p in sorted((DATA / "vllm").glob("*.json")))
    if c.get("hf_config")
]


def _cli(case: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    run = case["run"]
    tp, pp = run["tensor_parallel_size"], run["pipeline_parallel_size"]
    argv = ["calc", "--hf-config", str(DATA / "configs" / case["hf_config"]), "--gpu", "h100-sxm-80gb"]
    argv += ["--engine", "vllm", "--tp", str(tp), "--pp", str(pp), "--gpus", str(tp * pp)]
    argv += ["--ctx", str(run["max_model_len"]), "--gpu-memory-utilization", str(run["gpu_memory_utilization"])]
    if run["kv_cache_dtype"] != "auto":
        argv += ["--kv-dtype", run["kv_cache_dtype"]]
    if run.get("weights_dtype"):
        argv += ["--weights-dtype", run["weights_dtype"]]
    assert main([*argv, "--json"]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def test_there_are_config_cases() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_config_only_end_to_end_within_5_percent(case: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    out = _cli(case, capsys)
    obs = case["observed"]
    assert out["kv_budget_source"] == "gpu_memory_utilization"
    assert out["kv_cache_tokens"] == pytest.approx(obs["kv_tokens"], rel=0.05)
    assert out["max_concurrency"] == pytest.approx(obs["max_concurrency"], rel=0.05)
    assert out["fits"]
