"""Breakdown: what ``calculate(plan)`` returns — per-device memory, verdict, limits and the rules used."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Rule(BaseModel):
    """One rule an engine profile applied, for the explain panel and ``--json`` ``rules``."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    detail: str = ""
    source: str = ""


@lru_cache(maxsize=1024)
def cached_rule(id: str, title: str, detail: str = "", source: str = "") -> Rule:
    """``Rule(...)``, shared for equal texts (Rule is frozen): the explain-panel rules an engine rebuilds
    on every recompute skip validation when nothing in them changed."""
    return Rule(id=id, title=title, detail=detail, source=source)


class DeviceBreakdown(BaseModel):
    name: str
    weights_bytes: int = 0
    k_cache_bytes: int = 0
    v_cache_bytes: int = 0
    recurrent_state_bytes: int = 0
    compute_bytes: int = 0
    overhead_bytes: int = Field(0, description="all non-weight, non-cache bytes, compute buffers included")
    budget_bytes: int = 0

    @property
    def kv_cache_bytes(self) -> int:
        return self.k_cache_bytes + self.v_cache_bytes

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes + self.recurrent_state_bytes + self.overhead_bytes

    @property
    def spill_bytes(self) -> int:
        return max(0, self.total_bytes - self.budget_bytes)

    @property
    def headroom_bytes(self) -> int:
        return self.budget_bytes - self.total_bytes

    def as_json(self) -> dict[str, Any]:
        data = self.model_dump()
        data.update(
            kv_cache_bytes=self.kv_cache_bytes, total_bytes=self.total_bytes, spill_bytes=self.spill_bytes
        )
        return data


class Breakdown(BaseModel):
    engine: str
    per_device: list[DeviceBreakdown]
    kv_bytes_per_token: int = Field(description="K+V bytes one more token of one sequence costs (full layers)")
    fits: bool
    max_context: int = Field(description="largest per-sequence context that fits at this batch (0: none)")
    max_batch: int = Field(description="most sequences that fit at this context (0: none)")
    decode_ms_per_token: float
    spill_slowdown: float = Field(1.0, description="estimated decode slowdown factor from spilled bytes")
    rules: list[Rule] = Field(default=[])
    formula: str = ""
    extra: dict[str, Any] = Field(default={}, description="engine-specific figures")
    warnings: list[str] = Field(default=[])

    # Totals over devices -------------------------------------------------------------------
    def _sum(self, attr: str) -> int:
        return sum(int(getattr(d, attr)) for d in self.per_device)

    @property
    def weights_bytes(self) -> int:
        return self._sum("weights_bytes")

    @property
    def k_cache_bytes(self) -> int:
        return self._sum("k_cache_bytes")

    @property
    def v_cache_bytes(self) -> int:
        return self._sum("v_cache_bytes")

    @property
    def kv_cache_bytes(self) -> int:
        return self.k_cache_bytes + self.v_cache_bytes

    @property
    def recurrent_state_bytes(self) -> int:
        return self._sum("recurrent_state_bytes")

    @property
    def compute_bytes(self) -> int:
        return self._sum("compute_bytes")

    @property
    def overhead_bytes(self) -> int:
        return self._sum("overhead_bytes")

    @property
    def total_bytes(self) -> int:
        return self._sum("total_bytes")

    @property
    def budget_bytes(self) -> int:
        return self._sum("budget_bytes")

    @property
    def spill_bytes(self) -> int:
        return self._sum("spill_bytes")

    @property
    def headroom_bytes(self) -> int:
        return self.budget_bytes - self.total_bytes

    def to_json(self) -> dict[str, Any]:
        """The ``kvdesk calc --json`` object (integers in bytes)."""
        data: dict[str, Any] = {
            "engine": self.engine,
            "kv_cache_bytes": self.kv_cache_bytes,
            "k_cache_bytes": self.k_cache_bytes,
            "v_cache_bytes": self.v_cache_bytes,
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "recurrent_state_bytes": self.recurrent_state_bytes,
            "weights_bytes": self.weights_bytes,
            "compute_bytes": self.compute_bytes,
            "overhead_bytes": self.overhead_bytes,
            "total_bytes": self.total_bytes,
            "budget_bytes": self.budget_bytes,
            "fits": self.fits,
            "spill_bytes": self.spill_bytes,
            "spill_slowdown": round(self.spill_slowdown, 3),
            "max_context": self.max_context,
            "max_batch": self.max_batch,
            "decode_ms_per_token": round(self.decode_ms_per_token, 4),
            "per_device": [d.as_json() for d in self.per_device],
            "rules": [r.model_dump() for r in self.rules],
            "warnings": list(self.warnings),
        }
        data.update(self.extra)
        return data
