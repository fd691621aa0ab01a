"""The vLLM profile's explain-panel rules, each naming the vLLM source it follows."""

from __future__ import annotations

from kvdesk.core.breakdown import Rule
from kvdesk.core.engines.vllm_layout import sparse_block_size, sparse_mla_rules
from kvdesk.core.engines.vllm_state import SRC_MODEL, SRC_SPEC, SRC_UTILS, SRC_WORKER, VllmState
from kvdesk.core.plan import Plan


def cache_rules(plan: Plan, st: VllmState) -> list[Rule]:
    """The explain-panel rules of the KV layout, blocks and concurrency."""
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

def budget_rules(plan: Plan, st: VllmState) -> list[Rule]:
    """The explain-panel rule of the KV budget (explicit --kv-cache-memory or from utilization)."""
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
