"""Quick fuzz run of every parser (benchmarks/fuzz.py runs ≥ 10,000 cases each).

Each case's only acceptable outcomes are a result or a KvdeskError (or the parser's documented
error) — see tests/hardening/fuzz_targets.py. Deterministic (derandomized) so CI is reproducible.
"""

from __future__ import annotations

import pytest

from tests.hardening.fuzz_targets import TARGETS
from tests.hardening.fuzzlib import run_target

# hypothesis warns when a failing case's repr is long (a duplicated chunk of a GGUF file is)
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

QUICK = {"kvplan": 300, "plan_fields": 300, "cli": 120, "hf_config": 300, "safetensors": 300, "gguf": 300,
         "gpu_tools": 300, "engine_log": 300}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzz_quick(name: str) -> None:
    target = TARGETS[name]
    pytest.importorskip(target.module)
    result = run_target(target, QUICK[name])
    assert result.cases >= min(QUICK[name], 20)
    assert result.failures == 0
