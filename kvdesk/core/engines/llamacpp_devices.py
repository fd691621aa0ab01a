"""Per-device cache bytes of the llama.cpp layer split (exact, vectorised over ctx × batch).

llama-kv-cache.cpp allocates each layer's K/V in the buffer of ``model.dev_layer(il)``, and
llama-memory-recurrent.cpp does the same for r/s states, so every device holds exactly the rows of
its own layers (the RPC log: 656 / 624 MiB = 41 / 39 layers × 16 MiB).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from kvdesk.core.engines.llamacpp_layout import Layout, layer_devices

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class DeviceRows:
    """Bytes per cell of each cache group (columns) on each device (rows), and state per sequence."""

    k: npt.NDArray[np.int64]  # (n_devices, n_groups)
    v: npt.NDArray[np.int64]
    state: npt.NDArray[np.int64]  # (n_devices,)


@lru_cache(maxsize=128)
def _rows(lay: Layout, n_devices: int) -> DeviceRows:
    dev = layer_devices(len(lay.layer_group), n_devices)[:-1]
    n_groups = len(lay.groups)
    k = np.zeros((n_devices, n_groups), dtype=np.int64)
    v = np.zeros_like(k)
    has_kv = lay.layer_group >= 0
    np.add.at(k, (dev[has_kv], lay.layer_group[has_kv]), lay.layer_k[has_kv])
    np.add.at(v, (dev[has_kv], lay.layer_group[has_kv]), lay.layer_v[has_kv])
    state = np.bincount(dev, weights=lay.layer_state, minlength=n_devices).astype(np.int64)
    return DeviceRows(k, v, state)


def device_rows(lay: Layout, n_devices: int) -> DeviceRows:
    return _rows(lay, n_devices)


def device_cache(
    lay: Layout, n_devices: int, cells: dict[str, npt.NDArray[np.int64]], batch: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """K, V and state bytes per device: arrays of shape (n_devices, *broadcast(ctx, batch))."""
    rows = device_rows(lay, n_devices)
    streams = cells["streams"]
    n = [np.multiply(cells[f"swa{w}" if w else "base"], streams, dtype=np.float64) for w in lay.windows]
    shape = np.broadcast(*n, np.asarray(batch)).shape
    k = np.zeros((n_devices, *shape))
    v = np.zeros_like(k)
    for gi, cells_g in enumerate(n):
        k += rows.k[:, gi].reshape((n_devices,) + (1,) * len(shape)) * cells_g
        v += rows.v[:, gi].reshape((n_devices,) + (1,) * len(shape)) * cells_g
    seqs = np.maximum(1.0, np.asarray(batch, dtype=np.float64))
    s = np.asarray(rows.state.reshape((n_devices,) + (1,) * len(shape)) * seqs + np.zeros_like(k), dtype=np.float64)
    return k, v, s
