"""EngineProfile: the strategy object ``calculate(plan)`` delegates to, plus shared machinery.

An engine profile answers, vectorised over numpy arrays of per-sequence context and batch:
how many K / V / recurrent-state bytes the engine allocates, and how many other bytes it needs.
The base class turns that into a Breakdown: per-device split, verdict, the largest context and
batch that fit (an exact k-ary search over the vectorised need, guided by the engine's closed-form
``limit_guesses`` so that one numpy call usually settles both), and decode time from bandwidth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from kvdesk.core.breakdown import Breakdown, DeviceBreakdown, Rule
from kvdesk.core.dtypes import KvType, kv_type
from kvdesk.core.engines.memo import AnchoredMemo
from kvdesk.core.engines.search import Guess, largest_true, largest_true_pair
from kvdesk.core.plan import MAX_BATCH, MAX_CONTEXT, Plan

__all__ = ["CacheArrays", "EngineProfile", "FixedCosts", "Guess", "largest_true", "largest_true_pair"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass
class CacheArrays:
    """Bytes the cache needs, summed over all devices, broadcast over (ctx, batch) inputs."""

    k: FloatArray
    v: FloatArray
    state: FloatArray

    @property
    def total(self) -> FloatArray:
        return self.k + self.v + self.state


@dataclass
class FixedCosts:
    """Per-device bytes that do not grow with the cache (weights) and the engine's other needs."""

    names: list[str]
    weights: list[int]
    compute: list[int]
    overhead: list[int]  # runtime overhead excluding compute buffers
    budget: list[int]
    rules: list[Rule] = field(default_factory=list)


