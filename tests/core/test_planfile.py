""".kvplan round trips, determinism, versioning and migrations, atomic saves."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvdesk import __version__
from kvdesk.core import atomic
from kvdesk.core.calculator import calculate
from kvdesk.core.gpu import GpuSpec, custom_gpu
from kvdesk.core.model import LayerGroup, ModelSpec, WeightFormat, uniform_model
from kvdesk.core.plan import Calibration, EngineSettings, ModelOrigin, Plan, Workload
from kvdesk.core.planfile import (
    FORMAT_VERSION,
    PLAN_EXTENSION,
    PLAN_MIME_TYPE,
    PlanFileError,
    dumps_plan,
    load_plan,
    loads_plan,
    save_plan,
)
from kvdesk.core.planfile_migrate import migrate, registered

PLANS = Path(__file__).parents[1] / "data" / "plans"
V1_FILES = sorted(PLANS.glob("v1_*.kvplan"))


def llama_plan(**work: object) -> Plan:
    model = uniform_model("Llama-ish 8B", 32, 8, 128, params_total=8_030_261_248, native_context=131072,
                          weight_formats=[WeightFormat(name="Q4_K_M", bytes=4_920_734_016)])
    return Plan(
        model=model,
        origin=ModelOrigin(hf_repo="meta-llama/Llama-3.1-8B-Instruct", gguf_file="Llama 3.1 8B Q4_K_M.gguf"),
        gpu=custom_gpu(24),
        workload=Workload(**{"context": 8192, "batch": 4, **work}),  # type: ignore[arg-type]
        notes="für das Team — «quoted» notes\nsecond line",
    )


def hybrid_plan() -> Plan:
    model = ModelSpec(
        name="Hybrid MLA + state",
        layers=[
            LayerGroup(count=3, kind="sliding", n_kv_heads=4, head_dim_k=256, head_dim_v=256, window=512),
            LayerGroup(count=1, kind="full", n_kv_heads=4, head_dim_k=192, head_dim_v=128),
            LayerGroup(count=2, kind="mla", kv_lora_rank=512, rope_dim=64),
            LayerGroup(count=2, kind="recurrent", state_bytes=3_145_728),
        ],
        params_total=3_000_000_000,
        params_active=800_000_000,
    )
    gpu = GpuSpec(name="Apple M3 Max", memory_bytes=64 << 30, unified_memory=True, usable_fraction=0.75,
                  vendor="apple", bandwidth_bytes_per_s=4e11)
    return Plan(
        model=model, gpu=gpu, gpu_count=1,
        workload=Workload(context=32768, batch=2, kv_dtype_k="q8_0", kv_dtype_v="q4_0"),
        engine=EngineSettings(overhead_bytes=123_456_789, flash_attn=True),
        calibration=Calibration(source="log", overhead_delta_bytes=-1_000_000, observed={"kv_mib": 1.5}),
    )


SAMPLES = [llama_plan(), llama_plan(kv_dtype_k="q8_0", kv_dtype_v="f16", batch=1), hybrid_plan()]


def test_constants() -> None:
    assert PLAN_EXTENSION == ".kvplan"
    assert PLAN_MIME_TYPE == "application/x-kvplan+json"


@pytest.mark.parametrize("plan", SAMPLES, ids=["llama", "mixed-kv", "hybrid"])
def test_round_trip_same_plan_and_breakdown(plan: Plan, tmp_path: Path) -> None:
    path = tmp_path / "p.kvplan"
    save_plan(path, plan)
    loaded = load_plan(path)
    assert loaded.plan == plan
    assert loaded.format_version == FORMAT_VERSION
    assert loaded.kvdesk_version == __version__
    assert loaded.messages == []
    assert loaded.breakdown is not None
    assert loaded.breakdown.to_json() == calculate(plan).to_json()
    assert loaded.snapshot == calculate(plan).to_json()


def test_saving_twice_gives_identical_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.kvplan", tmp_path / "b.kvplan"
    save_plan(a, hybrid_plan())
    save_plan(b, loads_plan(a.read_text(encoding="utf-8")).plan)
    assert a.read_bytes() == b.read_bytes()
    text = a.read_text(encoding="utf-8")
    assert text.endswith("}\n") and not text.endswith("\n\n")
    doc = json.loads(text)
    assert list(doc) == sorted(doc) == ["format_version", "kvdesk_version", "plan", "snapshot"]
    assert list(doc["plan"]["workload"]) == sorted(doc["plan"]["workload"])
    assert "für das Team" in dumps_plan(llama_plan())  # UTF-8, not \\u escapes


def test_every_plan_field_is_written_defaults_included() -> None:
    doc = json.loads(dumps_plan(llama_plan()))
    assert doc["plan"]["engine"]["gpu_memory_utilization"] == 0.9
    assert doc["plan"]["engine"]["ubatch"] == 512
    assert set(doc["plan"]) == set(Plan.model_fields)


def test_saved_file_has_normal_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = tmp_path / "p.kvplan"
        save_plan(path, llama_plan())
        assert path.stat().st_mode & 0o777 == 0o644
        path.chmod(0o600)
        save_plan(path, llama_plan(batch=2))
        assert path.stat().st_mode & 0o777 == 0o600  # an existing file keeps its mode
    finally:
        os.umask(old)


@given(
    context=st.integers(1, 1 << 20),
    batch=st.integers(1, 256),
    k=st.sampled_from(["f16", "q8_0", "q4_0", "bf16", "auto"]),
    v=st.sampled_from(["f16", "q8_0", "q5_1", "auto"]),
    util=st.floats(0.05, 1.0),
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_round_trip_property(context: int, batch: int, k: str, v: str, util: float) -> None:
    plan = llama_plan(context=context, batch=batch, kv_dtype_k=k, kv_dtype_v=v).with_engine(
        gpu_memory_utilization=util
    )
    text = dumps_plan(plan)
    loaded = loads_plan(text)
    assert loaded.plan == plan
    assert dumps_plan(loaded.plan) == text


# -- versions ---------------------------------------------------------------------------------
def test_newer_format_is_refused_naming_both_versions() -> None:
    doc = json.loads(dumps_plan(llama_plan()))
    doc["format_version"] = FORMAT_VERSION + 1
    doc["kvdesk_version"] = "9.3.0"
    with pytest.raises(PlanFileError) as err:
        loads_plan(json.dumps(doc))
    msg = str(err.value)
    assert f"format version {FORMAT_VERSION + 1}" in msg and "kvdesk 9.3.0" in msg
    assert f"up to {FORMAT_VERSION}" in msg and __version__ in msg


def test_every_old_version_has_a_migration() -> None:
    assert sorted(registered()) == list(range(1, FORMAT_VERSION))


def test_a_real_file_of_every_old_version_is_checked_in() -> None:
    versions = {json.loads(p.read_text(encoding="utf-8"))["format_version"] for p in PLANS.glob("*.kvplan")}
    assert versions >= set(range(1, FORMAT_VERSION + 1))


@pytest.mark.parametrize("path", V1_FILES, ids=[p.stem for p in V1_FILES])
def test_v1_migration_is_stable(path: Path) -> None:
    """The v2 twins were saved from the migrated v1 files when format 2 was new: migration must not drift."""
    twin = PLANS / path.name.replace("v1_", "v2_", 1)
    assert load_plan(path, recompute_now=False).plan == load_plan(twin, recompute_now=False).plan


V2_FILES = sorted(PLANS.glob("v2_*.kvplan"))


@pytest.mark.parametrize("path", V2_FILES, ids=[p.stem for p in V2_FILES])
def test_v2_migration_is_stable(path: Path) -> None:
    """The v3 twins were saved from the migrated v2 files when format 3 was new: migration must not drift."""
    twin = PLANS / path.name.replace("v2_", "v3_", 1)
    loaded = load_plan(path, recompute_now=False)
    assert loaded.format_version == 2 and any("format version 2" in m for m in loaded.messages)
    assert loaded.plan == load_plan(twin, recompute_now=False).plan


def test_v3_file_keeps_the_ssm_state_of_recurrent_groups() -> None:
    """Format 3's addition: the SSM part of a recurrent state and its dtype survive a save/load."""
    path = PLANS / "v3_qwen35_hybrid_vllm.kvplan"
    raw = json.loads(path.read_text(encoding="utf-8"))
    stored = [g for g in raw["plan"]["model"]["layers"] if "ssm_state_bytes" in g]
    loaded = load_plan(path)
    groups = [g for g in loaded.plan.model.layers if g.ssm_state_bytes is not None]
    assert stored and len(groups) == len(stored)
    assert [(g.ssm_state_bytes, g.ssm_state_dtype) for g in groups] == [
        (g["ssm_state_bytes"], g["ssm_state_dtype"]) for g in stored
    ]
    # and they count: vLLM keeps the SSM part in its own dtype (f32 here), which sizes the state page
    assert loaded.breakdown is not None
    plain = loaded.plan.model_copy(update={"model": loaded.plan.model.model_copy(update={"layers": [
        g.model_copy(update={"ssm_state_bytes": None, "ssm_state_dtype": None}) for g in loaded.plan.model.layers
    ]})})
    assert calculate(plain).to_json()["kv_cache_tokens"] != loaded.breakdown.to_json()["kv_cache_tokens"]


