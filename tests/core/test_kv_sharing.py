"""Layers that own no KV cache: Gemma 3n / Gemma 4 KV sharing and GLM-4.5's MTP (NextN) layer.

The importers turn them into ``none`` layers; the llama.cpp profile then sizes the cache like the
real logs in tests/data/llamacpp/kv_logs.json (cases ``2026-gemma4-e4b-*`` and
``b6168-glm45-air-*``), and vLLM gives them no KV spec (gpu_model_runner get_kv_cache_spec skips
layers with ``kv_sharing_target_layer_name``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kvdesk.core.calculator import calculate
from kvdesk.core.engines import get_engine
from kvdesk.core.engines.llamacpp import LlamaCppEngine
from kvdesk.core.errors import InputError
from kvdesk.core.gpu import custom_gpu
from kvdesk.core.importers import merge_layers
from kvdesk.core.importers.gguf import build_layers as gguf_layers
from kvdesk.core.importers.hf_config import import_hf_config
from kvdesk.core.model import LayerGroup, ModelSpec
from kvdesk.core.plan import EngineSettings, Plan, Workload

DATA = Path(__file__).parents[1] / "data"
LOGS = json.loads((DATA / "llamacpp" / "kv_logs.json").read_text(encoding="utf-8"))
CONFIGS = DATA / "configs"


def logged_layers(name: str) -> list[LayerGroup]:
    return merge_layers([LayerGroup(**g) for g in LOGS["models"][name]["layers"]])


def summary(layers: list[LayerGroup]) -> dict[str, int]:
    out: dict[str, int] = {}
    for g in layers:
        out[g.kind] = out.get(g.kind, 0) + g.count
    return out


# GGUF header of GLM-4.5-Air as printed in the b6168 log (ik_llama.cpp PR 689, Thireus)
GLM45_AIR = {
    "glm4moe.block_count": 47,
    "glm4moe.embedding_length": 4096,
    "glm4moe.attention.head_count": 96,
    "glm4moe.attention.head_count_kv": 8,
    "glm4moe.attention.key_length": 128,
    "glm4moe.attention.value_length": 128,
    "glm4moe.nextn_predict_layers": 1,
}


def test_gguf_glm45_mtp_layer_has_no_kv_as_the_log_shows() -> None:
    notes: list[str] = []
    layers = gguf_layers(GLM45_AIR, "glm4moe", notes)
    assert layers == logged_layers("glm-4.5-air")  # 46 full + the MTP layer without KV
    assert any("nextn_predict_layers" in n for n in notes)


def test_nextn_only_drops_kv_for_architectures_that_skip_it() -> None:
    # llama.cpp sets n_layer_kv_from_start from nextn only for glm4moe / bailingmoe2
    kv = {k.replace("glm4moe", "deepseek2x"): v for k, v in GLM45_AIR.items()}
    assert summary(gguf_layers(kv, "deepseek2x", [])) == {"full": 47}


def _gemma4_e4b_header() -> dict[str, Any]:
    pattern = [(il % 6) != 5 for il in range(42)]  # 5 sliding + 1 full, as the GGUF array says
    return {
        "gemma4.block_count": 42,
        "gemma4.embedding_length": 2560,
        "gemma4.attention.head_count": 8,
        "gemma4.attention.head_count_kv": 2,
        "gemma4.attention.key_length": 512,
        "gemma4.attention.value_length": 512,
        "gemma4.attention.key_length_swa": 256,
        "gemma4.attention.value_length_swa": 256,
        "gemma4.attention.sliding_window": 512,
        "gemma4.attention.sliding_window_pattern": pattern,
        "gemma4.attention.shared_kv_layers": 18,
    }


def test_gguf_gemma4_shared_kv_layers_and_swa_head_size() -> None:
    layers = gguf_layers(_gemma4_e4b_header(), "gemma4", [])
    assert layers == logged_layers("gemma-4-e4b")  # 4 full (512) + 20 sliding (256) + 18 without KV


@pytest.mark.parametrize(("n_layer", "full", "sliding", "none"), [(35, 4, 16, 15), (30, 4, 16, 10)])
def test_gguf_gemma3n_first_twenty_layers_own_the_cache(n_layer: int, full: int, sliding: int, none: int) -> None:
    # llama-model.cpp LLM_ARCH_GEMMA3N: set_swa_pattern(5), n_layer_kv_from_start = 20 (E4B and E2B)
    kv = {
        "gemma3n.block_count": n_layer,
        "gemma3n.embedding_length": 2048,
        "gemma3n.attention.head_count": 8,
        "gemma3n.attention.head_count_kv": 2,
        "gemma3n.attention.key_length": 256,
        "gemma3n.attention.value_length": 256,
        "gemma3n.attention.sliding_window": 512,
    }
    layers = gguf_layers(kv, "gemma3n", [])
    assert summary(layers) == {"sliding": sliding, "full": full, "none": none}
    assert [g.kind for g in layers[:2]] == ["sliding", "full"] and layers[0].count == 4


def test_gguf_shared_layers_leaving_no_kv_is_an_input_error() -> None:
    kv = {**_gemma4_e4b_header(), "gemma4.attention.shared_kv_layers": 42}
    with pytest.raises(InputError, match="shared_kv_layers"):
        gguf_layers(kv, "gemma4", [])


def test_hf_gemma3n_config_marks_the_shared_tail() -> None:
    result = import_hf_config(CONFIGS / "gemma-3n-e4b-it.json")
    layers = result.model.layers
    assert summary(layers) == {"sliding": 16, "full": 4, "none": 15}
    assert all(g.kind == "none" for g in layers[-1:]) and layers[-1].count == 15
    assert any("num_kv_shared_layers 15" in n for n in result.notes)
    # same layers as llama.cpp's hard-coded n_layer_kv_from_start = 20
    kv = {
        "gemma3n.block_count": 35,
        "gemma3n.attention.head_count": 8,
        "gemma3n.attention.head_count_kv": 2,
        "gemma3n.attention.key_length": 256,
        "gemma3n.attention.sliding_window": 512,
    }
    assert layers == gguf_layers(kv, "gemma3n", [])


def test_hf_gemma4_full_layers_use_global_head_dim_and_k_eq_v_heads() -> None:
    # google/gemma-4-26B-A4B: attention_k_eq_v, num_global_key_value_heads 2, global_head_dim 512
    model = import_hf_config(CONFIGS / "gemma-4-26b-a4b.json").model
    full = {(g.n_kv_heads, g.head_dim_k, g.head_dim_v) for g in model.layers if g.kind == "full"}
    sliding = {(g.n_kv_heads, g.head_dim_k, g.window) for g in model.layers if g.kind == "sliding"}
    assert full == {(2, 512, 512)} and sliding == {(8, 256, 1024)}
    assert summary(model.layers) == {"sliding": 25, "full": 5}


def _llama_plan(model: ModelSpec, ctx: int, **engine: Any) -> Plan:
    return Plan(
        model=model,
        gpu=custom_gpu(24),
        workload=Workload(context=ctx, batch=1),
        engine=EngineSettings(name="llama.cpp", **engine),
    )


def test_gemma3n_llamacpp_cache_counts_only_the_owning_layers() -> None:
    model = import_hf_config(CONFIGS / "gemma-3n-e4b-it.json").model
    plan = _llama_plan(model, 4096)
    eng = get_engine("llama.cpp")
    assert isinstance(eng, LlamaCppEngine)
    groups = {g.window: (g.n_layers, g.k_row) for g in eng.layout(plan).groups}
    # 4 full + 16 sliding layers of 2 heads x 256 at f16; the 15 shared layers add nothing
    assert groups == {0: (4, 4 * 2 * 256 * 2), 512: (16, 16 * 2 * 256 * 2)}
    cells = eng.cells(plan, 4096, 1)
    # SWA cache: PAD(min(4096, 512 + 512), 256) = 1024 cells (llama-kv-cache-iswa.cpp)
    assert (int(cells["base"]), int(cells["swa512"])) == (4096, 1024)
    bd = calculate(plan)
    assert bd.kv_cache_bytes == 2 * (4 * 4096 + 16 * 1024) * 2 * 256 * 2


def test_vllm_gives_shared_layers_no_pages() -> None:
    shared = import_hf_config(CONFIGS / "gemma-3n-e4b-it.json").model
    owning = shared.model_copy(update={"layers": [g for g in shared.layers if g.kind != "none"]})
    extras = []
    for model in (shared, owning):
        plan = Plan(
            model=model,
            gpu=custom_gpu(80),
            workload=Workload(context=8192),
            engine=EngineSettings(name="vllm", kv_cache_memory=8 << 30),
        )
        extras.append(calculate(plan).extra)
    assert extras[0]["num_gpu_blocks"] == extras[1]["num_gpu_blocks"]
    assert extras[0]["kv_cache_tokens"] == extras[1]["kv_cache_tokens"]


def _swa_header(arch: str, n_layer: int, window: int | None) -> dict[str, Any]:
    kv: dict[str, Any] = {
        f"{arch}.block_count": n_layer,
        f"{arch}.attention.head_count": 32,
        f"{arch}.attention.head_count_kv": 8,
        f"{arch}.attention.key_length": 128,
    }
    if window is not None:
        kv[f"{arch}.attention.sliding_window"] = window
    return kv


@pytest.mark.parametrize(
    ("arch", "window", "sliding_at"),
    [
        ("olmo2", 4096, [0, 1, 2, 4]),  # OLMo 3: set_swa_pattern(4), layer 3 full
        ("afmoe", 4096, [0, 1, 2, 4]),
        ("smallthinker", None, [1, 2, 3, 5]),  # set_swa_pattern(4, dense_first): layer 0 full; n_swa 4096 default
        ("exaone4", None, [0, 1, 2, 4]),  # n_swa 4096 when the file has none
    ],
)
def test_gguf_swa_patterns_follow_llama_cpp(arch: str, window: int | None, sliding_at: list[int]) -> None:
    layers = [g for g in gguf_layers(_swa_header(arch, 8, window), arch, []) for _ in range(g.count)]
    assert [i for i, g in enumerate(layers) if g.kind == "sliding"][:4] == sliding_at
    assert {g.window for g in layers if g.kind == "sliding"} == {window or 4096}


def test_gguf_llama4_sliding_window_zero_turns_chunking_off() -> None:
    on = gguf_layers(_swa_header("llama4", 8, None), "llama4", [])
    off = gguf_layers(_swa_header("llama4", 8, 0), "llama4", [])
    assert summary(on) == {"chunked": 6, "full": 2} and summary(off) == {"full": 8}


def test_gemma4_moe_params_count_the_dense_mlp_beside_the_experts() -> None:
    # published: Gemma 4 26B-A4B has 25.2B parameters, 3.8B active (8 of 128 experts + the dense MLP)
    # (search-index file ids 56283575308, 54734911918); the vision tower is not counted by kvdesk
    model = import_hf_config(CONFIGS / "gemma-4-26b-a4b.json").model
    assert model.params_total == pytest.approx(25.2e9, rel=0.01)
    assert model.params_active == pytest.approx(3.8e9, rel=0.02)
    assert (model.n_experts, model.n_experts_active) == (128, 8)  # top_k_experts


def test_gemma3n_params_keep_shared_layer_projections_and_per_layer_embeddings() -> None:
    model = import_hf_config(CONFIGS / "gemma-3n-e4b-it.json").model
    h, n, ple, vocab = 2048, 35, 256, 262_144
    attention = n * (h * 8 * 256 * 2 + h * 2 * 512)  # q, o and k, v on every layer, shared ones too
    mlp = n * 3 * h * 16_384
    per_layer_embeddings = vocab * n * ple
    embeddings = 262_400 * h  # tied
    floor = attention + mlp + per_layer_embeddings + embeddings
    # the rest (PLE projections, LAuReL, AltUp, norms) is under 2 %
    assert floor < model.params_total < floor * 1.02
