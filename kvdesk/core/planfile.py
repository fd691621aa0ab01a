""".kvplan files: a whole Plan as deterministic UTF-8 JSON, versioned, migrated, saved atomically.

Layout (format version 2)::

    {
      "format_version": 2,
      "kvdesk_version": "0.1.0",
      "plan": { ...every Plan field, the model spec embedded, defaults written out... },
      "snapshot": { ...Breakdown.to_json() at save time... } | null
    }

- Deterministic: sorted keys, 2-space indent, UTF-8, trailing newline, no timestamps — saving the
  same plan twice gives the same bytes, so plans diff cleanly in git.
- Every field is written, defaults included: a later kvdesk with other defaults reads the same plan.
- Versioned: older files are upgraded by the registered steps in ``planfile_migrate``; a file
  from a newer kvdesk is refused with both versions named.
- Opening a plan recomputes it and compares with the snapshot; differences are reported with the
  figures and the engine rules that changed.
- Reading is hostile-input safe (``planfile_json``); nothing is pickled, evaluated or imported.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kvdesk import __version__
from kvdesk.core.atomic import atomic_write_text
from kvdesk.core.breakdown import Breakdown
from kvdesk.core.errors import KvdeskError, describe_validation_error
from kvdesk.core.plan import Plan
from kvdesk.core.plandiff import figure_changes, rule_changes
from kvdesk.core.planfile_json import PlanFileError, decode_text, parse_document, read_limited
from kvdesk.core.planfile_migrate import migrate

__all__ = [
    "FORMAT_VERSION",
    "PLAN_EXTENSION",
    "PLAN_MIME_TYPE",
    "LoadedPlan",
    "PlanFileError",
    "dumps_plan",
    "load_plan",
    "loads_plan",
    "save_plan",
]

PLAN_EXTENSION = ".kvplan"
PLAN_MIME_TYPE = "application/x-kvplan+json"
FORMAT_VERSION = 3


class _PlanDocument(BaseModel):
    """The current-format document, validated strictly (no "4096" for 4096, no 1 for true)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    format_version: int
    kvdesk_version: str = Field(min_length=1, max_length=64)
    plan: Plan
    snapshot: dict[str, Any] | None = None


@dataclass
class LoadedPlan:
    plan: Plan
    snapshot: dict[str, Any] | None
    format_version: int  # as found in the file, before any migration
    kvdesk_version: str = ""
    messages: list[str] = field(default_factory=list)
    breakdown: Breakdown | None = None  # recomputed now (None when it could not be computed)


def recompute(plan: Plan) -> Breakdown:
    """``calculate(plan)``, with an unavailable engine profile turned into a clear KvdeskError."""
    from kvdesk.core.calculator import calculate

    try:
        return calculate(plan)
    except (ImportError, KeyError):
        raise KvdeskError(f"the '{plan.engine.name}' engine profile is not available in this kvdesk") from None


# -- writing ----------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """JSON for numpy scalars an engine may leave in ``Breakdown.extra``."""
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _snapshot(plan: Plan) -> dict[str, Any] | None:
    try:
        snapshot = recompute(plan).to_json()
        # normalise to plain JSON types (and refuse NaN): what is saved is exactly what loads back
        return dict(json.loads(json.dumps(snapshot, allow_nan=False, default=_plain)))
    except (KvdeskError, ValueError, TypeError):
        return None  # a plan that cannot be computed (yet) can still be saved


def dumps_plan(plan: Plan) -> str:
    doc = {
        "format_version": FORMAT_VERSION,
        "kvdesk_version": __version__,
        "plan": plan.model_dump(mode="json"),
        "snapshot": _snapshot(plan),
    }
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def _new_file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def save_plan(path: Path, plan: Plan) -> None:
    """Write ``plan`` atomically; on failure the previous file is untouched and PlanFileError says why."""
    path = Path(path)
    if path.is_symlink():  # write through the link (as editors do), not over it
        path = path.resolve()
    text = dumps_plan(plan)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        reason = exc.reason
        raise PlanFileError(f"could not save {path}: the plan holds text that is not Unicode ({reason})") from None
    try:
        mode = path.stat().st_mode & 0o777 if path.exists() else _new_file_mode()
    except OSError:
        mode = _new_file_mode()
    existed = path.exists()
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        kept = "the previous file was left unchanged" if existed else "nothing was written"
        raise PlanFileError(f"could not save {path}: {exc.strerror or exc}; {kept}") from None
    with contextlib.suppress(OSError):  # the temp file is created 0600; give the plan normal permissions
        os.chmod(path, mode)


