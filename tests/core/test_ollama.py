"""Ollama profile: llama.cpp cache rules with Ollama's settings, checked on real Ollama logs."""

from __future__ import annotations

import pytest

from kvdesk.core.calculator import calculate
from kvdesk.core.errors import InputError
from kvdesk.core.gpu import GpuSpec, custom_gpu
from kvdesk.core.model import LayerGroup, ModelSpec, uniform_model
from kvdesk.core.plan import EngineSettings, Plan, Workload
from tests.core.test_llamacpp_logs import CASES, mib, plan_of

MIB = 1 << 20
QWEN3_32B = uniform_model(
    "qwen3-32b", 64, 8, 128, params_total=32 * 10**9, hidden_size=5120, n_heads=64, vocab_size=151936
)
# DeepSeek-V2-Lite GGUF without MLA fields (n_head_kv 16, K 192, V 128), as in the Ollama log below
DSV2_LITE = ModelSpec(
    name="deepseek-v2-lite",
    layers=[LayerGroup(count=27, kind="full", n_kv_heads=16, head_dim_k=192, head_dim_v=128)],
    params_total=15_700_000_000,
)


def plan(model: ModelSpec, ctx: int, batch: int = 1, kv: str = "auto", **engine: object) -> Plan:
    return Plan(
        model=model,
        gpu=custom_gpu(24),
        workload=Workload(context=ctx, batch=batch, kv_dtype_k=kv, kv_dtype_v=kv),
        engine=EngineSettings(name="ollama", **engine),  # type: ignore[arg-type]
    )


def test_ollama_log_qwen3_32b_q8_0() -> None:
    # search-index file id 65940070224: Ollama 2026-08 log, OLLAMA_KV_CACHE_TYPE=q8_0, flash_attn enabled:
    # "llama_kv_cache: size = 1088.00 MiB (  8192 cells,  64 layers,  1/1 seqs), K (q8_0):  544.00 MiB, ..."
    case = next(c for c in CASES if c["id"] == "2026-ollama-qwen3-32b-8192-q8_0")
    bd = calculate(plan_of(case, engine="ollama"))
    assert (mib(bd.k_cache_bytes), mib(bd.v_cache_bytes)) == ("544.00", "544.00")
    assert bd.extra["kv_cells"] == 8192


@pytest.mark.parametrize(("ctx", "k", "v"), [(2048, "324.00", "216.00"), (4096, "648.00", "432.00")])
def test_ollama_log_deepseek_v2_lite(ctx: int, k: str, v: str) -> None:
    # search-index file id 61880559644: ollama[1502099] journal, Aug 2026, llama-server runner:
    # "llama_kv_cache: size =  540.00 MiB (  2048 cells,  27 layers,  1/1 seqs), K (f16):  324.00 MiB,
    #  V (f16):  216.00 MiB" and "... 1080.00 MiB (  4096 cells, ...), K (f16):  648.00 MiB, V (f16):  432.00 MiB"
    bd = calculate(plan(DSV2_LITE, ctx, version="0.13.0"))
    assert (mib(bd.k_cache_bytes), mib(bd.v_cache_bytes)) == (k, v)
    assert bd.extra["kv_cells"] == ctx


def test_num_ctx_times_num_parallel() -> None:
    # llm/llama_server.go: -c NumCtx*numParallel -np numParallel (one cache per slot)
    bd = calculate(plan(QWEN3_32B, 4096, 3))
    assert (bd.extra["kv_cells"], bd.extra["kv_streams"], bd.extra["n_ctx"]) == (4096, 3, 12288)
    assert bd.kv_cache_bytes == 3 * calculate(plan(QWEN3_32B, 4096, 1)).kv_cache_bytes


