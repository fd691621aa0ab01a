"""What differs between two plans (or a plan and its saved snapshot) and what it does to memory.

``diff_plans(a, b)`` lists the plan fields that differ, the breakdown figures of both plans, and
walks from A to B one section at a time (model, GPU, engine, workload, calibration, notes),
recomputing after each step, so every difference is paired with its memory effect. Interacting
changes (e.g. a new model *and* a longer context) are credited to the later step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kvdesk.core.breakdown import Breakdown
from kvdesk.core.errors import KvdeskError, describe_validation_error
from kvdesk.core.plan import Plan
from kvdesk.core.units import format_bytes


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    unit: str  # bytes | tokens | count | bool


FIGURES: tuple[Figure, ...] = (
    Figure("weights_bytes", "weights", "bytes"),
    Figure("kv_cache_bytes", "KV cache", "bytes"),
    Figure("k_cache_bytes", "K cache", "bytes"),
    Figure("v_cache_bytes", "V cache", "bytes"),
    Figure("recurrent_state_bytes", "recurrent state", "bytes"),
    Figure("compute_bytes", "compute buffers", "bytes"),
    Figure("overhead_bytes", "overhead", "bytes"),
    Figure("total_bytes", "total", "bytes"),
    Figure("budget_bytes", "budget", "bytes"),
    Figure("spill_bytes", "spill", "bytes"),
    Figure("kv_bytes_per_token", "KV per token", "bytes"),
    Figure("max_context", "max context", "tokens"),
    Figure("max_batch", "max batch", "count"),
    Figure("fits", "verdict", "bool"),
)

# Plan fields grouped as a user thinks of them; the order is the order of the A → B walk.
SECTIONS: dict[str, tuple[str, ...]] = {
    "model": ("model", "origin"),
    "gpu": ("gpu", "gpu_count", "gpu_preset_id", "host_bandwidth_bytes_per_s"),
    "engine": ("engine",),
    "workload": ("workload",),
    "calibration": ("calibration",),
    "notes": ("notes",),
}
_SECTION_OF = {name: section for section, names in SECTIONS.items() for name in names}


def _number(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    return value if isinstance(value, int) else None


def format_figure(value: int, unit: str) -> str:
    if unit == "bool":
        return "FITS" if value else "DOES NOT FIT"
    if unit == "bytes":
        return format_bytes(value)
    if unit == "tokens":
        return f"{value:,} tokens"
    return f"{value:,}"


def format_delta(delta: int, unit: str) -> str:
    if unit == "bytes":
        text = format_bytes(abs(delta)) if abs(delta) >= 1024 else f"{abs(delta):,} B"
    else:
        text = f"{abs(delta):,}"
    return ("+" if delta > 0 else "-" if delta < 0 else "±") + text


@dataclass(frozen=True)
class FigureChange:
    figure: Figure
    before: int
    after: int

    @property
    def delta(self) -> int:
        return self.after - self.before

    def describe(self) -> str:
        f = self.figure
        text = f"{f.label} {format_figure(self.before, f.unit)} → {format_figure(self.after, f.unit)}"
        if f.unit != "bool":
            text += f" ({format_delta(self.delta, f.unit)})"
        return text


def figure_values(data: Mapping[str, Any]) -> dict[str, int]:
    """The comparable figures of a ``Breakdown.to_json()`` object (missing or odd values skipped)."""
    out = {}
    for fig in FIGURES:
        value = _number(data.get(fig.key))
        if value is not None:
            out[fig.key] = value
    return out


def figure_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[FigureChange]:
    a, b = figure_values(before), figure_values(after)
    return [FigureChange(f, a[f.key], b[f.key]) for f in FIGURES if f.key in a and f.key in b and a[f.key] != b[f.key]]


def _rules(items: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                out[item["id"]] = str(item.get("title", ""))
    return out


def rule_changes(before: Any, after: Any) -> list[str]:
    """Rules added, removed or re-titled between two ``rules`` lists of ``to_json()`` objects."""
    a, b = _rules(before), _rules(after)
    out = [f"added {rid} ({b[rid]})" for rid in b if rid not in a]
    out += [f"removed {rid} ({a[rid]})" for rid in a if rid not in b]
    out += [f"changed {rid} ({a[rid]} → {b[rid]})" for rid in a if rid in b and a[rid] != b[rid]]
    return out


# -- plan field differences -------------------------------------------------------------------
@dataclass(frozen=True)
class FieldChange:
    section: str
    path: str
    before: Any
    after: Any

    def to_json(self) -> dict[str, Any]:
        return {"section": self.section, "field": self.path, "a": self.before, "b": self.after}


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list) and value:
        for i, item in enumerate(value):
            _flatten(item, f"{prefix}[{i}]", out)
    else:
        out[prefix] = value


def _root(path: str) -> str:
    return path.split(".", 1)[0].split("[", 1)[0]


def field_changes(a: Plan, b: Plan) -> list[FieldChange]:
    fa: dict[str, Any] = {}
    fb: dict[str, Any] = {}
    _flatten(a.model_dump(mode="json"), "", fa)
    _flatten(b.model_dump(mode="json"), "", fb)
    paths = list(fa) + [p for p in fb if p not in fa]
    order = list(SECTIONS)
    changes = [
        FieldChange(_SECTION_OF.get(_root(p), "other"), p, fa.get(p), fb.get(p))
        for p in paths
        if fa.get(p) != fb.get(p) or (p in fa) != (p in fb)
    ]
    return sorted(changes, key=lambda c: order.index(c.section) if c.section in order else len(order))


# -- memory effects ---------------------------------------------------------------------------
@dataclass
class StepEffect:
    section: str
    changes: list[FieldChange]
    effects: list[FigureChange] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "fields": [c.path for c in self.changes],
            "delta": {e.figure.key: e.delta for e in self.effects if e.figure.unit != "bool"},
            "fits": next((bool(e.after) for e in self.effects if e.figure.unit == "bool"), None),
            "error": self.error,
        }


@dataclass
class PlanDiff:
    changes: list[FieldChange]
    a: dict[str, Any]  # Breakdown.to_json() of A
    b: dict[str, Any]
    steps: list[StepEffect]

    @property
    def identical(self) -> bool:
        return not self.changes

    @property
    def memory_changes(self) -> list[FigureChange]:
        return figure_changes(self.a, self.b)

    def to_json(self) -> dict[str, Any]:
        fa, fb = figure_values(self.a), figure_values(self.b)
        return {
            "identical": self.identical,
            "changes": [c.to_json() for c in self.changes],
            "memory": {
                "a": fa,
                "b": fb,
                "delta": {k: fb[k] - fa[k] for k in fa if k in fb},
            },
            "rules": rule_changes(self.a.get("rules"), self.b.get("rules")),
            "steps": [s.to_json() for s in self.steps],
        }


def _calculate(plan: Plan) -> Breakdown:
    from kvdesk.core.calculator import calculate

    try:
        return calculate(plan)
    except ImportError:
        raise KvdeskError(f"the '{plan.engine.name}' engine profile is not available in this kvdesk") from None


def _sections_in(changes: Iterable[FieldChange]) -> list[str]:
    seen = {c.section for c in changes}
    return [s for s in [*SECTIONS, "other"] if s in seen]


def diff_plans(a: Plan, b: Plan) -> PlanDiff:
    """Field differences, both breakdowns, and the memory effect of each section's change."""
    changes = field_changes(a, b)
    bd_a, bd_b = _calculate(a).to_json(), _calculate(b).to_json()
    steps: list[StepEffect] = []
    current, target = a.model_dump(), b.model_dump()
    previous = bd_a
    for section in _sections_in(changes):
        names = SECTIONS.get(section) or tuple(k for k in target if k not in _SECTION_OF)
        for name in names:
            current[name] = target[name]
        step = StepEffect(section, [c for c in changes if c.section == section])
        try:
            now = _calculate(Plan.model_validate(current)).to_json()
        except (KvdeskError, ValueError) as exc:
            why = describe_validation_error(exc)
            step.error = f"not computable on its own ({why}); its effect is counted with the next change"
        else:
            step.effects = figure_changes(previous, now)
            previous = now
        steps.append(step)
    return PlanDiff(changes, bd_a, bd_b, steps)



