"""The llama.cpp cache evaluated from cell counts, vectorised: K/V/state bytes and the per-device fit.

``LlamaCppEngine`` computes the cells of many (context, batch) pairs at once (llamacpp_rules.py) and
turns them into bytes here; one call serves the plan's own cell and a whole round of the limit search.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from kvdesk.core.engines.base import CacheArrays
from kvdesk.core.engines.llamacpp_layout import Layout
from kvdesk.core.engines.llamacpp_limits import FitConsts

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def cache_from_cells(
    lay: Layout, cells: dict[str, npt.NDArray[np.int64]], ctx: npt.ArrayLike, batch: npt.ArrayLike
) -> CacheArrays:
    streams = cells["streams"]
    k: Any = 0.0
    v: Any = 0.0
    for g in lay.groups:
        n = np.multiply(cells[f"swa{g.window}" if g.window else "base"], streams, dtype=np.float64)
        k = k + g.k_row * n
        v = v + g.v_row * n
    shape = np.broadcast(np.asarray(ctx), np.asarray(batch)).shape
    zero = np.zeros(shape)
    # llama-memory-recurrent.cpp: r/s tensors of n_embd_r/s × mem_size, mem_size = max(1, n_seq_max)
    state = zero + np.maximum(1.0, np.asarray(batch, dtype=np.float64)) * lay.state_per_seq
    return CacheArrays(k=zero + k, v=zero + v, state=state)


def head_cache(
    lay: Layout, cells: dict[str, npt.NDArray[np.int64]], batch: IntArray, n: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``cache_from_cells`` of the first ``n`` cells, in Python floats: the same IEEE operations
    in the same order (so the same bytes), without a dozen numpy calls on three numbers."""
    streams = cells["streams"]
    st = streams[:n].tolist() if np.ndim(streams) else [int(streams)] * n
    cols = []
    for g in lay.groups:
        a = cells[f"swa{g.window}" if g.window else "base"]
        cols.append((g.k_row, g.v_row, a[:n].tolist() if np.ndim(a) else [int(a)] * n))
    k, v, state = [], [], []
    for i, b in enumerate(batch[:n].tolist()):
        ki: float = 0.0
        vi: float = 0.0
        for k_row, v_row, col in cols:
            cells_i = float(col[i]) * float(st[i])
            ki = ki + k_row * cells_i
            vi = vi + v_row * cells_i
        k.append(0.0 + ki)
        v.append(0.0 + vi)
        state.append(0.0 + max(1.0, float(b)) * lay.state_per_seq)
    return np.array(k), np.array(v), np.array(state)


def fits_from_cells(
    c: FitConsts, lay: Layout, cells: dict[str, npt.NDArray[np.int64]], batch: npt.ArrayLike
) -> npt.NDArray[np.bool_]:
    """need ≤ budget on every device: weights, overhead, hidden activations, each cache group's rows ×
    cells, recurrent states, and the compute buffer max(KQ × cells, logits)."""
    streams = cells["streams"]
    need: Any = c.static
    for gi, w in enumerate(lay.windows):
        need = need + c.rows[gi] * np.multiply(cells[f"swa{w}" if w else "base"], streams, dtype=np.float64)
    if c.has_state:
        need = need + c.state * np.maximum(1.0, np.asarray(batch, dtype=np.float64))
    # compute buffer max(kq × cells, logits); with flash attention kq = 0 and it is the logits (≥ 0)
    compute = np.maximum(c.kq * np.asarray(cells["base"], dtype=np.float64), c.logits) if c.kq else c.logits
    need = need + compute
    ok = need <= c.budget
    return np.asarray(ok[0] if ok.shape[0] == 1 else np.all(ok, axis=0))
