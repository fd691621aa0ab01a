"""The vLLM (v1 engine) profile: paged KV blocks, KV cache groups, the gpu_memory_utilization budget.

The layout rules live in ``vllm_layout.py`` and the budget in ``vllm_budget.py`` (each cites the vLLM
source it follows). This module turns them into a Breakdown:

- KV bytes reported = the pool vLLM really allocates (``num_gpu_blocks`` blocks on every rank), or
  what the requested batch needs when that is more (then the plan does not fit).
- fits = weights and overhead fit, and ``max_concurrency`` for ``max_model_len = ctx`` ≥ batch.
- ``extra``: ``kv_cache_tokens``, ``num_gpu_blocks``, ``max_concurrency`` as vLLM logs them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from kvdesk.core.breakdown import Breakdown, DeviceBreakdown, Rule
from kvdesk.core.dtypes import KvType, kv_type
from kvdesk.core.engines.base import CacheArrays, EngineProfile, FixedCosts, _fix_rounding, largest_true
from kvdesk.core.engines.vllm_budget import Budget, batch_defaults, budget, parse_version, run_dtype
from kvdesk.core.engines.vllm_layout import (
    SPARSE_MLA_BLOCK,
    KvLayout,
    build_layout,
    pp_partition,
    sparse_block_size,
    sparse_mla_rules,
)
from kvdesk.core.errors import InputError
from kvdesk.core.plan import MAX_BATCH, MAX_CONTEXT, Plan

SRC_UTILS = "vllm/v1/core/kv_cache_utils.py"
SRC_SPEC = "vllm/v1/kv_cache_interface.py"
SRC_WORKER = "vllm/v1/worker/gpu_worker.py determine_available_memory"
SRC_MODEL = "vllm/config/model.py"
# vLLM < 0.9 (early v1): max_concurrency = num_blocks × block_size / max_model_len
# (kv_cache_utils.py _get_kv_cache_config_uniform_type, v0.8.x); later versions use
# get_max_concurrency_for_kv_cache_config (whole blocks per request).
LEGACY_CONCURRENCY_BEFORE = (0, 9, 0)
# _report_kv_cache_config from vLLM 0.20 (vllm-project/vllm#38364 / #40694, "GPU KV cache size in tokens =
# max_concurrency * max_model_len"): num_tokens = int(max_concurrency × max_model_len) instead of
# num_blocks // groups × min block size. Bracketed by real logs: 0.19.2rc1 (Gemma 4 26B, 72,400 tokens =
# whole blocks) prints the old number, 0.20.2 (Gemma 4 26B, 286,007) and 0.22.0 (Qwen3.5-4B, 163,225) the new.
TOKENS_FROM_CONCURRENCY_SINCE = (0, 20, 0)
# NemotronH whose config names no mamba_ssm_cache_dtype: vllm#29978 (2025-12) made vLLM's default
# float16 (same bytes as the bf16 model dtype), vllm#39032 (merged 2026-04-05, ≈ 0.20) float32
# (vllm/model_executor/models/config.py NemotronHForCausalLMConfig.DEFAULT_MAMBA_SSM_CACHE_DTYPE).
NEMOTRON_H_SSM_F32_SINCE = (0, 20, 0)


@dataclass(frozen=True)
class VllmState:
    layout: KvLayout
    budget: Budget
    num_blocks: int
    mnbt: int
    legacy: bool
    tp: int
    memo: dict[str, object] = field(default_factory=dict, compare=False)
    tokens_from_concurrency: bool = False

    @property
    def tokens(self) -> int:
        if not self.layout.groups:
            return 0
        if self.legacy:
            return self.num_blocks * self.layout.min_block_size
        return self.num_blocks // self.layout.n_groups * self.layout.min_block_size

    def reported_tokens(self, ctx: int) -> int:
        """The "GPU KV cache size: N tokens" vLLM prints for max_model_len ``ctx``."""
        if not self.tokens_from_concurrency or not self.layout.groups:
            return self.tokens
        return int(self.num_blocks / max(self.blocks_for(ctx), 1) * ctx)

    def blocks_for(self, ctx: int) -> int:
        """``blocks_per_request`` of one max_model_len; the last answer is kept (one calculate()
        asks for the plan's context four times)."""
        hit = self.memo.get("blocks_for")
        if isinstance(hit, tuple) and hit[0] == ctx:
            return int(hit[1])
        per_req = int(self.layout.blocks_per_request(np.int64(ctx), self.mnbt))
        self.memo["blocks_for"] = (ctx, per_req)
        return per_req

    def concurrency_at(self, ctx: int) -> float:
        """``float(concurrency(ctx))`` for one context in Python numbers (the same divisions)."""
        if not self.layout.groups:
            return math.inf
        if self.legacy:
            return self.tokens / max(ctx, 1)
        return self.num_blocks / max(self.blocks_for(ctx), 1)

    def concurrency(self, ctx: npt.ArrayLike) -> npt.NDArray[np.float64]:
        c = np.asarray(ctx, dtype=np.int64)
        if not self.layout.groups:
            return np.full(c.shape, np.inf)
        if self.legacy:
            return np.asarray(self.tokens / np.maximum(c, 1), dtype=np.float64)
        per_req = self.layout.blocks_per_request(c, self.mnbt)
        return np.asarray(self.num_blocks / np.maximum(per_req, 1), dtype=np.float64)

    def pool_bytes(self) -> list[int]:
        """Bytes of KV tensors per device (``KVCacheTensor.size`` summed): num_blocks × block bytes."""
        return [self.num_blocks * b for b in self.device_block_bytes()]

    def device_block_bytes(self) -> list[int]:
        """Bytes of one block on each device (tp ranks of a pipeline stage hold the same layers)."""
        return [self.layout.rank_block_bytes[i // self.tp] for i in range(len(self.budget.weights))]


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
                rules=self._budget_rules(plan, st),
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
            st.memo["cache_rules"] = self._cache_rules(plan, st)
        return list(st.memo["cache_rules"])  # type: ignore[call-overload]

    def _cache_rules(self, plan: Plan, st: VllmState) -> list[Rule]:
        lay = st.layout
        e = plan.engine
        bs = sparse_block_size(plan.model.layers, e.block_size)
        rules = [
            Rule(
                id="vllm.page",
                title=f"Paged KV: {bs}-token blocks; page = 2 × block × max(1, kv_heads/TP) × head × dtype",
                detail=f"page {lay.page_bytes:,} B/layer; TP {e.tp} splits heads, PP {e.pp} layers; MLA: 1 latent",
                source=f"{SRC_SPEC} AttentionSpec, MLAAttentionSpec real_page_size_bytes; {SRC_MODEL} get_num_kv_heads",
            ),
            *sparse_mla_rules(plan.model.layers, plan.workload.kv_dtype_k),
            Rule(
                id="vllm.blocks",
                title=f"num_gpu_blocks = available // page // layers per group = {st.num_blocks:,}",
                detail="the smallest pipeline rank sets num_blocks for all ranks",
                source=f"{SRC_UTILS} get_num_blocks, get_kv_cache_configs",
            ),
            Rule(
                id="vllm.pool",
                title="KV reported = the whole pool vLLM allocates",
                detail="vLLM allocates num_gpu_blocks blocks up front, whatever the batch; a bigger batch does not fit",
                source=f"{SRC_UTILS} get_kv_cache_config_from_groups (KVCacheTensor size = page × num_blocks)",
            ),
            Rule(
                id="vllm.concurrency",
                title="max_concurrency = num_blocks / blocks one max_model_len request needs",
                detail="sliding layers need min(window - 1 + max_num_batched_tokens, L) tokens + 1 block",
                source=f"{SRC_UTILS} get_max_concurrency_for_kv_cache_config; {SRC_SPEC} max_memory_usage_bytes",
            ),
        ]
        if lay.n_groups > 1:
            rules.append(
                Rule(
                    id="vllm.hybrid",
                    title=f"Hybrid: {lay.n_groups} KV groups × {lay.group_size} layers, {lay.padding_layers} padding",
                    detail="tokens = num_blocks // groups × block_size",
                    source=f"{SRC_UTILS} _get_kv_cache_groups_uniform_page_size, _report_kv_cache_config",
                )
            )
        if st.legacy:
            rules.append(
                Rule(id="vllm.legacy", title="vLLM < 0.9: max_concurrency = tokens / max_model_len", source=SRC_UTILS)
            )
        return rules

    def _budget_rules(self, plan: Plan, st: VllmState) -> list[Rule]:
        b = st.budget
        if b.explicit:
            return [
                Rule(
                    id="vllm.kv_cache_memory",
                    title=f"--kv-cache-memory {b.available[0]:,} B per GPU",
                    source=SRC_WORKER,
                )
            ]
        graphs = "charged" if b.graphs_in_budget else "not charged (VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS off)"
        return [
            Rule(
                id="vllm.budget",
                title=f"KV budget = {plan.engine.gpu_memory_utilization:g} × total − weights − activation − non-torch",
                detail=(
                    f"requested {b.requested:,} B; activation {b.activation:,} B (estimate); "
                    f"non-torch {b.non_torch:,} B; RoPE cos/sin cache {b.rope_cache:,} B; "
                    f"CUDA graphs {max(b.cuda_graph, default=0):,} B {graphs}; "
                    f"CUDA context {b.cuda_context:,} B outside"
                ),
                source=f"{SRC_WORKER}; vllm/utils/mem_utils.py memory_profiling; fit to 0.19 logs (vllm_budget.py)",
            )
        ]

    def formula(self, plan: Plan) -> str:
        st = self.state(plan)
        return (
            f"{st.num_blocks:,} blocks // {st.layout.n_groups} group(s) × {st.layout.min_block_size} = "
            f"{st.tokens:,} tokens; max concurrency {st.concurrency_at(plan.workload.context):.2f}x"
        )
