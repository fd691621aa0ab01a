"""Exact searches for the largest context / batch that fits: a k-ary search, optionally guided.

The predicate (``need ≤ budget``) is monotone: more context or more sequences never needs less
memory. For a monotone predicate ANY set of candidates that contains ``lo`` and ``hi`` locates the
boundary between the last true and the first false candidate; the search then repeats inside that
gap until the gap is one integer wide. So the answer does not depend on which candidates are tried,
only the number of numpy calls does.

Engines that know their memory function in closed form (linear per piece in context and batch, up
to cell padding) pass a ``Guess``: a centre and the interval around it where the answer must be.
The first round then evaluates every integer of that interval plus both ends of the range (so a
wrong guess costs one to three extra rounds, never a wrong answer), and a correct guess finishes
the search in that one round.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
Pred = Callable[[IntArray, IntArray], npt.NDArray[np.bool_]]

_STEPS = np.arange(1 << 16, dtype=np.int64)
MAX_WINDOW = 4096  # widest dense window a guess may ask for (wider guesses are not worth a dense scan)


class Guess(NamedTuple):
    """The answer is expected in ``[low, high]`` (real numbers from a closed form; may be ±inf)."""

    low: float
    high: float


def _window(lo: int, hi: int, guess: Guess | None) -> tuple[int, int] | None:
    """The guessed interval as integers within [lo, hi], widened by 2 for float rounding."""
    if guess is None or hi <= lo:
        return None
    low, high = guess
    if high < low:
        low, high = high, low
    try:
        a, b = math.floor(low) - 2, math.ceil(high) + 2
    except (OverflowError, ValueError):  # ±inf or NaN
        if math.isnan(low) or math.isnan(high):
            return None
        a = lo if low < lo else hi
        b = hi if high > hi else lo
    a = lo if a < lo else (hi if a > hi else a)
    b = lo if b < lo else (hi if b > hi else b)
    return None if b - a > MAX_WINDOW else (a, b)


def _fill(out: IntArray, lo: int, hi: int, window: tuple[int, int]) -> None:
    """``lo``, every integer of ``window``, ``hi`` (sorted; repeats of lo or hi are harmless)."""
    np.add(_STEPS[: out.size], window[0] - 1, out=out)
    out[0], out[-1] = lo, hi


def guided_candidates(lo: int, hi: int, guess: Guess | None) -> IntArray | None:
    """First-round candidates for a guess: ``lo``, every integer of the guessed interval (widened by
    2 for float rounding), ``hi``. None for no usable guess. A miss leaves a gap on one side, which
    the following k-ary rounds search as usual."""
    win = _window(lo, hi, guess)
    if win is None:
        return None
    cand = np.empty(win[1] - win[0] + 3, dtype=np.int64)
    _fill(cand, lo, hi, win)
    return cand


def k_ary(lo: int, hi: int, fan: int, first: IntArray | None = None) -> Generator[IntArray, npt.NDArray[np.bool_], int]:
    """The k-ary search as a coroutine: yields candidates, receives pred(candidates), returns x.

    Candidates are ``lo, lo+step, …`` clipped at ``hi`` (so ``hi`` is always the last one; clipped
    repeats are harmless), or ``first`` in the first round (sorted, from ``lo`` to ``hi``). For a
    monotone predicate the number of true answers locates the boundary.
    """
    cand_first = first
    while True:
        if cand_first is not None:
            cand, cand_first = cand_first, None
        else:
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
    search = k_ary(lo, hi, fan)
    cand = next(search)
    while True:
        try:
            cand = search.send(np.asarray(f(cand)))  # type: ignore[operator]
        except StopIteration as done:
            return int(done.value)


def largest_true_pair(
    pred: Pred,
    first: tuple[int, int, int],
    second: tuple[int, int, int],
    fan: int = 1024,
    guesses: tuple[Guess | None, Guess | None] = (None, None),
    head: tuple[IntArray, IntArray] | None = None,
) -> tuple[int, int]:
    """Two k-ary searches run in lockstep, one ``pred`` call per round for both.

    ``first`` = (lo, hi, fixed batch): search the context; ``second`` = (lo, hi, fixed ctx): search
    the batch. ``pred(ctx, batch)`` gets equal-length int64 arrays and returns one bool per pair.
    ``guesses`` narrow the first round of each search (see ``guided_candidates``). ``head``: pairs
    put in front of the first call only (the caller's own cells, evaluated in the same call); pred
    answers for the pairs after them.
    """
    w0, w1 = _window(first[0], first[1], guesses[0]), _window(second[0], second[1], guesses[1])
    c0 = c1 = None
    if w0 is not None and w1 is not None:
        # both guessed: the first round of both in one call, resolved without the coroutines when
        # both boundaries fall inside the guessed intervals (the usual case)
        nh = 0 if head is None else head[0].size
        n0, n1 = w0[1] - w0[0] + 3, w1[1] - w1[0] + 3
        ctx = np.empty(nh + n0 + n1, dtype=np.int64)
        bat = np.empty_like(ctx)
        if head is not None:
            ctx[:nh], bat[:nh] = head
            head = None  # evaluated
        c0, c1 = ctx[nh : nh + n0], bat[nh + n0 :]
        _fill(c0, first[0], first[1], w0)
        _fill(c1, second[0], second[1], w1)
        ctx[nh + n0 :], bat[nh : nh + n0] = second[2], first[2]
        ok = np.asarray(pred(ctx, bat)).reshape(-1)
        r0, r1 = _settle(c0, ok[:n0]), _settle(c1, ok[n0:])
        if r0 is not None and r1 is not None:
            return r0, r1
        c0, c1 = c0.copy(), c1.copy()
    else:
        c0 = guided_candidates(first[0], first[1], guesses[0])
        c1 = guided_candidates(second[0], second[1], guesses[1])
    searches = [k_ary(first[0], first[1], fan, c0), k_ary(second[0], second[1], fan, c1)]
    cands: list[IntArray | None] = [next(searches[0]), next(searches[1])]
    results = [0, 0]
    empty = np.empty(0, dtype=np.int64)
    while cands[0] is not None or cands[1] is not None:
        c0 = cands[0] if cands[0] is not None else empty
        c1 = cands[1] if cands[1] is not None else empty
        n0 = c0.size
        ctx = np.empty(n0 + c1.size, dtype=np.int64)
        bat = np.empty_like(ctx)
        ctx[:n0], ctx[n0:], bat[:n0], bat[n0:] = c0, second[2], first[2], c1
        if head is not None:
            ctx, bat = np.concatenate([head[0], ctx]), np.concatenate([head[1], bat])
            head = None
        ok = np.asarray(pred(ctx, bat)).reshape(-1)
        for i, part in enumerate((ok[:n0], ok[n0:])):
            if cands[i] is None:
                continue
            try:
                cands[i] = searches[i].send(part)
            except StopIteration as done:
                results[i], cands[i] = int(done.value), None
    return results[0], results[1]


def _settle(cand: IntArray, ok: npt.NDArray[np.bool_]) -> int | None:
    """What ``k_ary`` concludes from one round, when that round is its last (else None).

    Same rule as k_ary: with ``count`` true answers the boundary lies between candidate count-1
    and the next one; it is settled when those two are adjacent integers (or at an end).
    """
    count = int(np.count_nonzero(ok))
    if count == 0:
        return int(cand[0]) - 1
    if count == cand.size:
        return int(cand[-1])
    x = int(cand[count - 1])
    return x if int(cand[count]) - 1 <= x else None


def solve_piecewise(
    const: float, slope: float, capped: list[tuple[float, float]], kq: float, floor_: float, budget: float
) -> float:
    """Largest real x ≥ 0 with f(x) ≤ budget, for the nondecreasing piecewise-linear

    ``f(x) = const + slope·x + Σ a·min(x, cap) + max(kq·x, floor_)``   (all coefficients ≥ 0),

    solved piece by piece between the breakpoints (the caps and floor_/kq). -1 when even f(0) is
    over budget, +inf when f stays within it for every x.
    """
    start = const + max(0.0, floor_)  # f(0)
    if start > budget:
        return -1.0
    if not capped and kq <= 0:  # one linear piece (the common case): no breakpoints to walk
        return math.inf if slope <= 0 else (budget - start) / slope
    points = sorted({cap for a, cap in capped if a > 0 and 0 < cap < math.inf})
    if kq > 0 and floor_ > 0:
        points = sorted({*points, floor_ / kq})

    def f(x: float) -> float:
        return const + slope * x + sum(a * min(x, cap) for a, cap in capped) + max(kq * x, floor_)

    x0 = 0.0
    for x1 in [*points, math.inf]:
        mid = x0 + 1.0 if x1 == math.inf else (x0 + x1) / 2
        rate = slope + sum(a for a, cap in capped if cap > mid) + (kq if kq * mid > floor_ else 0.0)
        if x1 == math.inf or f(x1) > budget:
            return math.inf if rate <= 0 else x0 + (budget - f(x0)) / rate
        x0 = x1
    return math.inf  # pragma: no cover - the loop always returns at x1 = inf
