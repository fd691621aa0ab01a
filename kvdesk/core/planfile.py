""".kvplan files: a whole Plan as deterministic UTF-8 JSON (format version 1).

Layout::

    {"format_version": 1, "kvdesk_version": "...", "plan": {...}, "snapshot": {...} | null}

Version 1 stores one KV cache dtype for K and V (``workload.kv_dtype``) and the GPU memory in GiB
(``gpu.memory_gib``), as the first planner UI showed them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvdesk import __version__
from kvdesk.core.atomic import atomic_write_text
from kvdesk.core.errors import KvdeskError
from kvdesk.core.plan import Plan

PLAN_EXTENSION = ".kvplan"
PLAN_MIME_TYPE = "application/x-kvplan+json"
FORMAT_VERSION = 1
GIB = 1 << 30


class PlanFileError(KvdeskError):
    """A .kvplan file could not be read or written."""


@dataclass
class LoadedPlan:
    plan: Plan
    snapshot: dict[str, Any] | None
    format_version: int
    messages: list[str] = field(default_factory=list)


def _snapshot(plan: Plan) -> dict[str, Any] | None:
    from kvdesk.core.calculator import calculate

    try:
        return calculate(plan).to_json()
    except (KvdeskError, ImportError, KeyError, ValueError):
        return None


def _plan_v1(plan: Plan) -> dict[str, Any]:
    data = plan.model_dump(mode="json")
    work = data["workload"]
    work["kv_dtype"] = work.pop("kv_dtype_k")
    work.pop("kv_dtype_v")
    gpu = data["gpu"]
    gpu["memory_gib"] = gpu.pop("memory_bytes") / GIB
    return data


def dumps_plan(plan: Plan) -> str:
    doc = {
        "format_version": FORMAT_VERSION,
        "kvdesk_version": __version__,
        "plan": _plan_v1(plan),
        "snapshot": _snapshot(plan),
    }
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def loads_plan(text: str) -> LoadedPlan:
    doc = json.loads(text)
    data = doc["plan"]
    work = data["workload"]
    work["kv_dtype_k"] = work["kv_dtype_v"] = work.pop("kv_dtype")
    data["gpu"]["memory_bytes"] = round(data["gpu"].pop("memory_gib") * GIB)
    return LoadedPlan(Plan.model_validate(data), doc.get("snapshot"), doc["format_version"])


def load_plan(path: Path) -> LoadedPlan:
    return loads_plan(Path(path).read_text(encoding="utf-8"))


def save_plan(path: Path, plan: Plan) -> None:
    atomic_write_text(path, dumps_plan(plan))