class EngineProfile:
    name: ClassVar[str] = "base"
    label: ClassVar[str] = "Base"
    # kv_bytes_per_token from the cache at (ctx, 1) and (ctx + 1, 1); engines that report their own
    # figure (bytes per cell, per page) set False and skip those two cells
    per_token_from_step: ClassVar[bool] = True

    # -- to implement ---------------------------------------------------------------------------
    def cache(self, plan: Plan, ctx: npt.ArrayLike, batch: npt.ArrayLike) -> CacheArrays:
        raise NotImplementedError

    def fixed(self, plan: Plan) -> FixedCosts:
        raise NotImplementedError

    def cache_rules(self, plan: Plan) -> list[Rule]:
        return []

    def validate(self, plan: Plan) -> list[str]:
        """Raise InputError for contradictory settings; return warnings for dubious ones."""
        return []

    def extra(self, plan: Plan, fixed: FixedCosts, cache: CacheArrays) -> dict[str, object]:
        return {}

    def formula(self, plan: Plan) -> str:
        return ""

    def limit_guesses(self, plan: Plan, fixed: FixedCosts) -> tuple[Guess | None, Guess | None]:
        """Closed-form intervals holding (max_context at the plan's batch, max_batch at its context).

        Only a hint for the exact search (search.py): a wrong interval costs time, never accuracy.
        """
        return None, None

    def cache_device_shares(self, plan: Plan, n_devices: int) -> list[float]:
        """How the cache divides over devices (default: evenly)."""
        return [1.0 / n_devices] * n_devices

    # -- shared machinery -----------------------------------------------------------------------
    def kv_types(self, plan: Plan) -> tuple[KvType, KvType]:
        w = plan.workload
        return kv_type(w.kv_dtype_k, plan.model.dtype), kv_type(w.kv_dtype_v, plan.model.dtype)

    def need(self, plan: Plan, ctx: npt.ArrayLike, batch: npt.ArrayLike, fixed: FixedCosts) -> FloatArray:
        """Total bytes over all devices for each (ctx, batch)."""
        base = sum(fixed.weights) + sum(fixed.compute) + sum(fixed.overhead)
        return np.asarray(self.cache(plan, ctx, batch).total, dtype=np.float64) + base

    def fits_mask(
        self, plan: Plan, ctx: npt.ArrayLike, batch: npt.ArrayLike, fixed: FixedCosts
    ) -> npt.NDArray[np.bool_]:
        return np.asarray(self.need(plan, ctx, batch, fixed) <= sum(fixed.budget))

    def max_context(self, plan: Plan, fixed: FixedCosts, batch: int) -> int:
        limit = plan.model.native_context or MAX_CONTEXT
        return largest_true(lambda c: self.fits_mask(plan, c, batch, fixed), 1, max(limit, 1))

    def max_batch(self, plan: Plan, fixed: FixedCosts, ctx: int) -> int:
        return largest_true(lambda b: self.fits_mask(plan, ctx, b, fixed), 1, MAX_BATCH)

    def calculate(self, plan: Plan) -> Breakdown:
        warnings = self.validate(plan)
        w = plan.workload
        fixed = self.fixed(plan)
        if plan.calibration and plan.calibration.overhead_delta_bytes:
            delta = plan.calibration.overhead_delta_bytes // len(fixed.overhead)
            fixed.overhead = [max(0, o + delta) for o in fixed.overhead]
        # the plan's cell and the per-token step (ctx, ctx+1 at batch 1) share one vectorised call,
        # with the first round of the max_context/max_batch searches when the engine keeps the defaults
        if self.per_token_from_step:
            head = (np.array([w.context, w.context, w.context + 1]), np.array([w.batch, 1, 1]))
        else:
            head = (np.array([w.context]), np.array([w.batch]))
        (k, v, st), (max_ctx, max_batch) = self._cells_and_limits(plan, fixed, head)
        cache = CacheArrays(k=k[:1], v=v[:1], state=st[:1])
        devices = self._split(plan, fixed, cache)
        kl, vl, sl = k.tolist(), v.tolist(), st.tolist()  # float64 as Python floats
        k0, v0, s0 = kl[0], vl[0], sl[0]
        kv_per_token = int(max(0.0, kl[2] + vl[2] - kl[1] - vl[1])) if self.per_token_from_step else 0
        totals = [d.total_bytes for d in devices]
        spilled = sum(max(0, t - d.budget_bytes) for t, d in zip(totals, devices, strict=True))
        live = None
        if type(self).live_cache_bytes is EngineProfile.live_cache_bytes:
            live = k0 + v0 + s0  # the default live_cache_bytes: same cell, no second call
        decode_ms, slowdown = self._decode_time(plan, devices, live, (sum(totals), spilled))
        rules = [*fixed.rules, *self.cache_rules(plan)]
        return Breakdown(
            engine=self.name,
            per_device=devices,
            kv_bytes_per_token=kv_per_token,
            fits=spilled == 0,
            max_context=max_ctx,
            max_batch=max_batch,
            decode_ms_per_token=decode_ms,
            spill_slowdown=slowdown,
            rules=rules,
            formula=self.formula(plan),
            extra=self.extra(plan, fixed, cache),
            warnings=warnings,
        )

    def _cells_and_limits(
        self, plan: Plan, fixed: FixedCosts, head: tuple[IntArray, IntArray]
    ) -> tuple[tuple[FloatArray, FloatArray, FloatArray], tuple[int, int]]:
        """K, V, state bytes of the ``head`` cells, and (max_context, max_batch).

        The head cells and the first round of both limit searches share one engine call
        (``head_and_fits``); with a good closed-form guess that round is the last.
        """
        cls, w = type(self), plan.workload
        if cls.max_context is not EngineProfile.max_context or cls.max_batch is not EngineProfile.max_batch:
            arr = self.cache(plan, *head)
            n = head[0].size
            return tuple(_first(a, n) for a in (arr.k, arr.v, arr.state)), self._limits(plan, fixed)  # type: ignore[return-value]
        n = head[0].size
        stash: list[tuple[FloatArray, FloatArray, FloatArray]] = []

        def pred(c: IntArray, b: IntArray) -> npt.NDArray[np.bool_]:
            if stash:
                return self.fits_mask(plan, c, b, fixed)
            cells, ok = self.head_and_fits(plan, fixed, c, b, n)  # the head comes first in this call
            stash.append(cells)
            return ok

        limit = max(plan.model.native_context or MAX_CONTEXT, 1)
        guesses = self.limit_guesses(plan, fixed)
        limits = largest_true_pair(pred, (1, limit, w.batch), (1, MAX_BATCH, w.context), guesses=guesses, head=head)
        return stash[0], limits

    def head_and_fits(
        self, plan: Plan, fixed: FixedCosts, ctx: IntArray, batch: IntArray, n_head: int
    ) -> tuple[tuple[FloatArray, FloatArray, FloatArray], npt.NDArray[np.bool_]]:
        """K, V, state bytes of the first ``n_head`` cells and ``fits_mask`` of the others.

        One ``cache`` call unless the engine overrides ``need``/``fits_mask`` (then two calls, or
        the engine overrides this method to share its work).
        """
        cls = type(self)
        if cls.fits_mask is not EngineProfile.fits_mask or cls.need is not EngineProfile.need:
            arr = self.cache(plan, ctx[:n_head], batch[:n_head])
            ok = self.fits_mask(plan, ctx[n_head:], batch[n_head:], fixed)
            return (_first(arr.k, n_head), _first(arr.v, n_head), _first(arr.state, n_head)), ok
        base = sum(fixed.weights) + sum(fixed.compute) + sum(fixed.overhead)
        arr = self.cache(plan, ctx, batch)
        total = np.asarray(arr.total, dtype=np.float64)
        if total.shape != ctx.shape:
            total = np.broadcast_to(total, ctx.shape)
        ok = np.asarray(total[n_head:] + base <= sum(fixed.budget))
        return (_first(arr.k, n_head), _first(arr.v, n_head), _first(arr.state, n_head)), ok

    def _limits(self, plan: Plan, fixed: FixedCosts) -> tuple[int, int]:
        """(max_context, max_batch); both searches share numpy calls unless an engine overrides them."""
        cls, w = type(self), plan.workload
        if cls.max_context is not EngineProfile.max_context or cls.max_batch is not EngineProfile.max_batch:
            return self.max_context(plan, fixed, w.batch), self.max_batch(plan, fixed, w.context)
        limit = max(plan.model.native_context or MAX_CONTEXT, 1)
        return largest_true_pair(
            lambda c, b: self.fits_mask(plan, c, b, fixed),
            (1, limit, w.batch),
            (1, MAX_BATCH, w.context),
            guesses=self.limit_guesses(plan, fixed),
        )

    def _split(self, plan: Plan, fixed: FixedCosts, cache: CacheArrays) -> list[DeviceBreakdown]:
        shares = self.cache_device_shares(plan, len(fixed.names))
        k, v, s = (_scalar(a) for a in (cache.k, cache.v, cache.state))
        devices = []
        for i, name in enumerate(fixed.names):
            devices.append(
                DeviceBreakdown(
                    name=name,
                    weights_bytes=fixed.weights[i],
                    k_cache_bytes=round(k * shares[i]),
                    v_cache_bytes=round(v * shares[i]),
                    recurrent_state_bytes=round(s * shares[i]),
                    compute_bytes=fixed.compute[i],
                    overhead_bytes=fixed.compute[i] + fixed.overhead[i],
                    budget_bytes=fixed.budget[i],
                )
            )
        _fix_rounding(devices, round(k), round(v), round(s))
        return devices

    def live_cache_bytes(self, plan: Plan) -> float:
        """Cache bytes one decode step reads (sliding layers read only their window)."""
        w = plan.workload
        return float(np.asarray(self.cache(plan, w.context, w.batch).total).reshape(-1)[0])

    def _decode_time(
        self,
        plan: Plan,
        devices: list[DeviceBreakdown],
        live: float | None = None,
        sums: tuple[int, int] | None = None,
    ) -> tuple[float, float]:
        """Memory-bound decode: one token reads the active weights and the live cache once.

        time ≈ bytes / bandwidth (DESIGN.md §2). Devices of a tensor-parallel group read in parallel;
        layer splits (pipeline) run one after another, so their times add up. Spilled bytes are read
        from system RAM at ``host_bandwidth_bytes_per_s``.
        """
        read = _active_weights_bytes(plan) + (self.live_cache_bytes(plan) if live is None else live)
        if sums is None:  # (total bytes, spilled bytes) over the devices
            sums = (sum(d.total_bytes for d in devices), sum(d.spill_bytes for d in devices))
        total, spilled = max(1, sums[0]), sums[1]
        spill_read = read * spilled / total
        bw = plan.gpu.bandwidth_bytes_per_s
        parallel = max(1, plan.engine.tp)
        gpu_s = (read - spill_read) / (bw * parallel)
        host_s = spill_read / plan.host_bandwidth_bytes_per_s
        ideal = read / (bw * parallel)
        seconds = gpu_s + host_s
        return seconds * 1000.0, (seconds / ideal) if ideal > 0 else 1.0