@pytest.mark.parametrize(
    ("version", "kv", "fa", "used"),
    [
        (None, "q8_0", None, "q8_0"),  # v0.30+: passed to llama-server, -fa auto
        (None, "q5_1", True, "q5_1"),  # v0.30+: any llama.cpp cache type
        ("0.12.3", "q8_0", True, "q8_0"),
        ("0.12.3", "q4_0", None, "f16"),  # < 0.30: quantized needs OLLAMA_FLASH_ATTENTION=1
        ("0.12.3", "q8_0", False, "f16"),
        ("0.12.3", "q5_1", True, "f16"),  # < 0.30: only f16, q8_0, q4_0
        ("0.12.3", "auto", None, "f16"),
    ],
)
def test_ollama_kv_cache_type(version: str | None, kv: str, fa: bool | None, used: str) -> None:
    bd = calculate(plan(QWEN3_32B, 8192, kv=kv, flash_attn=fa, version=version))
    row = {"f16": 2048, "q8_0": 1088, "q4_0": 576, "q5_1": 768}[used]  # 8 × 128 values: 2 B, 34/32, 18/32, 24/32
    assert bd.k_cache_bytes == bd.v_cache_bytes == 64 * 8192 * row
    assert any("falls back to f16" in w for w in bd.warnings) == (used == "f16" and kv != "auto")


def test_current_ollama_refuses_quantized_v_with_flash_attention_off() -> None:
    # OLLAMA_FLASH_ATTENTION=0 -> llama-server --flash-attn off -> "V cache quantization requires flash_attn"
    with pytest.raises(InputError, match="flash attention"):
        calculate(plan(QWEN3_32B, 8192, kv="q8_0", flash_attn=False))


def test_legacy_runner_keeps_full_size_swa_cache() -> None:
    # < 0.30: llama.h defaults (swa_full = true) since llama/llama.go never sets it; v0.30+ uses common's false
    gpt_oss = ModelSpec(
        name="gpt-oss-20b",
        layers=[
            LayerGroup(kind="sliding", window=128, n_kv_heads=8, head_dim_k=64, head_dim_v=64),
            LayerGroup(kind="full", n_kv_heads=8, head_dim_k=64, head_dim_v=64),
        ]
        * 12,
        params_total=20_900_000_000,
    )
    old = calculate(plan(gpt_oss, 32768, version="0.12.3"))
    new = calculate(plan(gpt_oss, 32768, version="0.30.1"))
    assert old.extra["kv_cells_swa128"] == 32768
    assert new.extra["kv_cells_swa128"] == 768


def test_one_cache_type_for_k_and_v() -> None:
    p = plan(QWEN3_32B, 8192).with_workload(kv_dtype_k="q8_0", kv_dtype_v="f16")
    with pytest.raises(InputError, match="OLLAMA_KV_CACHE_TYPE"):
        calculate(p)


def test_per_gpu_reserve() -> None:
    # ml/device.go MinimumMemory: 457 MiB (CUDA/ROCm), 512 MiB on Metal; + OLLAMA_GPU_OVERHEAD per GPU
    bd = calculate(plan(QWEN3_32B, 4096).model_copy(update={"gpu_count": 2}))
    assert [d.overhead_bytes - d.compute_bytes for d in bd.per_device] == [457 * MIB, 457 * MIB]
    mac = GpuSpec(name="M4 Max", memory_bytes=128 << 30, vendor="apple", unified_memory=True, usable_fraction=0.75)
    bd = calculate(plan(QWEN3_32B, 4096, overhead_bytes=100 * MIB).model_copy(update={"gpu": mac}))
    assert bd.per_device[0].overhead_bytes - bd.per_device[0].compute_bytes == 612 * MIB
    assert any(r.id == "ollama.reserve" for r in bd.rules)


def test_hybrid_models_run_with_one_slot() -> None:
    hybrid = ModelSpec(
        name="qwen3.5-9b",
        layers=[
            LayerGroup(count=3, kind="recurrent", state_bytes=2_195_456),
            LayerGroup(kind="full", n_kv_heads=4, head_dim_k=256, head_dim_v=256),
        ]
        * 8,
        params_total=9 * 10**9,
    )
    assert any("num_parallel 1" in w for w in calculate(plan(hybrid, 8192, 2)).warnings)
    assert not any("num_parallel" in w for w in calculate(plan(hybrid, 8192, 1)).warnings)