# -- text -------------------------------------------------------------------------------------
_MAX_FIELDS_SHOWN = 10


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}"
    text = " ".join(str(value).split())
    return text if len(text) <= 60 else text[:59] + "…"


def _effect(change: FigureChange) -> str:
    f = change.figure
    if f.unit == "bytes":
        return f"{f.label} {format_delta(change.delta, f.unit)}"
    return f"{f.label} {format_figure(change.before, f.unit)} → {format_figure(change.after, f.unit)}"


def diff_text(d: PlanDiff, name_a: str = "A", name_b: str = "B") -> str:
    """The human-readable ``kvdesk diff``."""
    if d.identical:
        return f"{name_a} and {name_b} are the same plan."
    out = [f"{len(d.changes)} field(s) differ between {name_a} (A) and {name_b} (B):"]
    for section in _sections_in(d.changes):
        rows = [c for c in d.changes if c.section == section]
        for c in rows[:_MAX_FIELDS_SHOWN]:
            out.append(f"  {section:<11} {c.path}: {_show(c.before)} → {_show(c.after)}")
        if len(rows) > _MAX_FIELDS_SHOWN:
            out.append(f"  {section:<11} … and {len(rows) - _MAX_FIELDS_SHOWN} more {section} field(s)")
    out += ["", "Memory (A → B):"]
    fa, fb = figure_values(d.a), figure_values(d.b)
    for fig in FIGURES:
        if fig.key not in fa or fig.key not in fb or (fa[fig.key] == fb[fig.key] == 0):
            continue
        a, b = fa[fig.key], fb[fig.key]
        line = f"  {fig.label:<16} {format_figure(a, fig.unit):>16} → {format_figure(b, fig.unit):<16}"
        if a != b and fig.unit != "bool":
            line += f" ({format_delta(b - a, fig.unit)})"
        out.append(line.rstrip())
    rules = rule_changes(d.a.get("rules"), d.b.get("rules"))
    if rules:
        out += ["", "Engine rules that differ:"] + [f"  {r}" for r in rules]
    out += ["", "What each change does (applied in this order, A → B):"]
    for step in d.steps:
        names = ", ".join(c.path for c in step.changes[:4]) + (" …" if len(step.changes) > 4 else "")
        if step.error:
            effect = step.error
        elif step.effects:
            effect = ", ".join(_effect(e) for e in step.effects if e.figure.key not in ("k_cache_bytes",
                                                                                        "v_cache_bytes"))
        else:
            effect = "no change in memory"
        out.append(f"  {step.section} ({names}): {effect}")
    return "\n".join(out)
