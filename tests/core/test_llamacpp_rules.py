"""llama.cpp rules by build: padding, streams, SWA cells, hybrid fix, MLA layout, validation, costs.

Expected numbers come from llama.cpp source at the cited builds or from real measurements quoted
in the test names' comments; none is produced by kvdesk's own helpers.
"""

from __future__ import annotations

import numpy as np
import pytest

from kvdesk.core.calculator import calculate
from kvdesk.core.engines import get_engine
from kvdesk.core.engines.llamacpp import LlamaCppEngine
from kvdesk.core.engines.llamacpp_layout import layer_devices
from kvdesk.core.engines.llamacpp_rules import CURRENT_BUILD, Build, parse_build
from kvdesk.core.errors import InputError
from kvdesk.core.gpu import custom_gpu
from kvdesk.core.model import LayerGroup, ModelSpec, uniform_model
from kvdesk.core.plan import EngineSettings, Plan, Workload

MIB = 1 << 20
ENGINE = get_engine("llama.cpp")
assert isinstance(ENGINE, LlamaCppEngine)

LLAMA8 = uniform_model(
    "llama-3-8b", 32, 8, 128, params_total=8_030_000_000, hidden_size=4096, n_heads=32, vocab_size=128256
)
GPT_OSS = ModelSpec(
    name="gpt-oss-20b",
    layers=[
        LayerGroup(kind="sliding", window=128, n_kv_heads=8, head_dim_k=64, head_dim_v=64),
        LayerGroup(kind="full", n_kv_heads=8, head_dim_k=64, head_dim_v=64),
    ]
    * 12,
    params_total=20_900_000_000,
)
GEMMA4 = ModelSpec(
    name="gemma-4-12b",
    layers=[
        LayerGroup(count=5, kind="sliding", window=1024, n_kv_heads=8, head_dim_k=256, head_dim_v=256),
        LayerGroup(kind="full", n_kv_heads=1, head_dim_k=512, head_dim_v=512),
    ]
    * 8,
    params_total=12_000_000_000,
)
QWEN35_9B = ModelSpec(
    name="qwen3.5-9b",
    layers=[
        LayerGroup(count=3, kind="recurrent", state_bytes=2_195_456),
        LayerGroup(kind="full", n_kv_heads=4, head_dim_k=256, head_dim_v=256),
    ]
    * 8,
    params_total=9_000_000_000,
)
DEEPSEEK = ModelSpec(
    name="deepseek-v3",
    layers=[
        LayerGroup(count=61, kind="mla", kv_lora_rank=512, rope_dim=64, n_kv_heads=128, head_dim_k=192, head_dim_v=128)
    ],
    params_total=671_000_000_000,
)


def plan(model: ModelSpec, ctx: int, batch: int = 1, kv: str = "f16", **engine: object) -> Plan:
    return Plan(
        model=model,
        gpu=custom_gpu(80),
        workload=Workload(context=ctx, batch=batch, kv_dtype_k=kv, kv_dtype_v=kv),
        engine=EngineSettings(name="llama.cpp", **engine),  # type: ignore[arg-type]
    )


def cells(p: Plan) -> dict[str, int]:
    return {k: int(v) for k, v in ENGINE.cells(p, p.workload.context, p.workload.batch).items()}


@pytest.mark.parametrize(
    ("text", "build"),
    [
        ("b6209", Build(6209)),
        ("6209", Build(6209)),
        ("b6209 (fb22dd07)", Build(6209)),
        (None, Build()),
        ("ik_llama.cpp", Build(CURRENT_BUILD, ik=True)),
        ("ik_llama.cpp b3700", Build(3700, ik=True)),
    ],
)
def test_parse_build(text: str | None, build: Build) -> None:
    assert parse_build(text) == build


def test_unknown_version_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="engine version"):
        calculate(plan(LLAMA8, 4096, version="latest-ish"))


