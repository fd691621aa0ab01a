"""Catalogue entries as the pickers show them: grouped (family / vendor), with size and parameters.

A broken user catalogue never empties the pickers: the shipped entries are shown instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from kvdesk.core.catalog import GpuEntry, ModelEntry
from kvdesk.core.errors import KvdeskError
from kvdesk.core.gpu import GpuSpec
from kvdesk.core.model import ModelSpec
from kvdesk.gui.search_picker import PickerEntry

VENDORS = {"nvidia": "NVIDIA", "amd": "AMD", "intel": "Intel", "apple": "Apple", "other": "Other"}
GIB = 1 << 30


@dataclass(frozen=True)
class ModelChoice:
    id: str
    entry: ModelEntry
    picker: PickerEntry

    @property
    def spec(self) -> ModelSpec:
        """The plain spec (built only when picked: start-up lists ~50 entries)."""
        return self.entry.to_spec()


@dataclass(frozen=True)
class GpuChoice:
    id: str
    entry: GpuEntry
    picker: PickerEntry

    @property
    def spec(self) -> GpuSpec:
        return self.entry.to_spec()


def _params(n: int) -> str:
    return f"{n / 1e9:.0f}B" if n >= 10e9 else f"{n / 1e9:.1f}B"


def model_label(spec: ModelSpec) -> str:
    size = spec.weights_bytes() / GIB
    moe = f" ({_params(spec.params_active)} active)" if spec.is_moe and spec.params_active else ""
    return f"{spec.name} — {_params(spec.params_total)}{moe}, {size:.1f} GiB {spec.dtype}"


def gpu_label(spec: GpuSpec) -> str:
    unified = ", unified" if spec.unified_memory else ""
    return f"{spec.name} — {spec.memory_bytes / GIB:.0f} GiB{unified}"


def model_entries() -> list[ModelChoice]:
    from kvdesk.core import catalog

    try:
        entries = catalog.all_models()
    except (KvdeskError, ValueError, OSError):
        entries = list(catalog.shipped_models())
    out = []
    for e in sorted(entries, key=lambda e: (e.family or "Other", e.params_total, e.name)):
        tip = f"{e.id}: {e.n_layers} layers, native context {e.native_context:,} tokens"
        out.append(ModelChoice(e.id, e, PickerEntry(e.id, model_label(e), e.family or "Other", tip)))
    return out


def gpu_entries() -> list[GpuChoice]:
    from kvdesk.core import catalog

    try:
        entries = catalog.all_gpus()
    except (KvdeskError, ValueError, OSError):
        entries = list(catalog.shipped_gpus())
    order = list(VENDORS)
    out = []
    for e in sorted(entries, key=lambda e: (order.index(e.vendor), -e.memory_bytes, e.name)):
        tip = f"{e.id}: {e.bandwidth_bytes_per_s / 1e9:.0f} GB/s" + (f" — {e.note}" if e.note else "")
        out.append(GpuChoice(e.id, e, PickerEntry(e.id, gpu_label(e), VENDORS[e.vendor], tip)))
    return out
