"""The vLLM (v1 engine) profile: paged KV blocks, KV cache groups, the gpu_memory_utilization budget.

The layout rules live in ``vllm_layout.py`` and the budget in ``vllm_budget.py`` (each cites the vLLM
source it follows). This module turns them into a Breakdown:

- KV bytes reported = the pool vLLM really allocates (``num_gpu_blocks`` blocks on every rank), or
  what the requested batch needs when that is more (then the plan does not fit).
- fits = weights and overhead fit, and ``max_concurrency`` for ``max_model_len = ctx`` ≥ batch.
- ``extra``: ``kv_cache_tokens``, ``num_gpu_blocks``, ``max_concurrency`` as vLLM logs them.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from kvdesk.core.breakdown import Breakdown, DeviceBreakdown, Rule
from kvdesk.core.dtypes import KvType, kv_type
from kvdesk.core.engines import vllm_report as report
from kvdesk.core.engines.base import CacheArrays, EngineProfile, FixedCosts, _fix_rounding, largest_true
from kvdesk.core.engines.vllm_budget import batch_defaults, budget, parse_version, run_dtype
from kvdesk.core.engines.vllm_layout import (
    SPARSE_MLA_BLOCK,
    build_layout,
    pp_partition,
    sparse_block_size,
)
from kvdesk.core.engines.vllm_state import (
    LEGACY_CONCURRENCY_BEFORE,
    NEMOTRON_H_SSM_F32_SINCE,
    TOKENS_FROM_CONCURRENCY_SINCE,
    VllmState,
)
from kvdesk.core.errors import InputError
from kvdesk.core.plan import MAX_BATCH, MAX_CONTEXT, Plan


class VllmEngine(EngineProfile):
    name = "vllm"
    label = "vLLM (v1 engine, paged KV)"

    def __init__(self) -> None:
        self._memo: tuple[object, ...] | None = None
        # during calculate(): [plan, its state once computed] (plans are mutable: this call only)
        self._call: list[Plan | VllmState | None] | None = None

    # -- state ----------------------------------------------------------------------------------
    def state(self, plan: Plan) -> VllmState:
        """The layout and budget for ``plan`` (memoised: context and batch do not change them)."""
        call = self._call
        if call is not None and call[0] is plan and isinstance(call[1], VllmState):
            return call[1]
        e, w = plan.engine, plan.workload
        key = (
            e.tp,
            e.pp,
            e.block_size,
            e.gpu_memory_utilization,
            e.kv_cache_memory,
            e.max_num_batched_tokens,
            e.enforce_eager,
            e.version,
            w.kv_dtype_k,
            w.kv_dtype_v,
            w.kv_heads_override,
            w.weights_format,
            plan.gpu_count,
        )
        memo = self._memo
        if memo is not None and memo[0] is plan.model and memo[1] is plan.gpu and memo[2] == key:
            st = memo[3]
            assert isinstance(st, VllmState)
        else:
            st = self._build_state(plan)
            self._memo = (plan.model, plan.gpu, key, st)
        if call is not None and call[0] is plan:
            call[1] = st
        return st

    def kv_types(self, plan: Plan) -> tuple[KvType, KvType]:
        """KV ``auto`` = the dtype vLLM runs the model in (``--dtype``, see vllm_budget.run_dtype)."""
        w, dt = plan.workload, run_dtype(plan)
        return kv_type(w.kv_dtype_k, dt), kv_type(w.kv_dtype_v, dt)

    def _build_state(self, plan: Plan) -> VllmState:
        e = plan.engine
        tk, tv = self.kv_types(plan)
        if tk != tv:
            raise InputError("vLLM uses one --kv-cache-dtype for K and V; give --kv-dtype", "kv_dtype")
        if tk.block_values != 1:
            raise InputError(f"vLLM has no '{tk.name}' KV cache (use auto, f16, bf16, f32, fp8, fp8_e5m2)", "kv_dtype")
        state_bytes = kv_type("auto", run_dtype(plan)).block_bytes  # mamba cache dtype "auto" = model dtype
        version = parse_version(e.version)
        nemotron_h = plan.model.family == "nemotron_h" or plan.model.architecture.lower().startswith("nemotronh")
        ssm_default = 4 if nemotron_h and version >= NEMOTRON_H_SSM_F32_SINCE else 0
        layout = build_layout(
            tuple(plan.model.layers),
            e.tp,
            e.pp,
            sparse_block_size(plan.model.layers, e.block_size),
            tk,
            plan.workload.kv_heads_override,
            state_bytes,
            ssm_default,
        )
        mnbt, max_num_seqs = batch_defaults(plan)
        bud = budget(plan, [len(r) for r in pp_partition(plan.model.n_layers, e.pp)], mnbt, max_num_seqs)
        stage_avail = [min(bud.available[s * e.tp : (s + 1) * e.tp]) for s in range(e.pp)]
        blocks = layout.num_blocks(stage_avail)
        legacy = version < LEGACY_CONCURRENCY_BEFORE
        new_tokens = version >= TOKENS_FROM_CONCURRENCY_SINCE
        return VllmState(layout, bud, blocks, mnbt, legacy, e.tp, tokens_from_concurrency=new_tokens)

    def validate(self, plan: Plan) -> list[str]:
        e, m = plan.engine, plan.model
        warnings: list[str] = []
        if m.n_heads and m.n_heads % e.tp:
            raise InputError(f"tp {e.tp} does not divide the model's {m.n_heads} attention heads", "tp")
        kv = plan.workload.kv_heads_override or m.default_kv_heads
        if kv and (kv % e.tp if kv >= e.tp else e.tp % kv):
            raise InputError(f"tp {e.tp} and the model's {kv} KV heads do not divide each other", "tp")
        if e.tp * e.pp > plan.gpu_count:
            raise InputError(f"tp × pp = {e.tp * e.pp} needs that many GPUs, the plan has {plan.gpu_count}", "gpus")
        if plan.gpu_count > e.tp * e.pp:
            warnings.append(
                f"vLLM uses tp × pp = {e.tp * e.pp} GPU(s); the other {plan.gpu_count - e.tp * e.pp} are not counted"
            )
        if sparse_block_size(m.layers, e.block_size) != e.block_size:
            warnings.append(
                f"sparse-attention MLA (DeepSeek-V3.2 / GLM-5 lightning indexer): vLLM forces {SPARSE_MLA_BLOCK}-token "
                f"blocks (vllm/platforms/cuda.py FlashMLASparse), not {e.block_size}"
            )
        elif "mla" in m.kinds() and e.block_size == 16:
            warnings.append(
                "MLA model: vLLM keeps 16-token blocks with FLASH_ATTN_MLA (0.19 on H100: DeepSeek-V2-Lite) but "
                "forces 64 with the FlashMLA backend and 128 with CUTLASS MLA on Blackwell "
                "(vllm/platforms/cuda.py); pass --block-size to match your log"
            )
        if "recurrent" in m.kinds():
            warnings.append(
                "Mamba/linear-attention hybrid: state pages sized in the model dtype and one page per request "
                "(mamba_cache_mode none, prefix caching off: checked on Qwen3-Next with vLLM 0.13); with "
                "mamba_cache_mode align/all (prefix caching on hybrids) vLLM needs more state pages per request"
            )
        if m.native_context and plan.workload.context > m.native_context:
            warnings.append(
                f"max_model_len {plan.workload.context} exceeds the model's {m.native_context}; vLLM refuses it"
            )
        return warnings

    # -- EngineProfile hooks ----------------------------------------------------------------------
    def cache(self, plan: Plan, ctx: npt.ArrayLike, batch: npt.ArrayLike) -> CacheArrays:
        """Bytes ``batch`` requests of ``ctx`` tokens occupy in whole blocks, over all devices."""
        st = self.state(plan)
        lay = st.layout
        per_req = lay.blocks_per_request(np.asarray(ctx, dtype=np.int64), st.mnbt).astype(np.float64)
        block_all = float(sum(st.device_block_bytes()))
        total = per_req * np.asarray(batch, dtype=np.float64) * block_all
        return CacheArrays(k=total * lay.k_share, v=total * (1.0 - lay.k_share), state=np.zeros_like(total))

    def fixed(self, plan: Plan) -> FixedCosts:
        st = self.state(plan)
        if "fixed" not in st.memo:
            b = st.budget
            n = len(b.weights)
            tp = plan.engine.tp
            names = [f"GPU{i} (pp{i // tp} tp{i % tp})" if n > 1 else "GPU0" for i in range(n)]
            st.memo["fixed"] = FixedCosts(
                names=names,
                weights=list(b.weights),
                compute=[b.activation] * n,
                overhead=[b.non_torch + g + b.cuda_context + b.rope_cache for g in b.cuda_graph],
                budget=[b.total] * n,
                rules=report.budget_rules(plan, st),
            )
        f = st.memo["fixed"]
        assert isinstance(f, FixedCosts)
        return FixedCosts(f.names, f.weights, f.compute, f.overhead, f.budget, f.rules)  # calculate() may replace lists

    def fits_mask(
        self, plan: Plan, ctx: npt.ArrayLike, batch: npt.ArrayLike, fixed: FixedCosts
    ) -> npt.NDArray[np.bool_]:
        st = self.state(plan)
        ok = st.concurrency(ctx) >= np.asarray(batch, dtype=np.float64)
        if plan.model.native_context:  # vLLM refuses a max_model_len above the model's (see calculate)
            ok = ok & (np.asarray(ctx) <= plan.model.native_context)
        return np.asarray(ok & self._base_ok(st, fixed))

    def max_batch(self, plan: Plan, fixed: FixedCosts, ctx: int) -> int:
        """floor(max_concurrency): ``num_blocks // blocks per request`` (tokens // ctx before 0.9)."""
        st = self.state(plan)
        if not self._base_ok(st, fixed) or 0 < plan.model.native_context < ctx:  # vLLM refuses (see calculate)
            return 0
        if st.legacy:
            return min(MAX_BATCH, st.tokens // max(1, ctx))
        return min(MAX_BATCH, st.num_blocks // max(1, st.blocks_for(ctx)))

    def max_context(self, plan: Plan, fixed: FixedCosts, batch: int) -> int:
        """Largest max_model_len whose requests still fit ``batch`` times (whole blocks)."""
        st = self.state(plan)
        limit = max(1, plan.model.native_context or MAX_CONTEXT)
        if not self._base_ok(st, fixed):
            return 0
        lay = st.layout
        if st.legacy:
            return min(limit, st.tokens // batch)
        if lay.uniform_type and all(s.kind in ("full", "mla") for s in lay.type_specs):
            return min(limit, st.num_blocks // batch * lay.min_block_size)
        return largest_true(lambda c: self.fits_mask(plan, c, batch, fixed), 1, limit)

    @staticmethod
    def _base_ok(st: VllmState, fixed: FixedCosts) -> bool:
        """Blocks exist and weights + overhead + the KV pool fit every device's memory."""
        key = ("base_ok", tuple(fixed.overhead))
        if key[1] != st.memo.get("base_ok_key"):
            pool = st.pool_bytes()
            st.memo["base_ok"] = st.num_blocks > 0 and all(
                w + cp + o + p <= bud
                for w, cp, o, p, bud in zip(
                    fixed.weights, fixed.compute, fixed.overhead, pool, fixed.budget, strict=True
                )
            )
            st.memo["base_ok_key"] = key[1]
        return bool(st.memo["base_ok"])

    def calculate(self, plan: Plan) -> Breakdown:
        self._call = [plan, None]
        try:
            bd = super().calculate(plan)
        finally:
            self._call = None
        st = self.state(plan)
        w = plan.workload
        # no device spills (so the pool fits beside weights and overhead), blocks exist, and the
        # pool holds `batch` requests of max_model_len = ctx
        conc = st.concurrency_at(w.context)
        bd.fits = bd.fits and st.num_blocks > 0 and conc >= w.batch
        # vllm/config/model.py _get_and_verify_max_len: a max_model_len above the config's
        # max_position_embeddings is a ValueError (unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1). Real log:
        # microsoft/phi-2 (2048 positions) with max_model_len 8192 on vLLM 0.19 failed with "User-specified
        # max_model_len (8192) is greater than the derived max_model_len" (llm-d-planner
        # accuracy/results/v0.19.0/logs/microsoft-phi-2--h100-80gb--tp1pp1dp1--8192.FAILED.log @ d3121e05).
        if plan.model.native_context and w.context > plan.model.native_context:
            bd.fits = False
        if st.num_blocks == 0:
            bd.warnings.append("vLLM would not start: no memory left for KV cache blocks after weights and profiling")
        elif conc < 1:
            bd.warnings.append(
                f"vLLM would not start: one request of max_model_len {w.context:,} needs more KV cache than the "
                f"{st.tokens:,}-token pool (max concurrency {conc:.2f})"
            )
        elif conc < w.batch:
            bd.warnings.append(
                f"vLLM's KV pool holds {conc:.2f} requests of {w.context:,} tokens, not {w.batch}; "
                "the rest wait in the queue (or are preempted)"
            )
        bd.kv_bytes_per_token = round(st.layout.token_bytes_full * plan.engine.tp)
        return bd

    def _split(self, plan: Plan, fixed: FixedCosts, cache: CacheArrays) -> list[DeviceBreakdown]:
        st = self.state(plan)
        pool = st.pool_bytes()
        need = float(np.asarray(cache.total).reshape(-1)[0])
        n = len(fixed.names)
        dev_blocks = st.device_block_bytes()
        need_dev = [need * b / max(1, sum(dev_blocks)) for b in dev_blocks]
        share = st.layout.k_share
        devices = []
        for i, name in enumerate(fixed.names):
            kv = max(float(pool[i]), need_dev[i])
            devices.append(
                DeviceBreakdown(
                    name=name,
                    weights_bytes=fixed.weights[i],
                    k_cache_bytes=round(kv * share),
                    v_cache_bytes=round(kv * (1 - share)),
                    compute_bytes=fixed.compute[i],
                    overhead_bytes=fixed.compute[i] + fixed.overhead[i],
                    budget_bytes=fixed.budget[i],
                )
            )
        _fix_rounding(devices, sum(d.k_cache_bytes for d in devices), sum(d.v_cache_bytes for d in devices), 0)
        return devices[:n]

    def extra(self, plan: Plan, fixed: FixedCosts, cache: CacheArrays) -> dict[str, object]:
        st = self.state(plan)
        ctx = plan.workload.context
        conc = st.concurrency_at(ctx)
        return {
            "kv_cache_tokens": st.reported_tokens(ctx),
            "num_gpu_blocks": st.num_blocks,
            "max_concurrency": round(conc, 2) if np.isfinite(conc) else None,
            "max_model_len": ctx,
            "block_size": st.layout.min_block_size,
            "kv_cache_groups": st.layout.n_groups,
            "kv_group_size": st.layout.group_size,
            "kv_padding_layers": st.layout.padding_layers,
            "kv_page_size_bytes": st.layout.page_bytes,
            "available_kv_cache_memory_bytes": min(st.budget.available) if st.budget.available else 0,
            "requested_memory_bytes": st.budget.requested,
            "activation_peak_bytes": st.budget.activation,
            "non_torch_bytes": st.budget.non_torch,
            "cuda_graph_bytes": max(st.budget.cuda_graph) if st.budget.cuda_graph else 0,
            "kv_budget_source": "kv_cache_memory" if st.budget.explicit else "gpu_memory_utilization",
        }

    def cache_rules(self, plan: Plan) -> list[Rule]:
        st = self.state(plan)
        if "cache_rules" not in st.memo:
            st.memo["cache_rules"] = report.cache_rules(plan, st)
        return list(st.memo["cache_rules"])  # type: ignore[call-overload]

    def formula(self, plan: Plan) -> str:
        st = self.state(plan)
        return (
            f"{st.num_blocks:,} blocks // {st.layout.n_groups} group(s) × {st.layout.min_block_size} = "
            f"{st.tokens:,} tokens; max concurrency {st.concurrency_at(plan.workload.context):.2f}x"
        )
