"""How the format-version-1 fixtures were made (kept for the record; NEVER re-run).

The plans below were saved once with the format-1 writer of kvdesk/core/planfile.py as it was in
commit 3c1d877 (the commit that introduced this file). The .kvplan outputs are frozen fixtures for
the back-compat test, byte for byte what that early kvdesk wrote; today's ``save_plan`` writes the
current format, so running this again would NOT reproduce them.
"""

from __future__ import annotations

from pathlib import Path

from kvdesk.core.catalog import find_gpu, find_model
from kvdesk.core.gpu import GpuSpec
from kvdesk.core.model import LayerGroup, ModelSpec, WeightFormat
from kvdesk.core.plan import Calibration, EngineSettings, ModelOrigin, Plan, Workload
from kvdesk.core.planfile import save_plan

HERE = Path(__file__).parent


def llama_generic() -> Plan:
    entry = find_model("llama-3.1-8b")
    return Plan(
        model=entry.to_spec(),
        origin=ModelOrigin(preset_id=entry.id),
        gpu=find_gpu("rtx-4090").to_spec(),
        gpu_preset_id="rtx-4090",
        workload=Workload(context=8192, batch=4, kv_dtype_k="q8_0", kv_dtype_v="q8_0"),
        notes="Chat box for the support team — 4 users at 8k «q8_0».",
    )


def hybrid_two_gpus() -> Plan:
    model = ModelSpec(
        name="Hybrid 12B (5 sliding : 1 full)",
        family="test",
        layers=[
            LayerGroup(count=5, kind="sliding", n_kv_heads=8, head_dim_k=256, head_dim_v=256, window=1024),
            LayerGroup(count=1, kind="full", n_kv_heads=8, head_dim_k=256, head_dim_v=256),
        ] * 8,
        hidden_size=3840,
        n_heads=16,
        vocab_size=262144,
        native_context=131072,
        params_total=12_187_325_040,
        dtype="bf16",
        weight_formats=[WeightFormat(name="Q4_K_M", bytes=7_300_000_000, source="file size")],
    )
    gpu = GpuSpec(name="Custom 24 GiB", memory_bytes=24 * (1 << 30) - 512 * (1 << 20), bandwidth_bytes_per_s=9.36e11)
    return Plan(
        model=model,
        origin=ModelOrigin(hf_repo="example/hybrid-12b", gguf_file="hybrid-12b-Q4_K_M.gguf", gguf_size=7_300_000_000),
        gpu=gpu,
        gpu_count=2,
        workload=Workload(context=32768, batch=2, kv_dtype_k="f16", kv_dtype_v="f16", weights_format="Q4_K_M"),
        engine=EngineSettings(overhead_bytes=300 << 20),
        calibration=Calibration(source="llama-server log 2026-11-01", overhead_delta_bytes=64 << 20,
                                observed={"kv_cache_mib": 1280.0}),
    )


def vllm_tp2() -> Plan:
    entry = find_model("llama-3.1-8b")
    return Plan(
        model=entry.to_spec(),
        origin=ModelOrigin(preset_id=entry.id, hf_repo="meta-llama/Llama-3.1-8B-Instruct"),
        gpu=find_gpu("h100-sxm-80gb").to_spec(),
        gpu_preset_id="h100-sxm-80gb",
        gpu_count=2,
        workload=Workload(context=32768, batch=64, kv_dtype_k="fp8", kv_dtype_v="fp8"),
        engine=EngineSettings(name="vllm", version="0.19.0", tp=2, gpu_memory_utilization=0.92),
    )


if __name__ == "__main__":
    raise SystemExit("the v1 fixtures are frozen; do not regenerate them")
    save_plan(HERE / "v1_llama8b_generic.kvplan", llama_generic())  # type: ignore[unreachable]
    save_plan(HERE / "v1_hybrid_2gpu.kvplan", hybrid_two_gpus())
    save_plan(HERE / "v1_vllm_tp2.kvplan", vllm_tp2())