@pytest.mark.parametrize(
    ("version", "fa", "want"),
    [
        (None, False, 5120),  # llama.cpp#17046: n_ctx = PAD(n_ctx, 256) whatever FA
        ("b6900", True, 5000),  # llama.cpp#16812 .. #17046: no padding at all
        ("b6500", False, 5024),  # get_padding() = flash_attn ? 256 : 32 (b6646 llama-kv-cache.cpp)
        ("b6500", True, 5120),
        ("b6500", None, 5120),  # -fa auto (default since ~b6320) counts as on for the cache
        ("b6200", None, 5024),  # before -fa auto the default was off
        ("b2800", False, 5120),  # 2024-05: n_ctx padded to 256 until llama.cpp#7257
    ],
)
def test_cell_padding_by_build(version: str | None, fa: bool | None, want: int) -> None:
    assert cells(plan(LLAMA8, 5000, version=version, flash_attn=fa))["base"] == want


@pytest.mark.parametrize(("ctx", "slots", "per_slot"), [(342, 3, 512), (256, 4, 256)])
def test_per_sequence_caches_round_each_slot_up(ctx: int, slots: int, per_slot: int) -> None:
    # unslothai/unsloth#7530 (measured on llama.cpp 10107): "-c 1024 with 3 slots allocates 1536 cells,
    # 4 slots allocates 1024 cells". -c 1026 (342 × 3) pads to 1280; 1280 / 3 -> 426 -> 512 per slot.
    c = cells(plan(LLAMA8, ctx, slots, kv_unified=False))
    assert (c["base"], c["streams"], c["n_ctx"]) == (per_slot, slots, per_slot * slots)


def test_unified_cache_shares_cells() -> None:
    c = cells(plan(LLAMA8, 2048, 4, kv_unified=True))
    assert (c["base"], c["streams"]) == (8192, 1)


def test_builds_before_streams_are_always_unified() -> None:
    c = cells(plan(LLAMA8, 2048, 4, version="b5900", kv_unified=False, flash_attn=False))
    assert (c["base"], c["streams"]) == (8192, 1)


def test_swa_cells_follow_ubatch() -> None:
    # search-index file 62861137369: gemma-4-12B "-ub 256 produced 1280 cells = 1024 + 256"
    assert cells(plan(GEMMA4, 4096, 2, kv_unified=False, ubatch=256))["swa1024"] == 1280
    assert cells(plan(GEMMA4, 4096, 2, kv_unified=False))["swa1024"] == 1536


def test_swa_full_gives_sliding_layers_the_full_cache() -> None:
    c = cells(plan(GPT_OSS, 32768, swa_full=True))
    assert c["swa128"] == c["base"] == 32768


@pytest.mark.parametrize(
    ("version", "fa", "want"),
    [
        (None, True, 768),  # PAD(min(size_base, 128 + 512), 256)
        ("b6900", True, 640),  # no padding between #16812 and #17046
        ("b6500", False, 640),  # min(size_base, PAD(640, 32))
        ("b6500", True, 768),  # min(size_base, PAD(640, 256))
        ("b5500", True, 2304),  # llama.cpp#13194: n_swa + n_batch (2048) until #13833
        ("b5300", True, 32768),  # before llama.cpp#13194 sliding layers used the whole cache
    ],
)
def test_swa_cells_by_build(version: str | None, fa: bool, want: int) -> None:
    assert cells(plan(GPT_OSS, 32768, version=version, flash_attn=fa))["swa128"] == want


def test_swa_cells_never_exceed_the_base_cache() -> None:
    c = cells(plan(GPT_OSS, 300))
    assert c["swa128"] == c["base"] == 512


def test_hybrid_attention_cells_before_and_after_the_fix() -> None:
    # llama.cpp#19559 "We were incorrectly allocating -np times more KV cache for hybrid models"
    fixed = cells(plan(QWEN35_9B, 8192, 2, kv_unified=False))
    broken = cells(plan(QWEN35_9B, 8192, 2, version="b7900", kv_unified=False))
    assert (fixed["base"], fixed["streams"]) == (8192, 2)
    assert (broken["base"], broken["streams"]) == (16384, 2)
    assert any("19559" in w for w in calculate(plan(QWEN35_9B, 8192, 2, version="b7900", kv_unified=False)).warnings)


