"""Model and GPU catalogues: shipped JSON in ``presets/`` plus the user's own entries.

Shipped: ``presets/models.json`` and ``presets/gpus.json`` ({"format_version": 1, "models"|"gpus": [...]}).
User entries (same schema) live in ``<config dir>/models.json`` / ``gpus.json`` and override
shipped entries with the same id.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kvdesk.core.atomic import atomic_write_text
from kvdesk.core.errors import InputError, describe_validation_error
from kvdesk.core.gpu import GpuSpec
from kvdesk.core.model import ModelSpec
from kvdesk.core.plan import ModelOrigin
from kvdesk.core.resources import presets_dir
from kvdesk.core.settings import config_dir

CATALOG_FORMAT_VERSION = 1
_ID = Field(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_MAX_USER_FILE = 8 << 20
_HF_REPO = Field(None, min_length=3, max_length=200, pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_ENTRY_ONLY = {"id", "hf_repo"}


class ModelEntry(ModelSpec):
    """A catalogue model: the spec plus its id and (optional) Hugging Face repo, e.g.
    ``meta-llama/Llama-3.1-8B-Instruct``, which plans built from it carry in ``ModelOrigin.hf_repo``."""

    id: str = _ID
    hf_repo: str | None = _HF_REPO

    def to_spec(self) -> ModelSpec:
        return ModelSpec.model_validate(self.model_dump(exclude=_ENTRY_ONLY))


def origin_for(entry: ModelEntry) -> ModelOrigin:
    """The ``Plan.origin`` of a plan built from catalogue ``entry`` (preset id + HF repo)."""
    return ModelOrigin(preset_id=entry.id, hf_repo=entry.hf_repo)


class GpuEntry(GpuSpec):
    id: str = _ID

    def to_spec(self) -> GpuSpec:
        return GpuSpec.model_validate(self.model_dump(exclude={"id"}))


def _check_version(version: int) -> int:
    if version > CATALOG_FORMAT_VERSION:
        raise ValueError(
            f"written by a newer kvdesk (catalogue format {version}; this one reads {CATALOG_FORMAT_VERSION})"
        )
    return version


class ModelCatalogFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format_version: int = CATALOG_FORMAT_VERSION
    models: list[ModelEntry]

    _version = field_validator("format_version")(lambda v: _check_version(v))


class GpuCatalogFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format_version: int = CATALOG_FORMAT_VERSION
    gpus: list[GpuEntry]

    _version = field_validator("format_version")(lambda v: _check_version(v))


def _read(path: Path) -> object:
    if path.stat().st_size > _MAX_USER_FILE:
        raise InputError(f"{path.name}: larger than {_MAX_USER_FILE >> 20} MiB, not a catalogue")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path.name}: not valid JSON ({exc})") from None


@cache
def shipped_models() -> tuple[ModelEntry, ...]:
    data = ModelCatalogFile.model_validate(_read(presets_dir() / "models.json"))
    return tuple(data.models)


@cache
def shipped_gpus() -> tuple[GpuEntry, ...]:
    data = GpuCatalogFile.model_validate(_read(presets_dir() / "gpus.json"))
    return tuple(data.gpus)


def _user_file(kind: str) -> Path:
    return config_dir() / f"{kind}.json"


def user_models() -> list[ModelEntry]:
    path = _user_file("models")
    if not path.exists():
        return []
    try:
        return ModelCatalogFile.model_validate(_read(path)).models
    except ValidationError as exc:
        raise InputError(f"{path}: {describe_validation_error(exc)}") from None


def user_gpus() -> list[GpuEntry]:
    path = _user_file("gpus")
    if not path.exists():
        return []
    try:
        return GpuCatalogFile.model_validate(_read(path)).gpus
    except ValidationError as exc:
        raise InputError(f"{path}: {describe_validation_error(exc)}") from None


def all_models() -> list[ModelEntry]:
    merged = {m.id: m for m in shipped_models()}
    merged.update({m.id: m for m in user_models()})
    return list(merged.values())


def all_gpus() -> list[GpuEntry]:
    merged = {g.id: g for g in shipped_gpus()}
    merged.update({g.id: g for g in user_gpus()})
    return list(merged.values())


def _lookup(entries: list[Any], wanted: str, kind: str) -> Any:
    key = wanted.strip().lower()
    for e in entries:
        if e.id.lower() == key:
            return e
    for e in entries:
        if e.name.lower() == key:
            return e
    near = [e.id for e in entries if key in e.id.lower() or key in e.name.lower()][:5]
    hint = f" (did you mean: {', '.join(near)}?)" if near else f" (see `kvdesk list {kind}s`)"
    raise InputError(f"unknown {kind} '{wanted}'{hint}", field=kind)


def find_model(wanted: str) -> ModelEntry:
    entry: ModelEntry = _lookup(all_models(), wanted, "model")
    return entry


def find_gpu(wanted: str) -> GpuEntry:
    entry: GpuEntry = _lookup(all_gpus(), wanted, "gpu")
    return entry


def _write_user_file(doc: ModelCatalogFile | GpuCatalogFile, kind: str) -> Path:
    """Atomically write the user's own catalogue file (same schema as the shipped one)."""
    path = _user_file(kind)
    data = doc.model_dump(mode="json", exclude_none=True)
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")
    return path


def save_user_model(entry: ModelEntry) -> Path:
    entries = {m.id: m for m in user_models()}
    entries[entry.id] = entry
    return _write_user_file(ModelCatalogFile(models=list(entries.values())), "models")


def save_user_gpu(entry: GpuEntry) -> Path:
    entries = {g.id: g for g in user_gpus()}
    entries[entry.id] = entry
    return _write_user_file(GpuCatalogFile(gpus=list(entries.values())), "gpus")


def model_entry(entry_id: str, spec: ModelSpec, hf_repo: str | None = None) -> ModelEntry:
    """A catalogue entry for ``spec`` (e.g. an imported model) under ``entry_id``."""
    try:
        return ModelEntry.model_validate({**spec.model_dump(), "id": entry_id, "hf_repo": hf_repo})
    except ValidationError as exc:
        raise InputError(f"model id '{entry_id}': {describe_validation_error(exc)}", field="id") from None


def gpu_entry(entry_id: str, spec: GpuSpec) -> GpuEntry:
    try:
        return GpuEntry.model_validate({**spec.model_dump(), "id": entry_id})
    except ValidationError as exc:
        raise InputError(f"gpu id '{entry_id}': {describe_validation_error(exc)}", field="id") from None


def remove_user_model(entry_id: str) -> bool:
    """Delete the user's own model ``entry_id``; False when there was none (shipped ones stay)."""
    current = user_models()
    entries = [m for m in current if m.id != entry_id]
    if len(entries) == len(current):
        return False
    _write_user_file(ModelCatalogFile(models=entries), "models")
    return True


def remove_user_gpu(entry_id: str) -> bool:
    """Delete the user's own GPU ``entry_id``; False when there was none (shipped ones stay)."""
    current = user_gpus()
    entries = [g for g in current if g.id != entry_id]
    if len(entries) == len(current):
        return False
    _write_user_file(GpuCatalogFile(gpus=entries), "gpus")
    return True
