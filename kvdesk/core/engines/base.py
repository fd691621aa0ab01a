"""EngineProfile: the strategy object ``calculate(plan)`` delegates to, plus shared machinery.

An engine profile answers, vectorised over numpy arrays of per-sequence context and batch:
how many K / V / recurrent-state bytes the engine allocates, and how many other bytes it needs.
The base class turns that into a Breakdown: per-device split, verdict, the largest context and
batch that fit (a k-ary search over the vectorised need), and decode time from bandwidth.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from kvdesk.core.breakdown import Breakdown, DeviceBreakdown, Rule
from kvdesk.core.dtypes import KvType, kv_type
from kvdesk.core.plan import MAX_BATCH, MAX_CONTEXT, Plan

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
        head = (np.array([w.context, w.context, w.context + 1]), np.array([w.batch, 1, 1]))
        (k, v, st), (max_ctx, max_batch) = self._cells_and_limits(plan, fixed, head)
        cache = CacheArrays(k=k[:1], v=v[:1], state=st[:1])
        devices = self._split(plan, fixed, cache)
        kv_per_token = int(max(0.0, float(k[2] + v[2] - k[1] - v[1])))
        fits = all(d.spill_bytes == 0 for d in devices)
        live = None
        if type(self).live_cache_bytes is EngineProfile.live_cache_bytes:
            live = float(k[0] + v[0] + st[0])  # the default live_cache_bytes: same cell, no second call
        decode_ms, slowdown = self._decode_time(plan, devices, live)
        rules = [*fixed.rules, *self.cache_rules(plan)]
        return Breakdown(
            engine=self.name,
            per_device=devices,
            kv_bytes_per_token=kv_per_token,
            fits=fits,
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
        """K, V, state bytes of the ``head`` cells, and (max_context, max_batch)."""
        cls, w = type(self), plan.workload
        default = all(
            getattr(cls, m) is getattr(EngineProfile, m) for m in ("fits_mask", "need", "max_context", "max_batch")
        )
        if not default:
            arr = self.cache(plan, *head)
            return tuple(_first(a, 3) for a in (arr.k, arr.v, arr.state)), self._limits(plan, fixed)  # type: ignore[return-value]
        base = sum(fixed.weights) + sum(fixed.compute) + sum(fixed.overhead)
        budget = sum(fixed.budget)
        stash: list[CacheArrays] = []

        def pred(c: IntArray, b: IntArray) -> npt.NDArray[np.bool_]:
            if stash:
                return self.fits_mask(plan, c, b, fixed)
            arr = self.cache(plan, np.concatenate([head[0], c]), np.concatenate([head[1], b]))
            stash.append(arr)
            total = np.broadcast_to(np.asarray(arr.total, dtype=np.float64), (3 + c.size,))
            return np.asarray(total[3:] + base <= budget)

        limit = max(plan.model.native_context or MAX_CONTEXT, 1)
        limits = largest_true_pair(pred, (1, limit, w.batch), (1, MAX_BATCH, w.context))
        arr = stash[0]
        return (_first(arr.k, 3), _first(arr.v, 3), _first(arr.state, 3)), limits

    def _limits(self, plan: Plan, fixed: FixedCosts) -> tuple[int, int]:
        """(max_context, max_batch); both searches share numpy calls unless an engine overrides them."""
        cls, w = type(self), plan.workload
        if cls.max_context is not EngineProfile.max_context or cls.max_batch is not EngineProfile.max_batch:
            return self.max_context(plan, fixed, w.batch), self.max_batch(plan, fixed, w.context)
        limit = max(plan.model.native_context or MAX_CONTEXT, 1)
        return largest_true_pair(
            lambda c, b: self.fits_mask(plan, c, b, fixed), (1, limit, w.batch), (1, MAX_BATCH, w.context)
        )

    def _split(self, plan: Plan, fixed: FixedCosts, cache: CacheArrays) -> list[DeviceBreakdown]:
        shares = self.cache_device_shares(plan, len(fixed.names))
        k, v, s = (float(np.asarray(a).reshape(-1)[0]) for a in (cache.k, cache.v, cache.state))
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
        self, plan: Plan, devices: list[DeviceBreakdown], live: float | None = None
    ) -> tuple[float, float]:
        """Memory-bound decode: one token reads the active weights and the live cache once.

        time ≈ bytes / bandwidth (DESIGN.md §2). Devices of a tensor-parallel group read in parallel;
        layer splits (pipeline) run one after another, so their times add up. Spilled bytes are read
        from system RAM at ``host_bandwidth_bytes_per_s``.
        """
        model = plan.model
        fmt = plan.workload.weights_format
        read = model.active_weights_bytes(fmt) + (self.live_cache_bytes(plan) if live is None else live)
        total = max(1, sum(d.total_bytes for d in devices))
        spilled = sum(d.spill_bytes for d in devices)
        spill_read = read * spilled / total
        bw = plan.gpu.bandwidth_bytes_per_s
        parallel = max(1, plan.engine.tp)
        gpu_s = (read - spill_read) / (bw * parallel)
        host_s = spill_read / plan.host_bandwidth_bytes_per_s
        ideal = read / (bw * parallel)
        seconds = gpu_s + host_s
        return seconds * 1000.0, (seconds / ideal) if ideal > 0 else 1.0


def _first(a: npt.ArrayLike, n: int) -> FloatArray:
    """The first ``n`` values of a cache array (scalars and broadcast arrays included)."""
    arr = np.asarray(a, dtype=np.float64).reshape(-1)
    return arr[:n] if arr.size >= n else np.broadcast_to(arr, (n,))


def _fix_rounding(devices: list[DeviceBreakdown], k: int, v: int, s: int) -> None:
    """Make per-device cache bytes add up exactly to the totals (remainder on the first device)."""
    if not devices:
        return
    first = devices[0]
    first.k_cache_bytes += k - sum(d.k_cache_bytes for d in devices)
    first.v_cache_bytes += v - sum(d.v_cache_bytes for d in devices)
    first.recurrent_state_bytes += s - sum(d.recurrent_state_bytes for d in devices)


_STEPS = np.arange(1 << 16, dtype=np.int64)


def _k_ary(lo: int, hi: int, fan: int) -> Generator[npt.NDArray[np.int64], npt.NDArray[np.bool_], int]:
    """The k-ary search as a coroutine: yields candidates, receives pred(candidates), returns x.

    Candidates are ``lo, lo+step, …`` clipped at ``hi`` (so ``hi`` is always the last one; clipped
    repeats are harmless). For a monotone predicate the number of true answers locates the boundary.
    """
    while True:
        n = min(fan, hi - lo, len(_STEPS) - 1)
        if n <= 0:
            cand = np.array([lo], dtype=np.int64)
        else:
            step = -(-(hi - lo) // n)  # ceil: n steps reach hi
            cand = np.minimum(_STEPS[: n + 1] * step + lo, hi)
        ok = np.asarray((yield cand)).reshape(-1)
        count = int(np.count_nonzero(ok))
        if count == 0:
            return lo - 1  # only reachable in the first round: later rounds start at a known-true lo
        idx = count - 1
        if idx == len(cand) - 1:
            return int(cand[idx])
        lo, hi = int(cand[idx]), int(cand[idx + 1]) - 1
        if lo >= hi:
            return lo


def largest_true(pred: object, lo: int, hi: int, fan: int = 1024) -> int:
    """Largest integer x in [lo, hi] with pred(x) true, for a monotone (true…false) predicate.

    ``pred`` takes an int64 array and returns a bool array: a k-ary search that evaluates ``fan``
    evenly spaced candidates (lo and hi included) per numpy call, so a range of 2**17 takes two calls
    and 2**26 three. Returns lo-1 if none.
    """
    f = pred
    search = _k_ary(lo, hi, fan)
    cand = next(search)
    while True:
        try:
            cand = search.send(np.asarray(f(cand)))  # type: ignore[operator]
        except StopIteration as done:
            return int(done.value)


def largest_true_pair(
    pred: Callable[[npt.NDArray[np.int64], npt.NDArray[np.int64]], npt.NDArray[np.bool_]],
    first: tuple[int, int, int],
    second: tuple[int, int, int],
    fan: int = 1024,
) -> tuple[int, int]:
    """Two k-ary searches run in lockstep, one ``pred`` call per round for both.

    ``first`` = (lo, hi, fixed batch): search the context; ``second`` = (lo, hi, fixed ctx): search
    the batch. ``pred(ctx, batch)`` gets equal-length int64 arrays and returns one bool per pair.
    """
    searches = [_k_ary(first[0], first[1], fan), _k_ary(second[0], second[1], fan)]
    cands: list[npt.NDArray[np.int64] | None] = [next(searches[0]), next(searches[1])]
    results = [0, 0]
    empty = np.empty(0, dtype=np.int64)
    while cands[0] is not None or cands[1] is not None:
        c0 = cands[0] if cands[0] is not None else empty
        c1 = cands[1] if cands[1] is not None else empty
        n0 = c0.size
        ctx = np.empty(n0 + c1.size, dtype=np.int64)
        bat = np.empty_like(ctx)
        ctx[:n0], ctx[n0:], bat[:n0], bat[n0:] = c0, second[2], first[2], c1
        ok = np.asarray(pred(ctx, bat)).reshape(-1)
        for i, part in enumerate((ok[:n0], ok[n0:])):
            if cands[i] is None:
                continue
            try:
                cands[i] = searches[i].send(part)
            except StopIteration as done:
                results[i], cands[i] = int(done.value), None
    return results[0], results[1]