_ACTIVE: AnchoredMemo[int] = AnchoredMemo(64)


def _active_weights_bytes(plan: Plan) -> int:
    """``model.active_weights_bytes(format)``, memoised per (frozen) model and format."""
    fmt = plan.workload.weights_format
    return _ACTIVE.get((id(plan.model), fmt), plan.model, plan.model.active_weights_bytes, fmt)


def _scalar(a: npt.ArrayLike) -> float:
    """The first value of a cache array as a Python float."""
    if isinstance(a, np.ndarray) and a.ndim == 1:
        return float(a[0])
    return float(np.asarray(a).reshape(-1)[0])


def _first(a: npt.ArrayLike, n: int) -> FloatArray:
    """The first ``n`` values of a cache array (scalars and broadcast arrays included)."""
    if isinstance(a, np.ndarray) and a.ndim == 1 and a.size >= n and a.dtype == np.float64:
        return a[:n]
    arr = np.asarray(a, dtype=np.float64).reshape(-1)
    return arr[:n] if arr.size >= n else np.broadcast_to(arr, (n,))


def _fix_rounding(devices: list[DeviceBreakdown], k: int, v: int, s: int) -> None:
    """Make per-device cache bytes add up exactly to the totals (remainder on the first device)."""
    if not devices:
        return
    first = devices[0]
    # assigned only when off: a pydantic attribute assignment costs more than the sums
    dk = k - sum(d.k_cache_bytes for d in devices)
    dv = v - sum(d.v_cache_bytes for d in devices)
    ds = s - sum(d.recurrent_state_bytes for d in devices)
    if dk:
        first.k_cache_bytes += dk
    if dv:
        first.v_cache_bytes += dv
    if ds:
        first.recurrent_state_bytes += ds