CURRENT_FILES = sorted(PLANS.glob(f"v{FORMAT_VERSION}_*.kvplan"))


@pytest.mark.parametrize("path", CURRENT_FILES, ids=[p.stem for p in CURRENT_FILES])
def test_current_format_is_pinned(path: Path) -> None:
    """Saving a current-format file's plan writes exactly its ``plan`` object back.

    If this fails because Plan gained, lost or renamed a field, the file format changed: bump
    FORMAT_VERSION, register a @migrator, and keep these files as the previous version's fixtures
    (an older kvdesk must refuse the new files by version, not choke on an unknown field).
    """
    raw = json.loads(path.read_text(encoding="utf-8"))
    loaded = load_plan(path)
    assert json.loads(dumps_plan(loaded.plan))["plan"] == raw["plan"]
    assert all("numbers changed" in m for m in loaded.messages)  # engine rules may move on; nothing else


@pytest.mark.parametrize("path", V1_FILES, ids=[p.stem for p in V1_FILES])
def test_v1_files_reload_with_the_same_numbers(path: Path) -> None:
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw["format_version"] == 1
    loaded = load_plan(path)
    assert loaded.format_version == 1
    assert any("format version 1" in m and "upgraded" in m for m in loaded.messages)
    work, gpu = raw["plan"]["workload"], raw["plan"]["gpu"]
    assert loaded.plan.workload.kv_dtype_k == loaded.plan.workload.kv_dtype_v == work["kv_dtype"]
    assert loaded.plan.gpu.memory_bytes / (1 << 30) == gpu["memory_gib"]
    assert loaded.plan.workload.context == work["context"] and loaded.plan.notes == raw["plan"]["notes"]
    if raw["snapshot"] is not None:  # the numbers an early kvdesk saved are the numbers we compute now
        assert loaded.breakdown is not None
        now = loaded.breakdown.to_json()
        for key in ("weights_bytes", "k_cache_bytes", "v_cache_bytes", "kv_cache_bytes", "budget_bytes",
                    "kv_bytes_per_token", "fits"):
            assert now[key] == raw["snapshot"][key], key
    # and saving writes the current format
    assert json.loads(dumps_plan(loaded.plan))["format_version"] == FORMAT_VERSION


