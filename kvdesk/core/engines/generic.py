"""The textbook profile: ``2 × layers × kv_heads × head_dim × ctx × batch × bytes``.

Reproduces the worked examples in shared/validation/worked_examples.json to the byte. Beyond the
textbook it honours what the model spec says about each layer: sliding-window layers keep at most
``window`` tokens, MLA layers keep the compressed latent, recurrent layers a fixed state per sequence.
K and V widths are taken separately (they differ for DeepSeek and Gemma).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from kvdesk.core.breakdown import Rule
from kvdesk.core.engines.base import CacheArrays, EngineProfile, FixedCosts
from kvdesk.core.plan import Plan

# vLLM 0.19 log (shared/validation/engine_memory.json, Llama-3.1-8B on H100): the worker's CUDA
# context/NCCL init took 547,608,330 bytes before any weight was loaded. The generic profile uses it
# as the per-device runtime overhead unless the plan sets one.
CUDA_CONTEXT_BYTES = 547_608_330


class GenericEngine(EngineProfile):
    name = "generic"
    label = "Generic (textbook formula)"

    def cache(self, plan: Plan, ctx: npt.ArrayLike, batch: npt.ArrayLike) -> CacheArrays:
        ctx_a = np.asarray(ctx, dtype=np.float64)
        batch_a = np.asarray(batch, dtype=np.float64)
        tk, tv = self.kv_types(plan)
        override = plan.workload.kv_heads_override
        k = np.zeros(np.broadcast(ctx_a, batch_a).shape)
        v = np.zeros_like(k)
        state = np.zeros_like(k)
        for g in plan.model.layers:
            if g.kind == "recurrent":
                state = state + g.count * float(g.state_bytes or 0) * batch_a
                continue
            if not g.has_kv:
                continue
            tokens = np.minimum(ctx_a, g.window) if g.kind in ("sliding", "chunked") and g.window else ctx_a
            k = k + g.count * tk.row_bytes(g.k_width(override)) * tokens * batch_a
            v = v + g.count * tv.row_bytes(g.v_width(override)) * tokens * batch_a
        return CacheArrays(k=k, v=v, state=state)

    def fixed(self, plan: Plan) -> FixedCosts:
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
        kinds = plan.model.kinds()
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

    def formula(self, plan: Plan) -> str:
        w = plan.workload
        tk, _ = self.kv_types(plan)
        full = [g for g in plan.model.layers if g.kind == "full"]
        if not full:
            return ""
        g = full[0]
        heads = w.kv_heads_override or g.n_kv_heads
        layers = sum(x.count for x in full)
        total = 2 * layers * heads * g.head_dim_k * w.context * w.batch * tk.bytes_per_value
        return (
            f"2 × {layers} layers × {heads} kv_heads × {g.head_dim_k} head_dim × {w.context:,} ctx × "
            f"{w.batch} batch × {float(tk.bytes_per_value):g} B ({tk.name}) = {int(total):,} B"
        )
