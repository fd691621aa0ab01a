"""The one entry point: ``calculate(plan) -> Breakdown``, and vectorised sweeps for charts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kvdesk.core.breakdown import Breakdown
from kvdesk.core.engines import get_engine
from kvdesk.core.plan import Plan


def calculate(plan: Plan) -> Breakdown:
    return get_engine(plan.engine.name).calculate(plan)


@dataclass
class Sweep:
    """KV and total bytes over a grid: shape (len(kv_dtypes), len(contexts), len(batches))."""

    contexts: npt.NDArray[np.int64]
    batches: npt.NDArray[np.int64]
    kv_dtypes: list[str]
    kv_bytes: npt.NDArray[np.float64]
    total_bytes: npt.NDArray[np.float64]
    budget_bytes: int

    @property
    def fits(self) -> npt.NDArray[np.bool_]:
        return self.total_bytes <= self.budget_bytes

    def max_batch(self) -> npt.NDArray[np.int64]:
        """Largest fitting batch per (dtype, context) among the swept batches (0 if none)."""
        ok = self.fits
        idx = np.where(ok.any(axis=2), ok.shape[2] - 1 - np.argmax(ok[:, :, ::-1], axis=2), -1)
        out = np.where(idx >= 0, self.batches[np.clip(idx, 0, None)], 0)
        return out.astype(np.int64)


def sweep(
    plan: Plan,
    contexts: npt.ArrayLike,
    batches: npt.ArrayLike,
    kv_dtypes: list[str] | None = None,
) -> Sweep:
    """KV and total memory over contexts × batches (× KV dtypes), one numpy evaluation per dtype."""
    engine = get_engine(plan.engine.name)
    ctx = np.asarray(contexts, dtype=np.int64)
    bat = np.asarray(batches, dtype=np.int64)
    dtypes = kv_dtypes or [plan.workload.kv_dtype_k]
    kv = np.empty((len(dtypes), ctx.size, bat.size))
    total = np.empty_like(kv)
    fixed = engine.fixed(plan)
    for i, dt in enumerate(dtypes):
        p = plan if kv_dtypes is None else plan.with_workload(kv_dtype_k=dt, kv_dtype_v=dt)
        cache = engine.cache(p, ctx[:, None], bat[None, :])
        kv[i] = cache.total
        total[i] = engine.need(p, ctx[:, None], bat[None, :], fixed)
    return Sweep(ctx, bat, dtypes, kv, total, sum(fixed.budget))