def test_v1_engine_specific_file_round_trips_with_its_engine() -> None:
    pytest.importorskip("kvdesk.core.engines.vllm")
    loaded = load_plan(PLANS / "v1_vllm_tp2.kvplan")
    assert loaded.plan.engine.name == "vllm" and loaded.plan.engine.tp == 2
    assert loaded.breakdown is not None
    again = loads_plan(dumps_plan(loaded.plan))
    assert again.breakdown is not None and again.breakdown.to_json() == loaded.breakdown.to_json()


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d["plan"]["gpu"].__setitem__("memory_gib", "24"), "memory_gib must be a number"),
        (lambda d: d["plan"]["gpu"].__setitem__("memory_gib", -1), "out of range"),
        (lambda d: d["plan"].__setitem__("workload", [1, 2]), "'workload' must be an object"),
        (lambda d: d.__setitem__("plan", "nope"), "'plan' must be an object"),
    ],
)
def test_malformed_v1_file_names_the_version(mutate: object, needle: str) -> None:
    doc = json.loads(V1_FILES[0].read_text(encoding="utf-8"))
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(PlanFileError, match="format version 1") as err:
        loads_plan(json.dumps(doc))
    assert needle in str(err.value)


def test_migration_does_not_touch_the_input() -> None:
    doc = json.loads(V1_FILES[0].read_text(encoding="utf-8"))
    before = json.dumps(doc, sort_keys=True)
    migrated, notes = migrate(doc, FORMAT_VERSION)
    assert json.dumps(doc, sort_keys=True) == before
    assert migrated["format_version"] == FORMAT_VERSION and len(notes) == FORMAT_VERSION - 1