# -- reading ----------------------------------------------------------------------------------
def _version(doc: dict[str, Any]) -> tuple[int, str]:
    if "format_version" not in doc:
        raise PlanFileError("no 'format_version': this JSON file is not a kvdesk plan")
    version = doc["format_version"]
    if type(version) is not int:
        raise PlanFileError(f"'format_version' must be an integer, not {json.dumps(version)[:40]}")
    saved_by = doc.get("kvdesk_version")
    saved_by = saved_by if isinstance(saved_by, str) and len(saved_by) <= 64 else "an unknown version"
    if version > FORMAT_VERSION:
        raise PlanFileError(
            f"this plan was saved in format version {version} by kvdesk {saved_by}; this kvdesk "
            f"({__version__}) reads format versions up to {FORMAT_VERSION} — update kvdesk to open it"
        )
    if version < 1:
        raise PlanFileError(f"format_version {version} does not exist (versions start at 1)")
    return version, saved_by


def _validate(doc: dict[str, Any]) -> _PlanDocument:
    try:
        return _PlanDocument.model_validate(doc, strict=True)
    except ValidationError as exc:
        raise PlanFileError(f"invalid plan: {describe_validation_error(exc)}") from None
    except KvdeskError as exc:  # a validator of the plan raised a user-facing error
        raise PlanFileError(f"invalid plan: {exc}") from None


def _compare(loaded: LoadedPlan) -> None:
    try:
        loaded.breakdown = recompute(loaded.plan)
    except (KvdeskError, ValueError) as exc:
        loaded.messages.append(f"the plan could not be recomputed: {exc}")
        return
    saved = loaded.snapshot
    if saved is None:
        return
    current = loaded.breakdown.to_json()
    changed = figure_changes(saved, current)
    if not changed:
        return
    figures = ", ".join(c.describe() for c in changed)
    rules = rule_changes(saved.get("rules"), current.get("rules"))
    why = (
        "rules that differ: " + "; ".join(rules)
        if rules
        else "the same rules apply, so a rule's numbers or a default changed"
    )
    loaded.messages.append(
        f"this plan was saved by kvdesk {loaded.kvdesk_version}; numbers changed: {figures}. Why: {why}"
    )


def loads_plan(text: str, *, recompute_now: bool = True) -> LoadedPlan:
    """Parse, migrate and validate plan-file text; compare the saved snapshot with a recomputation."""
    doc = parse_document(text)
    version, saved_by = _version(doc)
    doc, notes = migrate(doc, FORMAT_VERSION)
    valid = _validate(doc)
    loaded = LoadedPlan(valid.plan, valid.snapshot, version, saved_by)
    if notes:
        loaded.messages.append(
            f"this plan was saved in format version {version} by kvdesk {saved_by} and was upgraded to format "
            f"{FORMAT_VERSION} (saving writes format {FORMAT_VERSION}): " + "; ".join(notes)
        )
    if recompute_now:
        _compare(loaded)
    return loaded


def load_plan(path: Path, *, recompute_now: bool = True) -> LoadedPlan:
    """Open a .kvplan file; any problem is a PlanFileError that names the file and what is wrong."""
    path = Path(path)
    try:
        return loads_plan(decode_text(read_limited(path)), recompute_now=recompute_now)
    except PlanFileError as exc:
        message = str(exc)
        if not message.startswith(str(path)) and not message.startswith(path.name):
            message = f"{path.name}: {message}"
        raise PlanFileError(message) from None
