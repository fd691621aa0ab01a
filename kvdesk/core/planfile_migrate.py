"""Forward migrations of .kvplan documents, one registered step per format version.

A step ``@migrator(n, summary)`` turns a parsed version-``n`` document (plain dicts and lists) into
a version-``n + 1`` one. ``migrate`` chains the steps up to the current version. Steps get a
deep copy, so a failing step never leaves a half-migrated document behind; any KeyError /
TypeError / ValueError inside a step becomes a PlanFileError that names the version.

Format history:
- 1 (kvdesk 0.1.0 pre-release): ``workload.kv_dtype`` (one dtype for K and V),
  ``gpu.memory_gib`` (a float in GiB).
- 2: ``workload.kv_dtype_k`` / ``kv_dtype_v`` (llama.cpp's -ctk/-ctv differ in practice),
  ``gpu.memory_bytes`` (exact integer bytes, as drivers report them).
- 3: optional fields an older kvdesk does not know, each written only when set: a recurrent layer
  group's SSM / delta-net part of the state and its dtype (``ssm_state_bytes``, ``ssm_state_dtype``; vLLM
  keeps that part in its own dtype), an MLA group's DSA indexer key width (``indexer_dim``), and llama.cpp's
  extra recurrent-state copies for speculative decoding (``engine.rs_seq``). A format-2 document is a valid
  format-3 one. The version moved so that an older kvdesk refuses such a file by its version, not by an
  unknown field deep inside ``plan``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kvdesk.core.planfile_json import PlanFileError

Document = dict[str, Any]
Step = Callable[[Document], Document]
GIB = 1 << 30


@dataclass(frozen=True)
class Migration:
    from_version: int
    summary: str
    step: Step


_MIGRATIONS: dict[int, Migration] = {}


def migrator(from_version: int, summary: str) -> Callable[[Step], Step]:
    """Register ``step`` as the migration from ``from_version`` to ``from_version + 1``."""

    def register(step: Step) -> Step:
        if from_version in _MIGRATIONS:
            raise RuntimeError(f"two migrations registered from format version {from_version}")
        _MIGRATIONS[from_version] = Migration(from_version, summary, step)
        return step

    return register


def registered() -> dict[int, Migration]:
    return dict(_MIGRATIONS)


def migrate(doc: Document, current: int) -> tuple[Document, list[str]]:
    """Bring ``doc`` from its ``format_version`` up to ``current``; returns it and what each step did."""
    version = int(doc["format_version"])
    notes: list[str] = []
    while version < current:
        migration = _MIGRATIONS.get(version)
        if migration is None:
            raise PlanFileError(f"kvdesk cannot upgrade format version {version} (no migration registered)")
        try:
            doc = migration.step(copy.deepcopy(doc))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
            raise PlanFileError(f"format version {version} file is malformed: {detail}") from None
        version += 1
        doc["format_version"] = version
        notes.append(f"{version - 1} → {version}: {migration.summary}")
    return doc, notes


def _obj(parent: Document, key: str) -> Document:
    value = parent.get(key)
    if value is None:
        value = parent[key] = {}
    if not isinstance(value, dict):
        raise TypeError(f"'{key}' must be an object, not {type(value).__name__}")
    return value


@migrator(1, "one KV dtype became separate K and V dtypes; GPU memory is stored in exact bytes, not GiB")
def _v1_to_v2(doc: Document) -> Document:
    plan = _obj(doc, "plan")
    work = _obj(plan, "workload")
    if "kv_dtype" in work:
        dtype = work.pop("kv_dtype")
        work.setdefault("kv_dtype_k", dtype)
        work.setdefault("kv_dtype_v", dtype)
    gpu = _obj(plan, "gpu")
    if "memory_gib" in gpu:
        gib = gpu.pop("memory_gib")
        if isinstance(gib, bool) or not isinstance(gib, int | float):
            raise ValueError(f"plan.gpu.memory_gib must be a number, not {type(gib).__name__}")
        if not 0 < gib <= 1 << 20:
            raise ValueError(f"plan.gpu.memory_gib {gib!r} is out of range")
        # v1 wrote memory_bytes / 2**30 as a float64: exact for any byte count below 2**53.
        gpu["memory_bytes"] = round(gib * GIB)
    return doc


@migrator(2, "new optional fields (SSM state dtype, DSA indexer width, llama.cpp rs_seq); none set in this file")
def _v2_to_v3(doc: Document) -> Document:
    return doc
