"""llama.cpp profile: the KV cache as llama.cpp allocates it, to the byte, by build.

Sources (cited per rule in llamacpp_rules.py / llamacpp_layout.py):
- src/llama-context.cpp  llama_context::llama_context (n_ctx / n_ctx_seq padding, kv_unified),
  llama_init_from_model ("V cache quantization requires flash_attn");
- src/llama-model.cpp    llama_model::create_memory (which cache class, kv_size per stream);
- src/llama-kv-cache.cpp llama_kv_cache::llama_kv_cache (K/V tensors n_embd × kv_size × n_stream);
- src/llama-kv-cache-iswa.cpp (SWA cells), src/llama-memory-recurrent.cpp (f32 r/s states,
  mem_size = max(1, n_seq_max));
- common/common.h (swa_full = false, kv_unified = false, fit_params_target 1024 MiB per device).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from kvdesk.core.breakdown import Breakdown, DeviceBreakdown, Rule
from kvdesk.core.dtypes import KvType, kv_type
from kvdesk.core.engines import llamacpp_report as report
from kvdesk.core.engines.base import CacheArrays, EngineProfile, FixedCosts
from kvdesk.core.engines.llamacpp_costs import (
    check_settings,
    compute_per_device,
    compute_terms,
    fit_margin,
    fixed_costs,
)
from kvdesk.core.engines.llamacpp_devices import device_cache, device_rows
from kvdesk.core.engines.llamacpp_eval import cache_from_cells, fits_from_cells, head_cache
from kvdesk.core.engines.llamacpp_layout import Layout, build_layout
from kvdesk.core.engines.llamacpp_limits import FitConsts, limit_guesses
from kvdesk.core.engines.llamacpp_rules import (
    B_STREAMS,
    Settings,
    flash_attn_for_cache,
    hybrid_cells,
    kv_cells,
    parse_build,
    rs_planes,
    swa_cells,
)
from kvdesk.core.engines.memo import AnchoredMemo
from kvdesk.core.engines.search import Guess
from kvdesk.core.errors import InputError
from kvdesk.core.plan import Plan

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
MIB = 1 << 20


def _first_cell(cells: dict[str, npt.NDArray[np.int64]]) -> dict[str, npt.NDArray[np.int64]]:
    return {k: (a[0] if np.ndim(a) else a) for k, a in cells.items()}


# Memo entries hold per-device lists (up to gpu_count = 1024 long): 1024 entries of those reached
# 130 MB in the soak benchmark (benchmarks/soak.py, random GPU counts); 32 keep it to about a MB.
_MEMO_MAX = 32


class LlamaCppEngine(EngineProfile):
    name = "llama.cpp"
    label = "llama.cpp"
    per_token_from_step = False  # calculate() reports bytes per cell (cells come in steps of 256)

    def __init__(self) -> None:
        self._layouts: dict[tuple[object, ...], tuple[object, Settings, Layout]] = {}  # two anchors
        self._settings: AnchoredMemo[Settings] = AnchoredMemo(256)  # values only: no anchor
        self._cells: AnchoredMemo[dict[str, npt.NDArray[np.int64]]] = AnchoredMemo(1024)
        self._scalar: AnchoredMemo[Any] = AnchoredMemo(_MEMO_MAX)
        # report parts keyed on context/batch: their own memo, so a GUI sweeping the context does not
        # evict the fixed costs from _scalar
        self._report: AnchoredMemo[Any] = AnchoredMemo(_MEMO_MAX)
        self._fit_memo: dict[tuple[object, ...], FitConsts] = {}
        self._fit_last: tuple[FixedCosts, Layout, Settings, FitConsts] | None = None
        self._call: tuple[Plan, Settings, Layout] | None = None  # (plan, settings, layout) during calculate()

    # -- settings ---------------------------------------------------------------------------------
    def settings(self, plan: Plan) -> Settings:
        call = self._call
        if call is not None and call[0] is plan:
            return call[1]
        e = plan.engine
        w = plan.workload
        key = (
            e.name,
            e.version,
            e.flash_attn,
            e.kv_unified,
            e.swa_full,
            e.ubatch,
            e.batch_tokens,
            w.kv_dtype_k,
            w.kv_dtype_v,
            e.rs_seq,
        )
        return self._settings.get(key, None, self._resolve, plan)

    def _resolve(self, plan: Plan) -> Settings:
        e = plan.engine
        build = parse_build(e.version)
        tk, tv = self.kv_types(plan)
        unified = bool(e.kv_unified) if e.kv_unified is not None else False
        if build.ik or build.number < B_STREAMS:
            unified = True  # one shared cache for all sequences in those builds
        return Settings(
            build=build,
            flash_attn=flash_attn_for_cache(build, e.flash_attn),
            unified=unified,
            swa_full=e.swa_full,
            n_ubatch=min(e.ubatch, e.batch_tokens),  # llama-context.cpp: n_ubatch = min(n_batch, n_ubatch)
            n_batch=e.batch_tokens,
            tk=tk,
            tv=tv,
            # Ollama passes no speculative settings to its runner: n_rs_seq stays 0 there
            rs_planes=rs_planes(build, e.rs_seq) if e.name == "llama.cpp" else 1,
        )

    def kv_types(self, plan: Plan) -> tuple[KvType, KvType]:
        """'auto' means llama.cpp's default cache type, f16 (common.h cache_type_k/v = F16)."""
        w = plan.workload
        k = "f16" if w.kv_dtype_k == "auto" else w.kv_dtype_k
        v = "f16" if w.kv_dtype_v == "auto" else w.kv_dtype_v
        tk, tv = kv_type(k), kv_type(v)
        for t, which in ((tk, "kv_dtype_k"), (tv, "kv_dtype_v")):
            if t.name.startswith("fp8"):
                raise InputError(f"{which}: llama.cpp has no {t.name} cache type (use f16, q8_0, q4_0 …)", which)
        return tk, tv

    def _lay(self, plan: Plan, s: Settings | None = None) -> Layout:
        """``layout(plan, s)``, taken from the running calculate() when it is for this plan."""
        call = self._call
        if call is not None and call[0] is plan and (s is None or s is call[1]):
            return call[2]
        return self.layout(plan, s)

    def layout(self, plan: Plan, s: Settings | None = None) -> Layout:
        s = s or self.settings(plan)
        override = plan.workload.kv_heads_override
        key = (id(plan.model), id(s), override)
        hit = self._layouts.get(key)
        if hit is not None and hit[0] is plan.model and hit[1] is s:
            return hit[2]
        lay = build_layout(plan.model, s.tk, s.tv, s.build, not s.flash_attn, override, s.rs_planes)
        if len(self._layouts) > 64:
            self._layouts.clear()
        self._layouts[key] = (plan.model, s, lay)
        return lay

    # -- cache ------------------------------------------------------------------------------------
    def cells(self, plan: Plan, ctx: npt.ArrayLike, batch: npt.ArrayLike) -> dict[str, npt.NDArray[np.int64]]:
        """Cells per stream of each cache (base and each SWA window) and the stream count."""
        s = self.settings(plan)
        lay = self._lay(plan, s)
        if isinstance(ctx, int | np.integer) and isinstance(batch, int | np.integer):
            key = (s, lay.cells_key, int(ctx), int(batch))
            return self._cells.get(key, None, self._cells_for, s, lay, ctx, batch)
        return self._cells_for(s, lay, ctx, batch)

    def _cells_for(
        self, s: Settings, lay: Layout, ctx: npt.ArrayLike, batch: npt.ArrayLike
    ) -> dict[str, npt.NDArray[np.int64]]:
        c = np.asarray(ctx, dtype=np.int64)
        b = np.asarray(batch, dtype=np.int64)
        fn = hybrid_cells if lay.hybrid else kv_cells
        base = fn(s.build, s.flash_attn, s.unified, c, b)
        out = {"base": base.per_stream, "streams": base.n_stream, "n_ctx": base.n_ctx}
        for g in lay.groups:
            if g.window:
                out[f"swa{g.window}"] = swa_cells(
                    s.build, s.flash_attn, s.unified, s.swa_full, g.window, base, b, s.n_ubatch, s.n_batch
                )
        return out

    def cache(self, plan: Plan, ctx: npt.ArrayLike, batch: npt.ArrayLike) -> CacheArrays:
        s = self.settings(plan)
        lay = self._lay(plan, s)
        if isinstance(ctx, int | np.integer) and isinstance(batch, int | np.integer):
            key = ("cache", s, id(lay), int(ctx), int(batch))
            c = self._scalar.get(key, lay, self._cache_for, plan, lay, ctx, batch)
            return CacheArrays(k=c.k.copy(), v=c.v.copy(), state=c.state.copy())
        return self._cache_for(plan, lay, ctx, batch)

    def _cache_for(self, plan: Plan, lay: Layout, ctx: npt.ArrayLike, batch: npt.ArrayLike) -> CacheArrays:
        return cache_from_cells(lay, self.cells(plan, ctx, batch), ctx, batch)

    # -- devices ----------------------------------------------------------------------------------
    def cache_device_shares(self, plan: Plan, n_devices: int) -> list[float]:
        """KV follows the layer split (llama-kv-cache.cpp: buffer of model.dev_layer(il))."""
        if n_devices == 1:
            return [1.0]
        w = plan.workload
        k, v, st = self.device_cache(plan, w.context, w.batch, n_devices)
        per = (k + v + st).reshape(n_devices, -1)[:, 0]
        total = float(per.sum())
        return [float(x) / total for x in per] if total > 0 else [1.0 / n_devices] * n_devices

    def device_cache(
        self, plan: Plan, ctx: npt.ArrayLike, batch: npt.ArrayLike, n_devices: int
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Exact K, V and recurrent-state bytes of each device (leading axis), vectorised."""
        lay = self._lay(plan)
        return device_cache(lay, n_devices, self.cells(plan, ctx, batch), batch)

    def fits_mask(
        self, plan: Plan, ctx: npt.ArrayLike, batch: npt.ArrayLike, fixed: FixedCosts
    ) -> npt.NDArray[np.bool_]:
        """Every device must fit its own layers' cache (the layer split is uneven), and the compute
        buffer follows the cell count when flash attention is off."""
        s = self.settings(plan)
        lay = self._lay(plan, s)
        return fits_from_cells(self._fit_consts(plan, s, lay, fixed), lay, self._cells_for(s, lay, ctx, batch), batch)

    def head_and_fits(
        self, plan: Plan, fixed: FixedCosts, ctx: IntArray, batch: IntArray, n_head: int
    ) -> tuple[tuple[FloatArray, FloatArray, FloatArray], npt.NDArray[np.bool_]]:
        """The head cells' K/V/state bytes and the fit of the others from ONE cell computation."""
        s = self.settings(plan)
        lay = self._lay(plan, s)
        cells = self._cells_for(s, lay, ctx, batch)
        ok = fits_from_cells(self._fit_consts(plan, s, lay, fixed), lay, cells, batch)
        # the plan's own cell, for extra(), the rules and the formula: already computed here
        self._cells.get((s, lay.cells_key, int(ctx[0]), int(batch[0])), None, _first_cell, cells)
        return head_cache(lay, cells, batch, n_head), ok[n_head:]

    def limit_guesses(self, plan: Plan, fixed: FixedCosts) -> tuple[Guess | None, Guess | None]:
        s = self.settings(plan)
        lay = self._lay(plan, s)
        if lay.go_engine:
            return None, None  # Ollama's Go engine sizes cells differently: plain k-ary search
        w = plan.workload
        return limit_guesses(s, lay, self._fit_consts(plan, s, lay, fixed), w.context, w.batch)

    def _fit_consts(self, plan: Plan, s: Settings, lay: Layout, fixed: FixedCosts) -> FitConsts:
        """Per-device constants of fits_mask, memoised on everything they are built from (fixed()
        hands out copies, so its values are the key, not the object)."""
        last = self._fit_last
        if last is not None and last[0] is fixed and last[1] is lay and last[2] is s:
            return last[3]  # the same search (fixed() hands each calculate its own object)
        m = plan.model
        key = (
            lay,
            s,
            m.n_heads,
            m.vocab_size,
            m.hidden_size,
            *fixed.weights,
            None,
            *fixed.overhead,
            None,
            *fixed.budget,
        )
        hit = self._fit_memo.get(key)
        if hit is not None:
            self._fit_last = (fixed, lay, s, hit)
            return hit
        n = len(fixed.names)
        rows = device_rows(lay, n)
        kq, hidden, logits = self.compute_terms(plan, s, n)
        col = (n, 1)
        consts = FitConsts(
            rows=[(rows.k[:, gi] + rows.v[:, gi]).astype(np.float64).reshape(col) for gi in range(len(lay.groups))],
            state=rows.state.astype(np.float64).reshape(col),
            kq=float(kq),
            logits=np.array(logits, dtype=np.float64).reshape(col),
            static=np.array(
                [fixed.weights[i] + fixed.overhead[i] + hidden for i in range(n)], dtype=np.float64
            ).reshape(col),
            budget=np.array(fixed.budget, dtype=np.float64).reshape(col),
        )
        if len(self._fit_memo) > 8:  # one entry per plan being edited; the keys hold per-device lists
            self._fit_memo.clear()
        self._fit_memo[key] = consts
        self._fit_last = (fixed, lay, s, consts)
        return consts

    def _split(self, plan: Plan, fixed: FixedCosts, cache: CacheArrays) -> list[DeviceBreakdown]:
        """Exact per-device K/V/state bytes instead of shares of the total."""
        devices = super()._split(plan, fixed, cache)
        if len(devices) > 1:
            w = plan.workload
            k, v, st = (
                a.reshape(len(devices), -1)[:, 0] for a in self.device_cache(plan, w.context, w.batch, len(devices))
            )
            for i, d in enumerate(devices):
                d.k_cache_bytes, d.v_cache_bytes, d.recurrent_state_bytes = round(k[i]), round(v[i]), round(st[i])
        return devices

    def fixed(self, plan: Plan) -> FixedCosts:
        """Per-device weights, compute estimate and margin; memoised on everything they depend on."""
        s = self.settings(plan)
        w, e = plan.workload, plan.engine
        key = (
            "fixed",
            type(self).__name__,
            id(plan.model),
            s,
            plan.gpu,
            plan.gpu_count,
            w.weights_format,
            # the compute estimate follows the cell count only without flash attention (KQ matrix)
            None if s.flash_attn else w.context,
            None if s.flash_attn else w.batch,
            e.overhead_bytes,
            e.fit_margin_bytes,
        )
        f: FixedCosts = self._scalar.get(key, plan.model, self._fixed, plan)
        # a new object with its own overhead list (calculate() replaces it for calibration); the
        # other lists are never modified after _fixed() and are shared
        return FixedCosts(f.names, f.weights, f.compute, list(f.overhead), f.budget, f.rules)

    def _fixed(self, plan: Plan) -> FixedCosts:
        s = self.settings(plan)
        return fixed_costs(plan, self.compute_estimate(plan, s, plan.gpu_count), self.margin(plan, s))

    def margin(self, plan: Plan, s: Settings) -> int:
        return fit_margin(plan, s)

    def compute_terms(self, plan: Plan, s: Settings, n_devices: int) -> tuple[int, int, list[int]]:
        return compute_terms(plan, s, n_devices)

    def compute_estimate(self, plan: Plan, s: Settings, n_devices: int) -> list[int]:
        """Compute buffer per device at the plan's own cell count (see llamacpp_costs.compute_terms)."""
        w = plan.workload
        n_kv = int(self.cells(plan, w.context, w.batch)["base"].reshape(-1)[0])
        return compute_per_device(plan, s, n_devices, n_kv)

    # -- reporting --------------------------------------------------------------------------------
    def calculate(self, plan: Plan) -> Breakdown:
        """The base breakdown, with kv_bytes_per_token as bytes per cell of the full-attention cache.

        llama.cpp allocates cells in steps of 256, so the base class's ctx+1 difference is 0 on most
        contexts; one cell of every non-sliding layer (K + V) is what a token costs.
        """
        s = self.settings(plan)
        lay = self.layout(plan, s)
        # settings and layout of this plan for the whole call (plans are mutable: only for this call)
        self._call = (plan, s, lay)
        try:
            bd = super().calculate(plan)
        finally:
            self._call = None
        bd.kv_bytes_per_token = sum(g.k_row + g.v_row for g in lay.groups if not g.window)
        return bd

    def validate(self, plan: Plan) -> list[str]:
        s = self.settings(plan)
        return check_settings(plan, s, self._lay(plan, s))

    def cache_rules(self, plan: Plan) -> list[Rule]:
        return list(self._memo("rules", plan, self._cache_rules))

    def formula(self, plan: Plan) -> str:
        return str(self._memo("formula", plan, self._formula))

    def _memo(self, what: str, plan: Plan, fn: Any) -> Any:
        """Memoise a report part on what it depends on: settings, model, ctx, batch."""
        s = self.settings(plan)
        w = plan.workload
        key = (what, type(self).__name__, s, id(plan.model), w.context, w.batch, w.kv_heads_override)
        return self._report.get(key, plan.model, fn, plan)

    def _cache_rules(self, plan: Plan) -> list[Rule]:
        s = self.settings(plan)
        w = plan.workload
        return report.cache_rules(plan, s, self._lay(plan, s), self.cells(plan, w.context, w.batch))

    def extra(self, plan: Plan, fixed: FixedCosts, cache: CacheArrays) -> dict[str, object]:
        w = plan.workload
        cells = self.cells(plan, w.context, w.batch)
        out: dict[str, object] = {
            "kv_cells": int(cells["base"].reshape(-1)[0]),
            "kv_streams": int(cells["streams"].reshape(-1)[0]),
            "n_ctx": int(cells["n_ctx"].reshape(-1)[0]),
            # llama-context.cpp output buffer: n_outputs_max (= n_seq_max) × n_vocab × 4 B, in host memory
            "output_buffer_bytes": max(1, w.batch) * plan.model.vocab_size * 4,
            "engine_build": self.settings(plan).build.label,
        }
        for key, value in cells.items():
            if key.startswith("swa"):
                out[f"kv_cells_{key}"] = int(value.reshape(-1)[0])
        return out

    def _formula(self, plan: Plan) -> str:
        w = plan.workload
        return report.formula(self._lay(plan), self.cells(plan, w.context, w.batch))
