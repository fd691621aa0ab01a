"""DeepSeek-V3.2 / GLM-5 sparse attention: the lightning-indexer key cache.

llama.cpp (src/llama-kv-cache-dsa.cpp, llama.cpp#23346): a second K-only llama_kv_cache with the main
cache's cells, one key head of indexer_head_size per layer that owns an indexer, in the -ctk type.
The real GLM-5.2 logs are replayed in test_llamacpp_logs.py (kv_logs.json); these tests pin the rule
by build, cache type and import path.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from kvdesk.core.calculator import calculate
from kvdesk.core.engines.llamacpp import LlamaCppEngine
from kvdesk.core.gpu import custom_gpu
from kvdesk.core.importers.gguf import import_gguf
from kvdesk.core.importers.hf_config import import_hf_config
from kvdesk.core.model import LayerGroup, ModelSpec
from kvdesk.core.plan import EngineSettings, Plan, Workload
from tests.core.test_gguf import U32, arch_kv, write_gguf

CONFIGS = Path(__file__).parents[1] / "data" / "configs"
ENGINE = LlamaCppEngine()

V32 = ModelSpec(
    name="deepseek-v3.2",
    layers=[LayerGroup(count=61, kind="mla", kv_lora_rank=512, rope_dim=64, indexer_dim=128)],
    params_total=671_000_000_000,
)


def plan(model: ModelSpec, ctx: int, kv: str = "f16", version: str | None = None) -> Plan:
    return Plan(
        model=model,
        gpu=custom_gpu(80),
        gpu_count=8,
        workload=Workload(context=ctx, kv_dtype_k=kv, kv_dtype_v=kv),
        engine=EngineSettings(name="llama.cpp", version=version, flash_attn=True),
    )


@pytest.mark.parametrize(
    ("version", "kv", "idx_row"),
    [
        (None, "f16", 61 * 128 * 2),
        (None, "q8_0", 61 * 136),  # 128 values = 4 q8_0 blocks of 34 bytes
        ("b9400", "f16", 61 * 128 * 2),
        ("b9250", "f16", 0),  # before llama.cpp#23346: dense MLA, no indexer cache
        ("ik_llama.cpp", "f16", 0),
    ],
)
def test_indexer_cache_by_build_and_type(version: str | None, kv: str, idx_row: int) -> None:
    p = plan(V32, 8192, kv, version)
    (group,) = ENGINE.layout(p).groups
    assert (group.idx_row, group.idx_layers) == (idx_row, 61 if idx_row else 0)
    dense = [g.model_copy(update={"indexer_dim": None}) for g in V32.layers]
    without = plan(V32.model_copy(update={"layers": dense}), 8192, kv, version)
    bd, base = calculate(p), calculate(without)
    assert bd.kv_cache_bytes - base.kv_cache_bytes == idx_row * 8192  # K only, the main cache's cells
    assert bd.v_cache_bytes == base.v_cache_bytes
    assert any(r.id == "llamacpp.dsa_indexer" for r in bd.rules) == bool(idx_row)


def test_indexer_belongs_to_mla_layers_and_is_omitted_when_unset() -> None:
    with pytest.raises(ValidationError, match="mla layers only"):
        LayerGroup(kind="full", n_kv_heads=8, head_dim_k=128, head_dim_v=128, indexer_dim=128)
    assert "indexer_dim" not in LayerGroup(kind="mla", kv_lora_rank=512, rope_dim=64).model_dump()
    assert V32.layers[0].model_dump()["indexer_dim"] == 128


def test_hf_config_of_deepseek_v32(tmp_path: Path) -> None:
    """DeepSeek-V3.2's config.json is V3's plus index_head_dim 128, index_n_heads 64, index_topk 2048
    (vllm DeepseekV32ForCausalLM recognises V3.2 by index_topk)."""
    cfg = json.loads((CONFIGS / "deepseek-v3.json").read_text(encoding="utf-8"))
    cfg.update(architectures=["DeepseekV32ForCausalLM"], index_head_dim=128, index_n_heads=64, index_topk=2048)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg), encoding="utf-8")
    result = import_hf_config(path)
    assert {g.indexer_dim for g in result.model.layers} == {128}
    assert any("lightning-indexer" in n for n in result.notes)
    assert {g.indexer_dim for g in import_hf_config(CONFIGS / "deepseek-v3.json").model.layers} == {None}


def test_gguf_deepseek32_indexer_key_length(tmp_path: Path) -> None:
    keys = {
        "attention.head_count": (U32, 128),
        "attention.head_count_kv": (U32, 1),
        "attention.key_length": (U32, 576),
        "attention.value_length": (U32, 512),
        "attention.kv_lora_rank": (U32, 512),
        "rope.dimension_count": (U32, 64),
        "attention.indexer.key_length": (U32, 128),
    }
    m32 = import_gguf(write_gguf(tmp_path / "v32.gguf", arch_kv("deepseek32", 3, **keys), [])).model
    m2 = import_gguf(write_gguf(tmp_path / "v2.gguf", arch_kv("deepseek2", 3, **keys), [])).model
    assert [g.indexer_dim for g in m32.layers] == [128] and [g.indexer_dim for g in m2.layers] == [None]


# -- vLLM: indexer key page, fp8_ds_mla, forced 64-token blocks (from source; no real V3.2 log found) --


def vllm_plan(kv: str, block: int = 16) -> Plan:
    return Plan(
        model=V32,
        gpu=custom_gpu(141),
        gpu_count=8,
        workload=Workload(context=32768, kv_dtype_k=kv, kv_dtype_v=kv),
        engine=EngineSettings(name="vllm", tp=8, kv_cache_memory=10 << 30, block_size=block),
    )


@pytest.mark.parametrize(
    ("kv", "latent_bytes"),
    [
        ("auto", 576 * 2),  # bf16 latent (kv_lora_rank 512 + rope 64)
        ("fp8", 512 + 4 * 4 + 64 * 2),  # fp8_ds_mla: MLAAttentionSpec block_size × 656
    ],
)
def test_vllm_pages_hold_the_latent_and_the_indexer_key(kv: str, latent_bytes: int) -> None:
    bd = calculate(vllm_plan(kv))
    per_block = 61 * (latent_bytes + 128 + 4) * 64  # one page per layer: latent + indexer (fp8 + fp32 scale)
    blocks = (10 << 30) // per_block
    assert bd.extra["num_gpu_blocks"] == blocks
    assert bd.extra["kv_cache_tokens"] == blocks * 64  # FlashMLASparse forces 64-token blocks
    assert any(r.id == "vllm.dsa_indexer" for r in bd.rules)
    assert any("64-token" in w for w in bd.warnings)


def test_vllm_plain_mla_is_unchanged_without_an_indexer() -> None:
    dense = [g.model_copy(update={"indexer_dim": None}) for g in V32.layers]
    p = vllm_plan("fp8")
    bd = calculate(p.model_copy(update={"model": V32.model_copy(update={"layers": dense})}))
    assert bd.extra["kv_cache_tokens"] == (10 << 30) // (61 * 576 * 16) * 16  # fp8 latent, --block-size 16
    assert not any(r.id == "vllm.dsa_indexer" for r in bd.rules)
