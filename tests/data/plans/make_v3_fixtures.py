"""How the format-version-3 fixtures were made (kept for the record; NEVER re-run).

``v3_<name>.kvplan`` for each format-2 fixture: the v2 file opened (migrated) and saved by the format-3
writer, so ``test_v2_migration_is_stable`` can check migration never drifts. ``v3_qwen35_hybrid_vllm``
is a plan only format 3 can hold: a Qwen3.5 hybrid (gated delta-net + full attention) served by vLLM,
whose recurrent groups carry ``ssm_state_bytes`` / ``ssm_state_dtype``.
"""

from __future__ import annotations

from pathlib import Path

from kvdesk.core.catalog import find_gpu, find_model
from kvdesk.core.plan import EngineSettings, ModelOrigin, Plan, Workload
from kvdesk.core.planfile import load_plan, save_plan

HERE = Path(__file__).parent


def qwen35_hybrid_vllm() -> Plan:
    entry = find_model("qwen3.5-35b-a3b")
    return Plan(
        model=entry.to_spec(),
        origin=ModelOrigin(preset_id=entry.id),
        gpu=find_gpu("h100-sxm-80gb").to_spec(),
        gpu_preset_id="h100-sxm-80gb",
        workload=Workload(context=65536, batch=8),
        engine=EngineSettings(name="vllm", gpu_memory_utilization=0.9),
        notes="Qwen3.5-35B-A3B on one H100, vLLM: delta-net state in f32.",
    )


def main() -> None:
    for old in sorted(HERE.glob("v2_*.kvplan")):
        save_plan(HERE / old.name.replace("v2_", "v3_", 1), load_plan(old).plan)
    save_plan(HERE / "v3_qwen35_hybrid_vllm.kvplan", qwen35_hybrid_vllm())


if __name__ == "__main__":
    main()
