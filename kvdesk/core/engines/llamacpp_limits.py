"""Closed-form guesses of llama.cpp's largest context and batch, for the exact search (search.py).

Per device, what ``LlamaCppEngine.fits_mask`` checks is

    need = static + state·max(1, n_seq) + Σ_group rows_g · cells_g · streams + max(kq · cells_base, logits)

with cells per stream (llamacpp_rules.py) ≈ a linear function of the context, padded:

- unified cache (and builds before streams): one stream of ``PAD(ctx·n_seq)`` cells;
- one stream per sequence: ``n_seq`` streams of ``≈ ctx`` cells (``PAD(PAD(ctx·n_seq)/n_seq)``);
- hybrid models before llama.cpp#19559: ``n_seq`` streams of ``≈ ctx·n_seq`` cells;
- SWA caches: ``min(base cells, cap)`` where ``cap`` is what ``swa_cells`` gives for an unbounded
  base (exact, padding included).

Dropping the padding makes ``need`` piecewise linear in the context (at a fixed batch) and, for
per-sequence streams, linear in the batch (at a fixed context); ``solve_piecewise`` solves each
piece. Padding only adds cells (at most ``2·pad`` per stream), so the exact answer lies between the
solution with the padding charged in full and the solution without it: that interval is the guess.
Hybrids before llama.cpp#19559 grow with n_seq² and get no batch guess (plain k-ary search).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from kvdesk.core.engines.llamacpp_layout import Layout
from kvdesk.core.engines.llamacpp_rules import (
    B_HYBRID_FIX,
    B_PAD256_CTX,
    B_STREAMS,
    Cells,
    Settings,
    ctx_padding,
    swa_cells,
)
from kvdesk.core.engines.search import Guess, solve_piecewise

MAX_DEVICES = 8  # more devices: no guess (a Python loop per device would cost more than it saves)
_UNBOUNDED = 1 << 60


@dataclass(frozen=True)
class FitConsts:
    """Per-device constants of ``fits_mask`` (arrays of shape (n_devices, 1))."""

    rows: list[npt.NDArray[np.float64]]  # per cache group: K+V bytes per cell
    state: npt.NDArray[np.float64]
    kq: float
    logits: npt.NDArray[np.float64]
    static: npt.NDArray[np.float64]  # weights + overhead + hidden activations
    budget: npt.NDArray[np.float64]

    @cached_property
    def has_state(self) -> bool:
        return bool(self.state.any())

    @cached_property
    def devices(self) -> list[_Device]:
        """The same constants as Python floats, one entry per device (for the scalar closed form)."""
        return [
            _Device(
                rows=[float(r[d, 0]) for r in self.rows],
                state=float(self.state[d, 0]),
                logits=float(self.logits[d, 0]),
                static=float(self.static[d, 0]),
                budget=float(self.budget[d, 0]),
            )
            for d in range(self.budget.shape[0])
        ]


class _Device(NamedTuple):
    rows: list[float]
    state: float
    logits: float
    static: float
    budget: float


def _swa_caps(s: Settings, lay: Layout, batch: int) -> list[float]:
    """Cells per stream of each cache group once the base cache is larger than the SWA need (inf for
    the base cache and for SWA caches that follow the base size: --swa-full, builds before iSWA)."""
    if len(lay.groups) == 1:
        return [math.inf]  # the base cache only
    huge = np.array(_UNBOUNDED, dtype=np.int64)
    base = Cells(per_stream=huge, n_stream=np.array(1, dtype=np.int64), n_ctx=huge)
    seqs = np.array(batch, dtype=np.int64)
    caps = []
    for w in lay.windows:
        if not w:
            caps.append(math.inf)
            continue
        cap = int(swa_cells(s.build, s.flash_attn, s.unified, s.swa_full, w, base, seqs, s.n_ubatch, s.n_batch))
        caps.append(math.inf if cap >= _UNBOUNDED else float(cap))
    return caps


def limit_guesses(s: Settings, lay: Layout, c: FitConsts, ctx: int, batch: int) -> tuple[Guess | None, Guess | None]:
    """(max_context at ``batch``, max_batch at ``ctx``) intervals, from the closed form above."""
    n_dev = c.budget.shape[0]
    if n_dev > MAX_DEVICES:
        return None, None
    b = s.build
    one_stream = b.ik or b.number < B_STREAMS or s.unified
    hybrid_old = lay.hybrid and not one_stream and b.number < B_HYBRID_FIX
    slack = 2.0 * ctx_padding(b, s.flash_attn) + 2.0  # padded cells beyond the linear count, per stream
    caps = _swa_caps(s, lay, batch)
    devices = c.devices
    ctx_guess = None
    if len(caps) == 1 and not c.kq and not one_stream and not hybrid_old and not b.ik and b.number >= B_PAD256_CTX:
        ctx_guess = _ctx_exact_current(devices, batch, c.has_state)
    if ctx_guess is None:
        ctx_guess = _ctx_guess(devices, c.kq, caps, batch, one_stream, hybrid_old, slack)
    batch_guess = None
    if not hybrid_old:
        caps_at = caps if not one_stream else _swa_caps_linear(s, lay)
        batch_guess = _batch_guess(devices, c.kq, caps_at, ctx, one_stream, slack)
    return ctx_guess, batch_guess


def _ctx_exact_current(devices: list[_Device], batch: int, has_state: bool) -> Guess | None:
    """Current builds, one stream per sequence, no SWA, flash attention: the exact answer.

    Cells per stream are ``per(c) = PAD(PAD(c·n_seq, 256) / n_seq, 256)``, a multiple of 256, so the
    largest fitting context is the largest ``c`` with ``per(c) ≤ N`` for the largest multiple of 256
    ``N`` whose need fits (checked with the very float operations of ``llamacpp_eval.fits_from_cells``), and
    ``per(c) ≤ N  ⇔  PAD(c·n_seq, 256) ≤ (N+1)·n_seq - 1  ⇔  c ≤ ⌊((N+1)·n_seq - 1) / 256⌋·256 // n_seq``.
    """
    best = math.inf
    seqs = float(batch)
    for d in devices:
        if d.rows[0] <= 0:
            return None
        state = d.state * max(1.0, seqs) if has_state else 0.0

        def fits(n: int, d: _Device = d, state: float = state) -> bool:
            need = d.static + d.rows[0] * (float(n) * seqs)
            return (need + state if has_state else need) + d.logits <= d.budget

        room = d.budget - d.static - state - d.logits
        n = max(0, int(room / (d.rows[0] * seqs)) // 256 * 256)
        while n > 0 and not fits(n):  # float rounding: step down to a fitting multiple …
            n -= 256
        while fits(n + 256):  # … or up to the last one
            n += 256
        c = (((n + 1) * batch - 1) // 256 * 256) // batch if n >= 256 else 0
        best = min(best, c)
    return Guess(best, best)


def _ctx_guess(
    devices: list[_Device],
    kq: float,
    caps: list[float],
    batch: int,
    one_stream: bool,
    hybrid_old: bool,
    slack: float,
) -> Guess:
    """x = context: per-stream cells ≈ beta·x in ``streams`` streams."""
    beta = float(batch) if (one_stream or hybrid_old) else 1.0
    streams = 1.0 if one_stream else float(batch)
    err = slack if hybrid_old or not one_stream else slack / batch  # padding, in tokens of context
    if len(caps) == 1 and not kq:  # the common case: one linear piece, compute buffer = logits
        rate = streams * beta
        best = min(_linear(d.budget - d.static - d.state * max(1, batch) - d.logits, rate * d.rows[0]) for d in devices)
        return Guess(best - err - 1.0, best + 1.0)
    best = math.inf
    for dev in devices:
        slope = 0.0
        capped = []
        for rg, cap in zip(dev.rows, caps, strict=True):
            if cap == math.inf:
                slope += streams * beta * rg
            else:
                capped.append((streams * beta * rg, cap / beta))
        const = dev.static + dev.state * max(1, batch)
        best = min(best, solve_piecewise(const, slope, capped, kq * beta, dev.logits, dev.budget))
    return Guess(best - err - 1.0, best + 1.0)


def _swa_caps_linear(s: Settings, lay: Layout) -> list[float] | None:
    """For one stream the SWA cap grows with n_seq (window·n_seq + ubatch): no batch guess then."""
    return None if lay.has_swa else [math.inf] * len(lay.windows)


def _batch_guess(
    devices: list[_Device], kq: float, caps: list[float] | None, ctx: int, one_stream: bool, slack: float
) -> Guess | None:
    """x = batch. Streams per sequence: need = fixed + x·(state + Σ rows·cells(ctx)); one stream:
    need = fixed + x·(state + Σ rows·ctx) + max(kq·ctx·x, logits) (no SWA caps)."""
    if caps is None:
        return None
    lo_best, hi_best = math.inf, math.inf
    for dev in devices:
        r = dev.rows
        if one_stream:
            per_seq = dev.state + sum(r) * ctx
            pad_cost = (sum(r) + kq) * slack  # one stream holds at most `slack` padded cells
            hi = solve_piecewise(dev.static, per_seq, [], kq * ctx, dev.logits, dev.budget)
            lo = solve_piecewise(dev.static + pad_cost, per_seq, [], kq * ctx, dev.logits, dev.budget)
        else:  # linear in x: cells per stream do not depend on the batch here
            hi = _linear(dev.budget - dev.static - max(kq * ctx, dev.logits), dev.state + _rows_at(r, caps, ctx))
            cells = ctx + slack  # the padding charged in full
            lo = _linear(dev.budget - dev.static - max(kq * cells, dev.logits), dev.state + _rows_at(r, caps, cells))
        hi_best, lo_best = min(hi_best, hi), min(lo_best, lo)
    return Guess(lo_best - 1.0, hi_best + 1.0)


def _rows_at(rows: list[float], caps: list[float], cells: float) -> float:
    """Bytes per sequence of all cache groups at ``cells`` base cells per stream."""
    if len(rows) == 1:
        return rows[0] * cells
    return sum(rg * min(cells, cap) for rg, cap in zip(rows, caps, strict=True))


def _linear(room: float, rate: float) -> float:
    """Largest x ≥ 0 with rate·x ≤ room (-1: not even 0; inf: no limit)."""
    if room < 0:
        return -1.0
    return math.inf if rate <= 0 else room / rate
