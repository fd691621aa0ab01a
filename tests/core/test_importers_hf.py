"""Real config.json files (tests/data/configs, sources in SOURCES.json) imported and checked
against hand-worked KV sizes.

KV per token at bf16 (2 bytes), worked by hand from each config:
  full/sliding layer: 2 (K and V) × n_kv_heads × head_dim × 2 B
  MLA layer (DeepSeek): (kv_lora_rank + qk_rope_head_dim) × 2 B — the compressed latent
Sliding layers hold at most ``window`` tokens; recurrent layers a fixed state per sequence.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from kvdesk.core.errors import InputError
from kvdesk.core.importers.hf_config import import_hf_config
from kvdesk.core.model import ModelSpec

CONFIGS = Path(__file__).parents[1] / "data" / "configs"


def kv_bytes(model: ModelSpec, ctx: int, dtype_bytes: int = 2) -> int:
    """KV bytes of one sequence of ``ctx`` tokens (windows honoured), recurrent state excluded."""
    total = 0
    for g in model.layers:
        if not g.has_kv:
            continue
        tokens = min(ctx, g.window) if g.window else ctx
        total += g.count * (g.k_width() + g.v_width()) * dtype_bytes * tokens
    return total


# file, layers, KV bytes per token of one full-attention layer set (all layers, short context)
DENSE = [
    ("llama-3.1-8b-instruct.json", 32, 2 * 32 * 8 * 128 * 2),  # 131072: 128 KiB per token
    ("llama-3.1-70b-instruct.json", 80, 2 * 80 * 8 * 128 * 2),
    ("llama-3.2-1b-instruct.json", 16, 2 * 16 * 8 * 64 * 2),  # explicit head_dim 64
    ("llama-3.2-3b-instruct.json", 28, 2 * 28 * 8 * 128 * 2),
    ("mistral-7b-instruct-v0.3.json", 32, 2 * 32 * 8 * 128 * 2),
    ("mixtral-8x7b-v0.1.json", 32, 2 * 32 * 8 * 128 * 2),
    ("qwen2-7b-instruct.json", 28, 2 * 28 * 4 * 128 * 2),  # use_sliding_window false → full
    ("qwen2.5-3b-instruct.json", 36, 2 * 36 * 2 * 128 * 2),
    ("qwen3-0.6b.json", 28, 2 * 28 * 8 * 128 * 2),  # head_dim 128 ≠ 1024/16
    ("qwen3-1.7b.json", 28, 2 * 28 * 8 * 128 * 2),
    ("qwen3-8b.json", 36, 2 * 36 * 8 * 128 * 2),
    ("qwen3-30b-a3b.json", 48, 2 * 48 * 4 * 128 * 2),
    ("qwen3-235b-a22b.json", 94, 2 * 94 * 4 * 128 * 2),
    ("qwen1.5-moe-a2.7b-chat.json", 24, 2 * 24 * 16 * 128 * 2),
    ("phi-3.5-mini-instruct.json", 32, 2 * 32 * 32 * 96 * 2),  # no num_key_value_heads → MHA
    ("phi-4-mini-instruct.json", 32, 2 * 32 * 8 * 128 * 2),
    ("ministral-3-3b-reasoning-2512.json", 26, 2 * 26 * 8 * 128 * 2),  # text_config
]


@pytest.mark.parametrize(("name", "layers", "per_token"), DENSE)
def test_full_attention_models(name: str, layers: int, per_token: int) -> None:
    model = import_hf_config(CONFIGS / name).model
    assert model.n_layers == layers
    assert model.kinds() == {"full"}
    assert kv_bytes(model, 1) == per_token
    assert kv_bytes(model, 4096) == 4096 * per_token


def test_llama_3_1_8b_parameters_are_exact() -> None:
    # the safetensors total of meta-llama/Llama-3.1-8B-Instruct is 8,030,261,248 parameters
    result = import_hf_config(CONFIGS / "llama-3.1-8b-instruct.json")
    assert result.model.params_total == 8_030_261_248
    assert result.model.weights_bytes("bf16") == 2 * 8_030_261_248


@pytest.mark.parametrize(
    ("name", "total_b", "active_b"),
    [
        ("mixtral-8x7b-v0.1.json", 46.7, 12.9),  # Mistral: 46.7B total, 12.9B active
        ("qwen3-30b-a3b.json", 30.5, 3.3),  # Qwen model card: 30.5B / 3.3B
        ("qwen3-235b-a22b.json", 235.0, 22.0),
        ("qwen1.5-moe-a2.7b-chat.json", 14.3, 2.7),
        ("deepseek-v2-lite-chat.json", 15.7, 2.4),
        ("deepseek-v3.json", 671.0, 37.0),
    ],
)
def test_moe_parameter_counts_match_model_cards(name: str, total_b: float, active_b: float) -> None:
    model = import_hf_config(CONFIGS / name).model
    assert model.params_total / 1e9 == pytest.approx(total_b, rel=0.02)
    assert model.params_active is not None
    assert model.params_active / 1e9 == pytest.approx(active_b, rel=0.12)


@pytest.mark.parametrize(
    ("name", "layers", "rank_plus_rope", "heads"),
    [("deepseek-v2-lite-chat.json", 27, 512 + 64, 16), ("deepseek-v3.json", 61, 512 + 64, 128)],
)
def test_mla_models_cache_the_latent(name: str, layers: int, rank_plus_rope: int, heads: int) -> None:
    model = import_hf_config(CONFIGS / name).model
    assert model.kinds() == {"mla"}
    g = model.layers[0]
    assert (g.kv_lora_rank, g.rope_dim, g.head_dim_k, g.head_dim_v, g.n_kv_heads) == (512, 64, 192, 128, heads)
    assert kv_bytes(model, 1) == layers * rank_plus_rope * 2  # V2-Lite 31,104 B; V3 70,272 B


def test_deepseek_v3_fp8_quantization_config() -> None:
    result = import_hf_config(CONFIGS / "deepseek-v3.json")
    assert result.model.dtype == "fp8"
    assert any("quantization_config" in n for n in result.notes)


@pytest.mark.parametrize(
    ("name", "layers", "per_layer", "window"),
    [
        ("gemma-2-2b-it.json", 26, 2 * 4 * 256 * 2, 4096),  # head_dim 256 ≠ 2304/8
        ("gemma-2-9b-it.json", 42, 2 * 8 * 256 * 2, 4096),
        ("gemma-2-27b-it.json", 46, 2 * 16 * 128 * 2, 4096),  # head_dim 128 ≠ 4608/32
    ],
)
def test_gemma2_alternates_sliding_and_full(name: str, layers: int, per_layer: int, window: int) -> None:
    model = import_hf_config(CONFIGS / name).model
    assert [g.kind for g in model.iter_layers()][:4] == ["sliding", "full", "sliding", "full"]
    assert model.n_layers == layers
    ctx = 32768
    half = layers // 2
    assert kv_bytes(model, ctx) == half * per_layer * ctx + half * per_layer * window


def test_gemma3_1b_five_sliding_one_full() -> None:
    model = import_hf_config(CONFIGS / "gemma-3-1b-it.json").model
    kinds = [g.kind for g in model.iter_layers()]
    assert kinds[:6] == ["sliding"] * 5 + ["full"]
    assert kinds.count("full") == 4  # layers 5, 11, 17, 23 of 26
    per_layer = 2 * 1 * 256 * 2
    assert kv_bytes(model, 32768) == 4 * per_layer * 32768 + 22 * per_layer * 512


def test_gpt_oss_layer_types_and_mxfp4() -> None:
    result = import_hf_config(CONFIGS / "gpt-oss-20b.json")
    model = result.model
    assert [g.kind for g in model.iter_layers()] == ["sliding", "full"] * 12
    assert {g.window for g in model.layers if g.kind == "sliding"} == {128}
    per_layer = 2 * 8 * 64 * 2
    assert kv_bytes(model, 131072) == 12 * per_layer * 131072 + 12 * per_layer * 128
    assert model.dtype == "MXFP4"
    assert model.n_experts == 32 and model.n_experts_active == 4
    assert model.params_total / 1e9 == pytest.approx(20.9, rel=0.02)  # OpenAI: 20.9B total


@pytest.mark.parametrize(
    ("name", "layers", "full_layers"),
    [("qwen3-next-80b-a3b-instruct.json", 48, 12), ("qwen3.5-35b-a3b.json", 40, 10)],
)
def test_gated_deltanet_hybrids(name: str, layers: int, full_layers: int) -> None:
    model = import_hf_config(CONFIGS / name).model
    kinds = [g.kind for g in model.iter_layers()]
    assert kinds[:4] == ["recurrent"] * 3 + ["full"]
    assert kinds.count("full") == full_layers
    assert kv_bytes(model, 1) == full_layers * 2 * 2 * 256 * 2
    # llama.cpp n_embd_r = (4-1)·(32·128 + 2·16·128) = 24,576; n_embd_s = 128·(32·128) = 524,288; f32
    states = {g.state_bytes for g in model.layers if g.kind == "recurrent"}
    assert states == {4 * (24_576 + 524_288)}


def test_text_config_and_snapshot_folder(tmp_path: Path) -> None:
    doc = json.loads((CONFIGS / "qwen3.5-35b-a3b.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(doc))
    result = import_hf_config(tmp_path)
    assert result.model.hidden_size == 2048  # from text_config, not vision_config
    assert any("text_config" in n for n in result.notes)
    assert result.origin.config_path == str(tmp_path / "config.json")


def test_every_config_has_a_source() -> None:
    sources = json.loads((CONFIGS / "SOURCES.json").read_text())
    files = {p.name for p in CONFIGS.glob("*.json")} - {"SOURCES.json"}
    assert files == set(sources)
    assert len(files) >= 15
    for entry in sources.values():
        assert entry["hf_repo"].count("/") == 1 and entry["copied_from"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "top level is not an object"),
        ('{"hidden_size": 4096}', "num_hidden_layers"),
        ('{"num_hidden_layers": 2, "layer_types": ["full_attention"]}', "layer_types"),
        ('{"num_hidden_layers": 100000, "hidden_size": 8, "num_attention_heads": 1}', "layers"),
    ],
)
def test_bad_configs_raise_input_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        import_hf_config(path)


@pytest.mark.parametrize(
    "extra",
    [
        {"model_type": "llama4_text", "no_rope_layers": [1]},
        {"num_experts": 4, "mlp_only_layers": 5},
        {"model_type": "jamba", "attn_layer_period": 0},
        {"num_attention_heads": 0},
        {"head_dim": -5},
        {"vocab_size": 1 << 40},
        {"text_config": 5, "quantization_config": {"quant_method": 5}},
    ],
)
def test_hostile_values(tmp_path: Path, extra: dict) -> None:
    cfg = {"model_type": "llama", "num_hidden_layers": 4, "hidden_size": 64, "num_attention_heads": 4, **extra}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with contextlib.suppress(InputError):
        import_hf_config(tmp_path)


def test_missing_and_oversized_config(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no config\.json"):
        import_hf_config(tmp_path)
    big = tmp_path / "config.json"
    big.write_bytes(b" " * (5 << 20))
    with pytest.raises(InputError, match="too large"):
        import_hf_config(big)


# Synthetic configs (field names as in the transformers config classes) for the Mamba-2 / short-conv
# paths, whose state sizes are worked by hand from llama.cpp's n_embd_r / n_embd_s.
def _import(tmp_path: Path, cfg: dict) -> ModelSpec:
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    return import_hf_config(tmp_path).model


def test_granite_hybrid_layer_types_mamba2(tmp_path: Path) -> None:
    cfg = {
        "model_type": "granitemoehybrid",
        "num_hidden_layers": 4,
        "hidden_size": 1536,
        "num_attention_heads": 12,
        "num_key_value_heads": 4,
        "layer_types": ["mamba", "mamba", "attention", "mamba"],
        "mamba_n_heads": 48,
        "mamba_d_head": 64,
        "mamba_d_state": 128,
        "mamba_n_groups": 1,
        "mamba_d_conv": 4,
        "vocab_size": 100,
    }
    m = _import(tmp_path, cfg)
    assert [g.kind for g in m.iter_layers()] == ["recurrent", "recurrent", "full", "recurrent"]
    d_inner = 48 * 64
    assert m.layers[0].state_bytes == 4 * (3 * (d_inner + 2 * 128) + 128 * d_inner)


def test_nemotron_h_pattern(tmp_path: Path) -> None:
    cfg = {
        "model_type": "nemotron_h",
        "num_hidden_layers": 4,
        "hidden_size": 64,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "hybrid_override_pattern": "M-*M",
        "mamba_num_heads": 8,
        "mamba_head_dim": 16,
        "ssm_state_size": 32,
        "n_groups": 2,
        "conv_kernel": 4,
        "vocab_size": 10,
    }
    m = _import(tmp_path, cfg)
    assert [g.kind for g in m.iter_layers()] == ["recurrent", "none", "full", "recurrent"]
    assert m.layers[0].state_bytes == 4 * (3 * (128 + 2 * 2 * 32) + 32 * 128)


def test_falcon_h1_lists_attention_and_ssm(tmp_path: Path) -> None:
    cfg = {
        "model_type": "falcon_h1",
        "num_hidden_layers": 3,
        "hidden_size": 256,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "head_dim": 64,
        "mamba_d_ssm": 512,
        "mamba_n_heads": 8,
        "mamba_d_head": 64,
        "mamba_d_state": 16,
        "mamba_n_groups": 1,
        "mamba_d_conv": 4,
        "vocab_size": 10,
    }
    m = _import(tmp_path, cfg)
    assert [(g.count, g.kind) for g in m.layers] == [(3, "full"), (3, "recurrent")]
    assert m.layers[1].state_bytes == 4 * (3 * (512 + 32) + 16 * 512)


def test_lfm2_short_conv(tmp_path: Path) -> None:
    cfg = {
        "model_type": "lfm2",
        "num_hidden_layers": 3,
        "hidden_size": 1024,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "layer_types": ["conv", "full_attention", "conv"],
        "conv_L_cache": 3,
        "vocab_size": 10,
    }
    m = _import(tmp_path, cfg)
    assert [g.kind for g in m.iter_layers()] == ["recurrent", "full", "recurrent"]
    assert m.layers[0].state_bytes == 4 * 1024 * 2  # n_embd × (L_cache − 1), f32


def test_awq_quantization_config(tmp_path: Path) -> None:
    cfg = json.loads((CONFIGS / "qwen3-8b.json").read_text())
    cfg["quantization_config"] = {"quant_method": "awq", "bits": 4, "group_size": 128}
    m = _import(tmp_path, cfg)
    assert m.dtype == "awq-int4"
    # the Linear layers at 4.25 bits, the (untied) embedding and lm_head at 16 bits
    embed = cfg["vocab_size"] * cfg["hidden_size"] * (1 if cfg.get("tie_word_embeddings") else 2)
    assert m.weights_bytes() == int((m.params_total - embed) * 4.25 / 8) + 2 * embed


def test_random_config_values_only_raise_input_error(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Any mix of plausible keys with hostile values gives a model or an InputError, nothing else."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    keys = [
        "num_hidden_layers",
        "hidden_size",
        "num_attention_heads",
        "num_key_value_heads",
        "head_dim",
        "sliding_window",
        "sliding_window_pattern",
        "kv_lora_rank",
        "qk_rope_head_dim",
        "qk_nope_head_dim",
        "v_head_dim",
        "num_experts",
        "num_experts_per_tok",
        "moe_intermediate_size",
        "intermediate_size",
        "vocab_size",
        "max_position_embeddings",
        "full_attention_interval",
        "linear_num_value_heads",
        "linear_key_head_dim",
        "mamba_d_state",
        "mamba_n_heads",
        "attention_chunk_size",
        "no_rope_layers",
        "layer_types",
        "mlp_only_layers",
        "first_k_dense_replace",
        "text_config",
        "quantization_config",
    ]
    values = st.one_of(
        st.integers(-3, 1 << 40),
        st.integers(0, 64),
        st.none(),
        st.text(max_size=5),
        st.booleans(),
        st.lists(st.one_of(st.integers(0, 2), st.sampled_from(["full_attention", "mamba"])), max_size=8),
        st.dictionaries(st.sampled_from(keys), st.integers(0, 64), max_size=4),
    )
    model_types = st.sampled_from(
        ["llama", "gemma2", "gemma3_text", "qwen3_next", "jamba", "llama4_text", "falcon_h1", "deepseek_v3", "mixtral"]
    )
    base = tmp_path_factory.mktemp("cfg")

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.dictionaries(st.sampled_from(keys), values, max_size=12), model_types)
    def check(cfg: dict, model_type: str) -> None:
        (base / "config.json").write_text(json.dumps({**cfg, "model_type": model_type}))
        with contextlib.suppress(InputError):
            import_hf_config(base)

    check()


def test_names_from_hub_cache_and_file_stem(tmp_path: Path) -> None:
    snap = tmp_path / "models--google--gemma-3-1b-it" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text((CONFIGS / "gemma-3-1b-it.json").read_text())
    result = import_hf_config(snap)
    assert result.model.name == "google/gemma-3-1b-it"
    assert result.origin.hf_repo == "google/gemma-3-1b-it"
    assert import_hf_config(CONFIGS / "gemma-3-1b-it.json").model.name == "gemma-3-1b-it"