def test_versions() -> None:
    assert calculate(plan(QWEN3_32B, 5000, version="0.30.1")).extra["kv_cells"] == 5120  # n_ctx padded to 256
    # 0.12.3 vendors llama.cpp e54d41be (≈ b6150): padding 32 without flash attention
    assert calculate(plan(QWEN3_32B, 5000, version="0.12.3", flash_attn=False)).extra["kv_cells"] == 5024
    assert calculate(plan(QWEN3_32B, 5000, version="b6500", flash_attn=False)).extra["kv_cells"] == 5024
    with pytest.raises(InputError):
        calculate(plan(QWEN3_32B, 5000, version="ollama-next"))


GEMMA3 = ModelSpec(
    name="gemma-3-12b",
    architecture="gemma3",
    layers=[
        LayerGroup(count=5, kind="sliding", window=1024, n_kv_heads=8, head_dim_k=256, head_dim_v=256),
        LayerGroup(kind="full", n_kv_heads=8, head_dim_k=256, head_dim_v=256),
    ]
    * 8,
    params_total=12 * 10**9,
)


def test_go_engine_before_0_30_shares_one_buffer() -> None:
    # kvcache/causal.go Causal.Init (v0.12.3): full = roundUp(slots × num_ctx, 32 without FA);
    # SWA = roundUp(slots × window + num_batch, 32); gemma3 is in OllamaEngineRequired
    bd = calculate(plan(GEMMA3, 8192, 2, version="0.12.3", flash_attn=False))
    assert (bd.extra["kv_cells"], bd.extra["kv_streams"], bd.extra["kv_cells_swa1024"]) == (16384, 1, 2560)
    row = 8 * 256 * 2
    assert bd.k_cache_bytes == 8 * 16384 * row + 40 * 2560 * row
    # v0.30+: llama-server, one 8192-cell cache per slot and PAD(1024 + 512, 256) SWA cells per slot
    new = calculate(plan(GEMMA3, 8192, 2, version="0.30.1"))
    assert (new.extra["kv_cells"], new.extra["kv_streams"], new.extra["kv_cells_swa1024"]) == (8192, 2, 1536)


@pytest.mark.parametrize(("ctx", "swa_cells"), [(8192, 4608), (2048, 2048)])
def test_go_engine_gpt_oss_keeps_4096_sliding_tokens(ctx: int, swa_cells: int) -> None:
    # model/models/gptoss/model.go: NewSWAMemCache(sliding_window, 4096); memory > num_ctx -> full size
    gpt_oss = ModelSpec(
        name="gpt-oss-20b",
        architecture="gptoss",
        layers=[
            LayerGroup(kind="sliding", window=128, n_kv_heads=8, head_dim_k=64, head_dim_v=64),
            LayerGroup(kind="full", n_kv_heads=8, head_dim_k=64, head_dim_v=64),
        ]
        * 12,
        params_total=20_900_000_000,
    )
    bd = calculate(plan(gpt_oss, ctx, version="0.11.10", flash_attn=True))
    assert bd.extra["kv_cells_swa128"] == swa_cells


def test_go_engine_sizes_never_shrink_with_more_context_or_slots() -> None:
    import numpy as np

    from kvdesk.core.engines import get_engine

    eng = get_engine("ollama")
    p = plan(GEMMA3, 1, version="0.12.3", flash_attn=False)
    ctx = np.arange(1, 20000, 37)
    for slots in (1, 2, 3):
        assert np.all(np.diff(eng.cache(p, ctx, slots).total) >= 0)
    grid = eng.cache(p, ctx[:, None], np.arange(1, 6)[None, :]).total
    assert np.all(np.diff(grid, axis=1) >= 0)


def test_fp8_cache_type_is_refused_like_llama_server() -> None:
    import pytest as _pytest

    from kvdesk.core.calculator import calculate
    from kvdesk.core.defaults import default_plan
    from kvdesk.core.errors import InputError

    plan = default_plan().with_engine(name="ollama").with_workload(kv_dtype_k="fp8", kv_dtype_v="fp8")
    with _pytest.raises(InputError, match="fp8"):
        calculate(plan)