def test_recurrent_state_is_per_sequence_not_per_token() -> None:
    one = calculate(plan(QWEN35_9B, 4096, 1))
    longer = calculate(plan(QWEN35_9B, 65536, 1))
    two = calculate(plan(QWEN35_9B, 4096, 2, kv_unified=True))
    assert one.recurrent_state_bytes == longer.recurrent_state_bytes == 24 * 2_195_456
    assert two.recurrent_state_bytes == 2 * one.recurrent_state_bytes


@pytest.mark.parametrize(
    ("version", "engine_name", "planes"),
    [
        (None, "llama.cpp", 4),  # llama.cpp#22673: mem_size * (1 + n_rs_seq) rows of r and s
        ("b9222", "llama.cpp", 4),
        ("b9100", "llama.cpp", 1),  # before MTP support there is no n_rs_seq
        ("ik_llama.cpp", "llama.cpp", 1),
        (None, "ollama", 1),  # Ollama passes no speculative settings to its runner
    ],
)
def test_rs_seq_multiplies_the_recurrent_state_by_build(version: str | None, engine_name: str, planes: int) -> None:
    base = calculate(plan(QWEN35_9B, 4096, 2, kv_unified=True))
    p = plan(QWEN35_9B, 4096, 2, kv_unified=True, version=version, rs_seq=3)
    bd = calculate(p.model_copy(update={"engine": p.engine.model_copy(update={"name": engine_name})}))
    assert bd.recurrent_state_bytes == planes * base.recurrent_state_bytes == planes * 2 * 24 * 2_195_456
    assert bd.kv_cache_bytes == base.kv_cache_bytes  # the attention cache does not change
    assert sum(d.recurrent_state_bytes for d in bd.per_device) == bd.recurrent_state_bytes
    rule = next(r for r in bd.rules if r.id == "llamacpp.recurrent")
    assert ("rollback planes" in rule.title) == (planes > 1)


def test_rs_seq_lowers_the_largest_batch_that_fits() -> None:
    small = plan(QWEN35_9B, 8192, 1, kv_unified=False).model_copy(update={"gpu": custom_gpu(24)})
    without = calculate(small)
    with_rs = calculate(small.model_copy(update={"engine": small.engine.model_copy(update={"rs_seq": 8})}))
    assert 0 < with_rs.max_batch < without.max_batch


def test_rs_seq_is_left_out_of_saved_plans_when_unset() -> None:
    assert "rs_seq" not in EngineSettings(name="llama.cpp").model_dump()
    dumped = EngineSettings(name="llama.cpp", rs_seq=2).model_dump()
    assert dumped["rs_seq"] == 2 and EngineSettings.model_validate(dumped).rs_seq == 2


@pytest.mark.parametrize(
    ("version", "k_per_cell", "v_per_cell"),
    [
        ("b5000", 128 * 192 * 2, 128 * 128 * 2),  # before llama.cpp#12801: uncompressed K/V
        ("b6000", 576 * 2, 512 * 2),  # latent K (kv_lora_rank + rope), kv_lora_rank V
        (None, 576 * 2, 0),  # llama.cpp#19067: V-less cache
        ("ik_llama.cpp", 576 * 2, 0),  # ik_llama.cpp#596: c^KV only
    ],
)
def test_mla_layout_by_build(version: str | None, k_per_cell: int, v_per_cell: int) -> None:
    p = plan(DEEPSEEK, 4096, version=version, flash_attn=True)
    bd = calculate(p)
    assert bd.k_cache_bytes == 61 * 4096 * k_per_cell
    assert bd.v_cache_bytes == 61 * 4096 * v_per_cell


