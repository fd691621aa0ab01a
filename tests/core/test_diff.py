"""plandiff: field differences, memory figures, per-section attribution, rule changes."""

from __future__ import annotations

from kvdesk.core.calculator import calculate
from kvdesk.core.gpu import custom_gpu
from kvdesk.core.model import LayerGroup, WeightFormat
from kvdesk.core.plandiff import diff_plans, diff_text, field_changes, figure_changes, rule_changes
from tests.core.test_planfile import hybrid_plan, llama_plan


def test_identical_plans() -> None:
    d = diff_plans(llama_plan(), llama_plan())
    assert d.identical and d.changes == [] and d.steps == [] and d.memory_changes == []
    assert "same plan" in diff_text(d)


def test_fields_are_grouped_by_section_in_walk_order() -> None:
    a = llama_plan()
    b = a.with_workload(context=16384).with_engine(flash_attn=True).model_copy(update={"notes": "new"})
    changes = field_changes(a, b)
    assert [(c.section, c.path, c.before, c.after) for c in changes] == [
        ("engine", "engine.flash_attn", None, True),
        ("workload", "workload.context", 8192, 16384),
        ("notes", "notes", a.notes, "new"),
    ]


def test_list_length_changes_are_listed() -> None:
    a = llama_plan()
    layers = [*a.model.layers, LayerGroup(count=2, kind="sliding", n_kv_heads=8, head_dim_k=128, head_dim_v=128,
                                          window=4096)]
    b = a.model_copy(update={"model": a.model.model_copy(update={"layers": layers})})
    paths = {c.path: (c.before, c.after) for c in field_changes(a, b)}
    assert paths["model.layers[1].window"] == (None, 4096)
    assert paths["model.layers[1].kind"] == (None, "sliding")


def test_each_section_gets_its_own_memory_effect() -> None:
    a = llama_plan()
    b = a.with_workload(context=16384).model_copy(update={"gpu": custom_gpu(48)})
    d = diff_plans(a, b)
    assert [s.section for s in d.steps] == ["gpu", "workload"]
    gpu, work = d.steps
    assert {e.figure.key for e in gpu.effects} >= {"budget_bytes"}
    assert "kv_cache_bytes" not in {e.figure.key for e in gpu.effects}
    kv = next(e for e in work.effects if e.figure.key == "kv_cache_bytes")
    assert kv.delta == calculate(b).kv_cache_bytes - calculate(a).kv_cache_bytes > 0
    for key in ("total_bytes", "budget_bytes", "kv_cache_bytes"):
        steps_sum = sum(e.delta for s in d.steps for e in s.effects if e.figure.key == key)
        assert steps_sum == d.to_json()["memory"]["delta"][key]


def test_a_step_that_cannot_stand_alone_is_folded_into_the_next() -> None:
    a = llama_plan()
    model_a = a.model.model_copy(update={"weight_formats": [WeightFormat(name="house-awq", bytes=5 << 30)]})
    a = a.model_copy(update={"model": model_a}).with_workload(weights_format="house-awq")
    b = hybrid_plan()  # its model has no 'house-awq' weights, and its workload does not ask for them
    d = diff_plans(a, b)
    model_step = d.steps[0]
    assert model_step.section == "model" and model_step.error and "house-awq" in model_step.error
    delta = d.to_json()["memory"]["delta"]
    for key in ("weights_bytes", "total_bytes"):
        assert sum(e.delta for s in d.steps for e in s.effects if e.figure.key == key) == delta[key]
    assert "not computable on its own" in diff_text(d)


def test_figure_changes_ignore_odd_snapshot_values() -> None:
    now = calculate(llama_plan()).to_json()
    saved = dict(now, total_bytes="lots", kv_cache_bytes=None, max_batch=now["max_batch"] + 1)
    assert [c.figure.key for c in figure_changes(saved, now)] == ["max_batch"]


def test_rule_changes() -> None:
    before = [{"id": "a", "title": "A"}, {"id": "b", "title": "B1"}, "junk", {"title": "no id"}]
    after = [{"id": "b", "title": "B2"}, {"id": "c", "title": "C"}]
    assert rule_changes(before, after) == ["added c (C)", "removed a (A)", "changed b (B1 → B2)"]
    assert rule_changes(None, {"not": "a list"}) == []
