"""The plan a new window (File ▸ New) starts from."""

from __future__ import annotations

from kvdesk.core.catalog import find_gpu, find_model, origin_for
from kvdesk.core.plan import EngineSettings, Plan, Workload

DEFAULT_MODEL_ID = "llama-3.1-8b"
DEFAULT_GPU_ID = "rtx-4090"


def default_plan() -> Plan:
    model = find_model(DEFAULT_MODEL_ID)
    gpu = find_gpu(DEFAULT_GPU_ID)
    return Plan(
        model=model.to_spec(),
        origin=origin_for(model),
        gpu=gpu.to_spec(),
        gpu_preset_id=gpu.id,
        workload=Workload(context=8192, batch=1),
        engine=EngineSettings(name="llama.cpp"),
    )