def test_v_rows_are_padded_to_the_widest_layer_without_flash_attention() -> None:
    # [TAG_V_CACHE_VARIABLE] llama-kv-cache.cpp: v_trans -> n_embd_v_gqa_max() for every layer
    with_fa = calculate(plan(GEMMA4, 4096, flash_attn=True))
    without = calculate(plan(GEMMA4, 4096, flash_attn=False))
    assert with_fa.k_cache_bytes == without.k_cache_bytes
    assert without.v_cache_bytes - with_fa.v_cache_bytes == 8 * 4096 * (2048 - 512) * 2
    old = calculate(plan(GEMMA4, 4096, version="b6500", flash_attn=False))
    assert old.v_cache_bytes == calculate(plan(GEMMA4, 4096, version="b6500", flash_attn=True)).v_cache_bytes


def test_quantized_v_without_flash_attention_is_refused() -> None:
    with pytest.raises(InputError, match="flash attention") as err:
        calculate(plan(LLAMA8, 4096, kv="q8_0", flash_attn=False))
    assert err.value.field == "kv_dtype_v"
    with pytest.raises(InputError):
        calculate(plan(LLAMA8, 4096, kv="q4_0", version="b6000"))  # FA off by default before ~b6320
    auto = calculate(plan(LLAMA8, 4096, kv="q8_0"))
    assert any("flash attention" in w for w in auto.warnings)
    quant_k_only = calculate(plan(LLAMA8, 4096, flash_attn=False).with_workload(kv_dtype_k="q8_0"))
    assert quant_k_only.k_cache_bytes == 32 * 4096 * 1024 * 34 // 32


def test_fp8_is_not_a_llama_cpp_cache_type() -> None:
    with pytest.raises(InputError, match="fp8"):
        calculate(plan(LLAMA8, 4096, kv="fp8"))


def test_kv_cells_in_extra_and_per_token_bytes() -> None:
    bd = calculate(plan(LLAMA8, 5000))
    assert bd.extra["kv_cells"] == 5120
    assert bd.kv_bytes_per_token == 32 * 2 * 1024 * 2  # one f16 K and V row of 8 × 128 per layer
    assert bd.to_json()["kv_cells"] == 5120


def test_layer_split_matches_llama_cpp() -> None:
    # RPC log: 41 / 39 layers (656 / 624 MiB of KV) on two devices for 80 layers + output
    dev = layer_devices(80, 2)
    assert (int((dev[:-1] == 0).sum()), int((dev[:-1] == 1).sum()), int(dev[-1])) == (41, 39, 1)
    three = layer_devices(61, 3)
    assert np.all(np.diff(three) >= 0) and three[-1] == 2 and int(three[:-1].sum()) > 0


def test_compute_buffer_estimate_against_real_logs() -> None:
    # tests/data/validation/engine_memory.json: gemma-2-2b CPU 509.00 MiB (FA auto, 4 seqs, ub 512)
    gemma2 = ModelSpec(
        name="gemma-2-2b",
        layers=[
            LayerGroup(kind="sliding", window=4096, n_kv_heads=4, head_dim_k=256, head_dim_v=256),
            LayerGroup(kind="full", n_kv_heads=4, head_dim_k=256, head_dim_v=256),
        ]
        * 13,
        hidden_size=2304,
        n_heads=8,
        vocab_size=256000,
        params_total=2_600_000_000,
    )
    bd = calculate(plan(gemma2, 2048, 4, kv_unified=True))
    assert bd.compute_bytes == 509 * MIB
    assert bd.extra["output_buffer_bytes"] == 4 * 256000 * 4  # "output buffer size = 3.91 MiB"
    # ik_llama Qwen3-235B, ub 4096, FA: "CUDA0 compute buffer size = 2502.00 MiB"
    qwen = uniform_model("q235", 94, 4, 128, params_total=235 * 10**9, hidden_size=4096, n_heads=64, vocab_size=151936)
    bd = calculate(plan(qwen, 40960, kv="q8_0", version="ik_llama", flash_attn=True, ubatch=4096, batch_tokens=4096))
    assert bd.compute_bytes == 2502 * MIB
    # Llama-3.1-70B without FA over 2 RPC devices: 588.01 MiB each; the estimate is within 8 %
    llama70 = uniform_model("l70", 80, 8, 128, params_total=70 * 10**9, hidden_size=8192, n_heads=64, vocab_size=128256)
    p = plan(llama70, 4096, version="b6209", flash_attn=False).model_copy(update={"gpu_count": 2})
    for dev in calculate(p).per_device:
        assert abs(dev.compute_bytes - 588.01 * MIB) / (588.01 * MIB) < 0.08


