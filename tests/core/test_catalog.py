"""Shipped catalogue (presets/*.json validated by pydantic) and the user's own entries."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from kvdesk.core import catalog
from kvdesk.core.errors import InputError
from kvdesk.core.gpu import GpuSpec
from kvdesk.core.importers.hf_config import import_hf_config
from kvdesk.core.resources import presets_dir

CONFIGS = Path(__file__).parents[1] / "data" / "configs"


def test_shipped_files_validate_and_are_big_enough() -> None:
    models = catalog.ModelCatalogFile.model_validate_json((presets_dir() / "models.json").read_text())
    gpus = catalog.GpuCatalogFile.model_validate_json((presets_dir() / "gpus.json").read_text())
    assert len(models.models) >= 40 and len(gpus.gpus) >= 40
    for entries in (models.models, gpus.gpus):
        ids = [e.id for e in entries]
        assert len(ids) == len(set(ids))


@pytest.mark.parametrize("wanted", ["llama-3.1-8b", "LLAMA-3.1-8B", "Llama 3.1 8B"])
def test_ids_other_code_relies_on(wanted: str) -> None:
    assert catalog.find_model(wanted).id == "llama-3.1-8b"
    # CUDA-visible total (llama.cpp "VRAM: 24210 MiB"), not nvidia-smi's 24564 MiB: see test_catalog_gpus.py
    assert catalog.find_gpu("rtx-4090").memory_bytes == 24210 << 20
    assert catalog.find_gpu("h100-sxm-80gb").vendor == "nvidia"


def test_every_attention_layout_is_covered() -> None:
    models = catalog.shipped_models()
    kinds = set().union(*(m.kinds() for m in models))
    assert {"full", "sliding", "chunked", "mla", "recurrent"} <= kinds
    families = {m.family for m in models}
    for family in [
        "Llama 3",
        "Llama 4",
        "Qwen2.5",
        "Qwen3",
        "Qwen3-Next",
        "Mistral",
        "Mixtral",
        "Gemma 2",
        "Gemma 3",
        "gpt-oss",
        "DeepSeek V2",
        "DeepSeek V3",
        "Kimi K2",
        "Phi",
        "Jamba",
        "Falcon-H1",
        "GLM",
    ]:
        assert family in families, family
    assert sum(m.is_moe for m in models) >= 10


def test_sources_name_a_config() -> None:
    for m in catalog.shipped_models():
        assert re.match(r"^[\w.-]+/[\w.-]+ config\.json", m.source), m.id
        for fmt in m.weight_formats:
            assert fmt.bytes, (m.id, fmt.name)
            assert fmt.source, (m.id, fmt.name)
            if fmt.bits_per_weight:  # sized from bits per weight, unless a real file's size is quoted
                assert "estimated" in fmt.source or "log" in fmt.source, (m.id, fmt.name)


def test_entries_match_the_configs_they_name() -> None:
    """Catalogue layers and parameter counts equal a fresh import of the checked-in config."""
    checked = 0
    for m in catalog.shipped_models():
        found = re.search(r"\(copy in tests/data/configs/([\w.-]+\.json)", m.source)
        if not found:
            continue
        imported = import_hf_config(CONFIGS / found.group(1)).model
        assert m.layers == imported.layers, m.id
        assert m.params_total == imported.params_total, m.id
        assert m.native_context == imported.native_context, m.id
        checked += 1
    assert checked >= 35


def test_no_entry_is_typed_in_from_memory() -> None:
    """Each entry names its checked-in config, or says plainly that it was not verified against one."""
    for m in catalog.shipped_models():
        assert "transcribed" not in m.source, m.id
        copy = re.search(r"\(copy in tests/data/configs/([\w.-]+\.json)", m.source)
        assert (copy and (CONFIGS / copy.group(1)).is_file()) or "not verified against a config file" in m.source, m.id


def test_same_architecture_cross_checks_hold() -> None:
    """Entries checked against a sibling's real config (e.g. the base model's) match its layers and size."""
    checked = 0
    for m in catalog.shipped_models():
        found = re.search(r"same architecture as [\w' ]+config: tests/data/configs/([\w.-]+\.json)", m.notes)
        if found:
            sibling = import_hf_config(CONFIGS / found.group(1)).model
            assert (m.layers, m.params_total, m.hidden_size, m.vocab_size) == (
                sibling.layers, sibling.params_total, sibling.hidden_size, sibling.vocab_size), m.id
            checked += 1
    assert checked >= 2


def test_every_preset_names_its_hugging_face_repo() -> None:
    sources = json.loads((CONFIGS / "SOURCES.json").read_text())
    for m in catalog.shipped_models():
        assert m.hf_repo and m.hf_repo.count("/") == 1, m.id
        copy = re.search(r"\(copy in tests/data/configs/([\w.-]+\.json)", m.source)
        if copy and m.id != "llama-3.1-405b":  # 405B: the base model's config, the Instruct repo
            assert sources[copy.group(1)]["hf_repo"] == m.hf_repo, m.id


def test_plans_from_presets_carry_the_repo() -> None:
    from kvdesk.core.defaults import default_plan
    from kvdesk.core.export import vllm_command

    entry = catalog.find_model("qwen3-32b")
    origin = catalog.origin_for(entry)
    assert (origin.preset_id, origin.hf_repo) == ("qwen3-32b", "Qwen/Qwen3-32B")
    assert "hf_repo" not in entry.to_spec().model_dump()  # ModelSpec (plan-file schema) is unchanged
    plan = default_plan()
    assert plan.origin.hf_repo == "meta-llama/Llama-3.1-8B-Instruct"
    plan = plan.model_copy(update={"engine": plan.engine.model_copy(update={"name": "vllm"})})
    command = vllm_command(plan)
    assert "meta-llama/Llama-3.1-8B-Instruct" in command and "MODEL" not in command


@pytest.mark.parametrize("repo", ["no-slash", "a/b/c", "/lead", "a b/c"])
def test_bad_hf_repo_refused(repo: str) -> None:
    spec = catalog.find_model("qwen3-8b").to_spec()
    with pytest.raises(InputError, match="hf_repo"):
        catalog.model_entry("my-qwen", spec, hf_repo=repo)


def test_hand_checked_kv_sizes() -> None:
    gemma3 = catalog.find_model("gemma-3-27b")
    kinds = [g.kind for g in gemma3.iter_layers()]
    assert len(kinds) == 62 and kinds.count("full") == 10  # layers 5, 11, … 59
    assert {(g.n_kv_heads, g.head_dim_k) for g in gemma3.layers} == {(16, 128)}  # head_dim ≠ 5376/32
    scout = catalog.find_model("llama-4-scout")
    assert [g.kind for g in scout.iter_layers()][:4] == ["chunked"] * 3 + ["full"]
    assert {g.window for g in scout.layers if g.kind == "chunked"} == {8192}
    kimi = catalog.find_model("kimi-k2")
    assert kimi.kinds() == {"mla"} and kimi.layers[0].k_width() == 576
    jamba = catalog.find_model("jamba-1.5-mini")
    kinds = [g.kind for g in jamba.iter_layers()]
    assert kinds.count("full") == 4 and kinds[4] == "full"  # attn_layer_offset 4, period 8
    # Mamba-1: (4-1)·8192 conv + 16·8192 SSM values at f32 per layer per sequence
    assert {g.state_bytes for g in jamba.layers if g.kind == "recurrent"} == {4 * (3 * 8192 + 16 * 8192)}


def test_gpu_entries() -> None:
    gpus = catalog.shipped_gpus()
    assert {"nvidia", "amd", "intel", "apple"} <= {g.vendor for g in gpus}
    for g in gpus:
        assert g.source and g.bandwidth_bytes_per_s >= 5e10, g.id
    # CUDA totals sit a few hundred MiB under the label (79.19 GiB on an 80 GB H100), so round up
    sizes = {math.ceil(g.memory_bytes / 2**30) for g in gpus if g.vendor == "nvidia" and not g.unified_memory}
    assert {8, 12, 16, 24, 32, 48, 80} <= sizes
    # llama.cpp logs: recommendedMaxWorkingSetSize 21845.34 MB on 32 GB, 73728 MB on 96 GB
    assert catalog.find_gpu("m1-pro-32gb").usable_bytes / 2**20 == pytest.approx(21845.34, abs=0.01)
    assert catalog.find_gpu("m2-max-96gb").usable_bytes == 73728 << 20
    for g in gpus:
        assert g.unified_memory == (g.vendor == "apple" or "ryzen-ai" in g.id or "jetson" in g.id), g.id


def test_gpu_memory_is_a_cited_reading_or_says_it_is_not() -> None:
    """Discrete-GPU memory: a real driver reading with its source, or plainly marked as label-derived/unverified."""
    for g in catalog.shipped_gpus():
        if g.unified_memory:
            continue
        cited = any(k in g.source for k in ("http", "captures/", " log", "search-index id"))
        marked = g.source.startswith(("label-derived", "not verified"))
        assert cited or marked, g.id
    # CUDA-visible totals = nvidia-smi Total - Reserved in the real captures (utkuozdemir/nvidia_gpu_exporter
    # internal/captures): 16376 - 434 = 15942 MiB (ggml log: 15937), 143771 - 614 = 143157 MiB (torch: 143156)
    assert catalog.find_gpu("rtx-4080-super").memory_bytes == 15937 << 20
    assert catalog.find_gpu("h200").memory_bytes == 143156 << 20


def test_user_model_saved_and_overrides(tmp_path: Path) -> None:
    imported = import_hf_config(CONFIGS / "qwen3-8b.json").model
    entry = catalog.model_entry("my-qwen", imported.model_copy(update={"name": "My Qwen"}))
    path = catalog.save_user_model(entry)
    assert path.parent == Path(__import__("os").environ["KVDESK_CONFIG_DIR"])
    assert catalog.find_model("my-qwen").layers == imported.layers
    assert catalog.find_model("My Qwen").id == "my-qwen"
    shipped = catalog.find_model("llama-3.1-8b")
    catalog.save_user_model(catalog.model_entry("llama-3.1-8b", shipped.to_spec().model_copy(update={"name": "Mine"})))
    assert catalog.find_model("llama-3.1-8b").name == "Mine"
    assert len(catalog.all_models()) == len(catalog.shipped_models()) + 1
    assert catalog.remove_user_model("my-qwen") and not catalog.remove_user_model("my-qwen")
    with pytest.raises(InputError, match="unknown model"):
        catalog.find_model("my-qwen")


def test_user_gpu_saved() -> None:
    catalog.save_user_gpu(catalog.gpu_entry("my-card", GpuSpec(name="Lab card", memory_bytes=10 << 30)))
    assert catalog.find_gpu("lab card").memory_bytes == 10 << 30
    assert catalog.remove_user_gpu("my-card")


def test_bad_ids_and_bad_user_files() -> None:
    spec = catalog.find_model("qwen3-8b").to_spec()
    with pytest.raises(InputError, match="model id"):
        catalog.model_entry("bad id with spaces", spec)
    user = catalog.config_dir() / "gpus.json"
    user.parent.mkdir(parents=True, exist_ok=True)
    user.write_text("{broken")
    with pytest.raises(InputError, match="not valid JSON"):
        catalog.all_gpus()
    user.write_text(json.dumps({"format_version": 99, "gpus": []}))
    with pytest.raises(InputError, match="newer kvdesk"):
        catalog.all_gpus()
    user.write_text(json.dumps({"format_version": 1, "gpus": [{"id": "x", "name": "x", "memory_bytes": -1}]}))
    with pytest.raises(InputError, match="memory_bytes"):
        catalog.all_gpus()


def test_unknown_names_suggest() -> None:
    with pytest.raises(InputError, match=r"did you mean: .*qwen3-30b-a3b"):
        catalog.find_model("qwen3-30")
