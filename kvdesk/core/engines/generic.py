"""The textbook profile: ``2 × layers × kv_heads × head_dim × ctx × batch × bytes``.

Reproduces the worked examples in shared/validation/worked_examples.json to the byte. Beyond the
textbook it honours what the model spec says about each layer: sliding-window layers keep at most
``window`` tokens, MLA layers keep the compressed latent, recurrent layers a fixed state per sequence.
K and V widths are taken separately (they differ for DeepSeek and Gemma).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kvdesk.core.breakdown import Rule
from kvdesk.core.engines.base import CacheArrays, EngineProfile, FixedCosts
from kvdesk.core.engines.memo import AnchoredMemo
from kvdesk.core.engines.search import Guess, solve_piecewise
from kvdesk.core.plan import Plan

# vLLM 0.19 log (shared/validation/engine_memory.json, Llama-3.1-8B on H100): the worker's CUDA
# context/NCCL init took 547,608,330 bytes before any weight was loaded. The generic profile uses it
# as the per-device runtime overhead unless the plan sets one.
CUDA_CONTEXT_BYTES = 547_608_330


@dataclass(frozen=True)
class _Coeffs:
    """Bytes per token of one sequence for K and V: unbounded layers, and per window for windowed ones."""

    k_full: float
    v_full: float
    windowed: tuple[tuple[int, float, float], ...]  # (window, K bytes per token, V bytes per token)
    state_per_seq: float


class GenericEngine(EngineProfile):
    name = "generic"
    label = "Generic (textbook formula)"

    def __init__(self) -> None:
        # small memos keyed by what each result depends on, anchored on the model (memo.py)
        self._coeff_memo: AnchoredMemo[_Coeffs] = AnchoredMemo(64)
        self._fixed_memo: AnchoredMemo[FixedCosts] = AnchoredMemo(64)
        self._formula_memo: AnchoredMemo[tuple[str, str] | None] = AnchoredMemo(64)

    def _coeffs(self, plan: Plan) -> _Coeffs:
        w = plan.workload
        key = (id(plan.model), w.kv_dtype_k, w.kv_dtype_v, w.kv_heads_override)
        return self._coeff_memo.get(key, plan.model, self._build_coeffs, plan)

    def _build_coeffs(self, plan: Plan) -> _Coeffs:
        w = plan.workload
        tk, tv = self.kv_types(plan)
        override = w.kv_heads_override
        k_full = v_full = state = 0.0
        windowed: dict[int, list[float]] = {}
        for g in plan.model.layers:
            if g.kind == "recurrent":
                state += g.count * float(g.state_bytes or 0)
            elif g.has_kv:
                k = g.count * tk.row_bytes(g.k_width(override))
                v = g.count * tv.row_bytes(g.v_width(override))
                if g.kind in ("sliding", "chunked") and g.window:
                    acc = windowed.setdefault(g.window, [0.0, 0.0])
                    acc[0] += k
                    acc[1] += v
                else:
                    k_full += k
                    v_full += v
        return _Coeffs(k_full, v_full, tuple((win, kv[0], kv[1]) for win, kv in windowed.items()), state)

    def cache(self, plan: Plan, ctx: npt.ArrayLike, batch: npt.ArrayLike) -> CacheArrays:
        ctx_a = np.asarray(ctx, dtype=np.float64)
        batch_a = np.asarray(batch, dtype=np.float64)
        c = self._coeffs(plan)
        k = c.k_full * ctx_a * batch_a
        v = c.v_full * ctx_a * batch_a
        for window, k_tok, v_tok in c.windowed:
            tokens = np.minimum(ctx_a, window) * batch_a
            k = k + k_tok * tokens
            v = v + v_tok * tokens
        # without recurrent layers: the same zeros, two numpy calls fewer (k has the broadcast shape)
        state = c.state_per_seq * batch_a * np.ones_like(ctx_a) if c.state_per_seq else np.zeros_like(k)
        return CacheArrays(k=k, v=v, state=state)

    def limit_guesses(self, plan: Plan, fixed: FixedCosts) -> tuple[Guess | None, Guess | None]:
        """Closed form of the limits: one sequence needs p(c) = s + (K+V)_full·c + Σ (K+V)_w·min(c, w)
        bytes (piecewise linear in c, a piece per window) and ``b`` sequences b·p(c). Float rounding
        of the exact evaluation moves the boundary by at most a token, so ±1 around the solution."""
        c = self._coeffs(plan)
        w = plan.workload
        room = float(sum(fixed.budget) - (sum(fixed.weights) + sum(fixed.compute) + sum(fixed.overhead)))
        full = c.k_full + c.v_full
        capped = [(k + v, float(win)) for win, k, v in c.windowed]
        b = float(w.batch)
        ctx = solve_piecewise(b * c.state_per_seq, b * full, [(b * a, win) for a, win in capped], 0.0, 0.0, room)
        per_seq = c.state_per_seq + full * w.context + sum(a * min(float(w.context), win) for a, win in capped)
        batch = room / per_seq if per_seq > 0 else (math.inf if room >= 0 else -1.0)
        return Guess(ctx - 1, ctx + 1), Guess(batch - 1, batch + 1)

    def fixed(self, plan: Plan) -> FixedCosts:
        w, e = plan.workload, plan.engine
        key = (id(plan.model), w.weights_format, plan.gpu_count, plan.gpu.usable_bytes, e.overhead_bytes)
        f = self._fixed_memo.get(key, plan.model, self._fixed, plan)
        # a copy: calculate() replaces the overhead list for calibration
        return FixedCosts(f.names, f.weights, f.compute, list(f.overhead), f.budget, f.rules)

    def _fixed(self, plan: Plan) -> FixedCosts:
        n = plan.gpu_count
        weights = plan.model.weights_bytes(plan.workload.weights_format)
        per = [weights // n] * n
        per[0] += weights - sum(per)
        overhead = plan.engine.overhead_bytes if plan.engine.overhead_bytes is not None else CUDA_CONTEXT_BYTES
        rules = [
            Rule(
                id="generic.overhead",
                title=f"Runtime overhead {overhead / 2**20:.0f} MiB per device",
                detail="CUDA context and allocator reserve; set engine.overhead_bytes to change it",
                source="vLLM 0.19 log: init CUDA context 547,608,330 B (shared/validation/engine_memory.json)",
            ),
            Rule(
                id="generic.weights",
                title="Weights split evenly over devices",
                detail=f"{weights:,} bytes / {n} device(s)",
            ),
        ]
        return FixedCosts(
            names=[f"GPU{i}" for i in range(n)],
            weights=per,
            compute=[0] * n,
            overhead=[overhead] * n,
            budget=[plan.gpu.usable_bytes] * n,
            rules=rules,
        )

    def cache_rules(self, plan: Plan) -> list[Rule]:
        kinds = frozenset(g.kind for g in plan.model.layers)
        rules = _CACHE_RULES.get(kinds)
        if rules is None:
            rules = _CACHE_RULES[kinds] = _cache_rules(kinds)  # at most 2**6 kind sets
        return list(rules)

    def formula(self, plan: Plan) -> str:
        """The textbook formula with the plan's numbers, for the full-attention layers."""
        w = plan.workload
        parts = self._formula_head(plan)
        if parts is None:
            return ""
        c = self._coeffs(plan)
        total = int((c.k_full + c.v_full) * w.context * w.batch)
        head, tail = parts
        return f"{head}{w.context:,} ctx × {w.batch} batch{tail} = {total:,} B"

    def _formula_head(self, plan: Plan) -> tuple[str, str] | None:
        """The parts of the formula around ctx × batch that depend on the model and dtypes only."""
        w = plan.workload
        key = (id(plan.model), w.kv_dtype_k, w.kv_dtype_v, w.kv_heads_override)
        return self._formula_memo.get(key, plan.model, self._build_formula_head, plan)

    def _build_formula_head(self, plan: Plan) -> tuple[str, str] | None:
        w = plan.workload
        full = [g for g in plan.model.layers if g.kind == "full"]
        head: tuple[str, str] | None = None
        if full:
            c = self._coeffs(plan)
            tk, tv = self.kv_types(plan)
            layers = sum(x.count for x in full)
            g = full[0]
            uniform = len({(x.n_kv_heads, x.head_dim_k, x.head_dim_v) for x in full}) == 1 and tk == tv
            if uniform and g.head_dim_k == g.head_dim_v:
                heads = w.kv_heads_override or g.n_kv_heads
                head = (
                    f"2 × {layers} layers × {heads} kv_heads × {g.head_dim_k} head_dim × ",
                    f" × {float(tk.bytes_per_value):g} B ({tk.name})",
                )
            else:
                head = (f"{layers} full layers: (K {int(c.k_full):,} B + V {int(c.v_full):,} B per token) × ", "")
        return head


_CACHE_RULES: dict[frozenset[str], list[Rule]] = {}


def _cache_rules(kinds: frozenset[str]) -> list[Rule]:
    rules = [
        Rule(
            id="generic.formula",
            title="KV = 2 × layers × kv_heads × head_dim × ctx × batch × bytes",
            detail="K and V sized separately when their head widths differ",
            source="textbook formula; shared/validation/worked_examples.json",
        )
    ]
    if kinds & {"sliding", "chunked"}:
        rules.append(Rule(id="generic.window", title="Sliding/chunked layers keep at most `window` tokens"))
    if "mla" in kinds:
        rules.append(Rule(id="generic.mla", title="MLA layers cache the latent (kv_lora_rank + rope_dim)"))
    if "recurrent" in kinds:
        rules.append(Rule(id="generic.recurrent", title="Recurrent layers hold a fixed state per sequence"))
    return rules