def test_fit_margin_by_build_and_setting() -> None:
    assert calculate(plan(LLAMA8, 4096)).overhead_bytes - calculate(plan(LLAMA8, 4096)).compute_bytes == 1 << 30
    old = calculate(plan(LLAMA8, 4096, version="b6209"))
    assert old.overhead_bytes == old.compute_bytes
    mine = calculate(plan(LLAMA8, 4096, fit_margin_bytes=256 * MIB))
    assert mine.overhead_bytes - mine.compute_bytes == 256 * MIB


@pytest.mark.parametrize("model", [LLAMA8, GPT_OSS, QWEN35_9B, GEMMA4], ids=lambda m: m.name)
@pytest.mark.parametrize("unified", [True, False])
@pytest.mark.parametrize("version", [None, "b6500", "b6900", "b5500"])
def test_more_context_or_sequences_never_needs_less(model: ModelSpec, unified: bool, version: str | None) -> None:
    p = plan(model, 1, kv_unified=unified, version=version)
    ctx = np.arange(1, 40000, 97)
    for batch in (1, 2, 3, 4, 7):
        total = ENGINE.cache(p, ctx, batch).total
        assert np.all(np.diff(total) >= 0)
    grid = ENGINE.cache(p, ctx[:, None], np.arange(1, 9)[None, :]).total
    assert np.all(np.diff(grid, axis=1) >= 0)


def test_max_context_and_batch_are_the_largest_that_fit() -> None:
    p = plan(LLAMA8, 4096).model_copy(update={"gpu": custom_gpu(12)})
    p = p.with_workload(weights_format="Q4_K_M")
    bd = calculate(p)
    assert 0 < bd.max_context < 10**6
    assert calculate(p.with_workload(context=bd.max_context)).fits
    assert not calculate(p.with_workload(context=bd.max_context + 1)).fits
    assert calculate(p.with_workload(batch=bd.max_batch)).fits
    assert not calculate(p.with_workload(batch=bd.max_batch + 1)).fits


@pytest.mark.parametrize("arch", ["MistralForCausalLM", "llama", "Qwen2ForCausalLM", "phi3"])
def test_architectures_without_swa_in_llama_cpp_use_the_full_cache(arch: str) -> None:
    # Mistral-7B-v0.1 config.json has sliding_window 4096, but llama.cpp loads it as LLM_ARCH_LLAMA
    # (no swa_type); PHI3 disables SWA (llama.cpp#13676). Sliding layers cost the full n_ctx cells.
    layers = [LayerGroup(count=32, kind="sliding", window=4096, n_kv_heads=8, head_dim_k=128, head_dim_v=128)]
    mistral = ModelSpec(name="mistral-7b-v0.1", architecture=arch, layers=layers, params_total=7_240_000_000)
    bd = calculate(plan(mistral, 32768))
    assert bd.kv_cache_bytes == 2 * 32 * 32768 * 1024 * 2
    assert any(r.id == "llamacpp.no_swa" for r in bd.rules)
    gemma_like = mistral.model_copy(update={"architecture": "Gemma3ForCausalLM"})
    assert calculate(plan(gemma_like, 32768)).kv_cache_bytes < bd.kv_cache_bytes