# -- snapshot comparison ----------------------------------------------------------------------
def test_changed_numbers_are_reported_with_figures_and_rules() -> None:
    doc = json.loads(dumps_plan(llama_plan()))
    snap = doc["snapshot"]
    snap["kv_cache_bytes"] -= 256 << 20
    snap["k_cache_bytes"] -= 256 << 20
    snap["kvdesk_version"] = "ignored"
    snap["rules"] = [r for r in snap["rules"] if r["id"] != "generic.formula"]
    snap["rules"].append({"id": "generic.old_rule", "title": "an older rule"})
    doc["kvdesk_version"] = "0.0.9"
    loaded = loads_plan(json.dumps(doc))
    (msg,) = loaded.messages
    assert "saved by kvdesk 0.0.9" in msg
    assert "KV cache" in msg and "K cache" in msg and "+256.00 MiB" in msg
    assert "added generic.formula" in msg and "removed generic.old_rule" in msg
    assert ", V cache" not in msg and "total" not in msg  # unchanged figures are not listed


def test_same_rules_different_numbers_says_so() -> None:
    doc = json.loads(dumps_plan(llama_plan()))
    doc["snapshot"]["overhead_bytes"] += 1
    (msg,) = loads_plan(json.dumps(doc)).messages
    assert "overhead" in msg and "same rules apply" in msg


def test_unavailable_engine_still_opens(monkeypatch: pytest.MonkeyPatch) -> None:
    from kvdesk.core import engines

    monkeypatch.setitem(engines._REGISTRY, "vllm", "kvdesk.core.engines.no_such_module:X")
    monkeypatch.setattr(engines, "_CACHE", {})
    plan = llama_plan().with_engine(name="vllm")
    doc = json.loads(dumps_plan(plan))
    assert doc["snapshot"] is None
    loaded = loads_plan(json.dumps(doc))
    assert loaded.plan == plan and loaded.breakdown is None
    assert any("'vllm' engine profile is not available" in m for m in loaded.messages)


# -- atomic save ------------------------------------------------------------------------------
def _enospc(*_: object, **__: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("where", ["fsync", "replace"])
def test_failed_save_keeps_the_old_file(where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "team.kvplan"
    save_plan(path, llama_plan())
    before = path.read_bytes()
    monkeypatch.setattr(atomic.os, where, _enospc)
    with pytest.raises(PlanFileError) as err:
        save_plan(path, llama_plan(context=65536))
    monkeypatch.undo()
    assert "No space left on device" in str(err.value) and "left unchanged" in str(err.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["team.kvplan"]  # no temp file left behind
    assert load_plan(path).plan == llama_plan()


def test_failed_first_save_says_nothing_was_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(atomic.os, "fsync", _enospc)
    with pytest.raises(PlanFileError, match="nothing was written"):
        save_plan(tmp_path / "new.kvplan", llama_plan())
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_save_into_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PlanFileError, match="could not save"):
        save_plan(blocker / "sub" / "p.kvplan", llama_plan())


def test_snapshot_with_numpy_values_or_nan_still_saves(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from kvdesk.core.breakdown import Breakdown

    real = Breakdown.to_json

    def with_extra(self: Breakdown) -> dict:
        return {**real(self), "np_int": np.int64(7), "np_float": np.float64(0.5)}

    monkeypatch.setattr(Breakdown, "to_json", with_extra)
    doc = json.loads(dumps_plan(llama_plan()))
    assert doc["snapshot"]["np_int"] == 7 and doc["snapshot"]["np_float"] == 0.5

    monkeypatch.setattr(Breakdown, "to_json", lambda self: {**real(self), "bad": float("nan")})
    assert json.loads(dumps_plan(llama_plan()))["snapshot"] is None


def test_saving_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "deploy" / "plan.kvplan"
    real.parent.mkdir()
    save_plan(real, llama_plan())
    link = tmp_path / "current.kvplan"
    link.symlink_to(real)
    save_plan(link, llama_plan(batch=8))
    assert link.is_symlink()
    assert load_plan(real).plan.workload.batch == 8
