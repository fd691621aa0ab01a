"""vLLM's KV budget per GPU: ``gpu_memory_utilization × total`` minus what profiling measures.

vllm/v1/worker/gpu_worker.py ``determine_available_memory`` (0.19.0):
``requested_memory = total_memory × gpu_memory_utilization`` (a fraction of TOTAL memory, not of
free memory) and ``available_kv_cache_memory = requested_memory - non_kv_cache_memory`` with
``non_kv_cache_memory = weights + torch peak increase + non-torch increase``
(vllm/utils/mem_utils.py ``memory_profiling``; the baseline is taken after CUDA/NCCL init, so the
initial CUDA context is *not* charged). The CUDA graph pool is charged only with
``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=1``, whose default is still 0 in vllm/envs.py on main
(the 0.19 log announces it "will be enabled by default"); kvdesk follows the default.
``--kv-cache-memory`` replaces all of this with a per-GPU byte count.

Without a log, the profiled figures are estimated from 40 vLLM 0.19.0 H100 logs (llm-d-planner
accuracy/results/v0.19.0/logs @ d3121e05; cases in tests/data/vllm/):

- torch peak increase (activation peak) ≈ ``14.2 B × max_num_seqs × vocab`` (the dummy sampler run
  over ``max_num_seqs`` fp32 logits rows: Gemma's 256k vocab 3.62–3.66 GiB whatever its size, Llama 3
  128k 1.89 GiB, CodeLlama 32k 0.77 GiB) ``+ 2.35 B × max_num_batched_tokens × hidden + 0.1 GiB``
  (the dummy forward; a least-squares fit over the 19 distinct dense 0.19 H100 runs, all within
  0.07 GiB but CodeLlama's multi-head attention, +0.16 GiB: Llama 3.1 8B → 3.3 70B (hidden 4096 → 8192)
  adds only 0.07 GiB, Qwen2.5 7B → 72B 0.08 GiB, Granite 3.1 2B → 8B 0.10 GiB), plus ≈0.45 GiB for MoE
  routing buffers (Mixtral 1.21, Qwen1.5-MoE 2.47, DeepSeek-V2-Lite
  1.93, Qwen3-30B-A3B 2.68 GiB against 0.63/2.18/1.50/2.18 predicted by the dense fit). f32 models
  add ≈0.3 GiB (Llama 3.1 8B f32 2.21 vs bf16 1.89 GiB). It does not shrink with TP (logits are
  gathered): Llama 3.1 8B TP1/TP2/TP4 all 1.89 GiB. Before 0.17 the sampler term was ≈2.6× larger.
- non-torch increase: 0.25 GiB on one GPU (0.13 GiB before 0.18), ≈2.1 GiB with TP > 1 (custom all-reduce/NCCL buffers:
  2.06–2.21 GiB in 12 TP2/TP4 logs), 0.07 GiB with PP only.
- CUDA graph pool (outside the budget in 0.19): ≈0.5 GiB + 14.5 MiB per layer on the rank
  (Llama 3.1 8B 0.91, Llama 3.3 70B TP2 1.79, Qwen2.5-72B TP2 1.61, Gemma 2 27B 1.23 GiB); none with
  ``enforce_eager``.
- CUDA context before profiling: 0.51 GiB on one GPU (worker init snapshot ``cuda_memory=0.51GiB``),
  1.43–2.07 GiB with several GPUs; also outside the budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from kvdesk.core.errors import InputError
from kvdesk.core.plan import Plan

GIB = 1 << 30
DEFAULT_VERSION = (0, 19, 0)
# vllm/engine/arg_utils.py EngineArgs.get_batch_defaults, OPENAI_API_SERVER (`vllm serve`): GPUs with
# ≥ 70 GiB that are not A100 get max_num_batched_tokens 8192 and max_num_seqs 1024 (0.19 H100 log:
# "Defaulting max_num_batched_tokens to 8192", "Defaulting max_num_seqs to 1024"); others 2048 / 256.
# max_num_seqs is then capped at max_num_batched_tokens.
BIG_GPU_BYTES = 70 * GIB
BIG_GPU_DEFAULTS = (8192, 1024)
SMALL_GPU_DEFAULTS = (2048, 256)

SAMPLER_BYTES_PER_SEQ_VOCAB = 14.2
# vLLM ≤ 0.16 profiled a much larger sampler peak: Qwen3-14B on H100, activation 5.64 GiB in 0.15/0.16
# and 2.23 GiB from 0.17 (llm-d-planner accuracy/results/version-sweep); the 3.41 GiB difference over
# 1024 seqs × 151936 vocab is 23.5 B more per (seq, vocab).
SAMPLER_BYTES_PER_SEQ_VOCAB_BEFORE_0_17 = 14.4 + 23.5  # 37.9 B, fitted with the earlier 14.4
SAMPLER_CHANGED_IN = (0, 17, 0)
FORWARD_BYTES_PER_TOKEN_HIDDEN = 2.35
FORWARD_FIXED_BYTES = int(0.1 * GIB)
MOE_EXTRA_BYTES = int(0.45 * GIB)
F32_EXTRA_BYTES = int(0.32 * GIB)
NON_TORCH_TP1 = 268_435_456  # 0.25 GiB (engine_memory.json non_torch_bytes, Llama 3.1 8B)
NON_TORCH_TP1_BEFORE_0_18 = int(0.13 * GIB)  # Qwen3-14B 0.15-0.17: 0.13 GiB, 0.18: 0.25 GiB (version sweep)
NON_TORCH_CHANGED_IN = (0, 18, 0)
NON_TORCH_TP = int(2.1 * GIB)
NON_TORCH_PP = int(0.07 * GIB)
CUDA_GRAPH_BASE = int(0.5 * GIB)
CUDA_GRAPH_PER_LAYER = int(14.5 * (1 << 20))
CUDA_GRAPHS_IN_BUDGET = False  # vllm/envs.py VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS default "0"
CUDA_CONTEXT_1GPU = 547_608_330  # engine_memory.json init_cuda_memory_bytes
CUDA_CONTEXT_MULTI = int(1.5 * GIB)


def parse_version(text: str | None) -> tuple[int, int, int]:
    """'0.19.0', 'v0.8.5.post1', None → (0, 19, 0); a clear error for anything else."""
    if not text:
        return DEFAULT_VERSION
    parts = text.strip().lstrip("vV").split(".")
    try:
        nums = [int("".join(ch for ch in p if ch.isdigit()) or "0") for p in parts[:3]]
    except ValueError:
        nums = []
    if not parts or not parts[0][:1].isdigit() or not nums:
        raise InputError(f"engine version '{text}' is not a vLLM version such as 0.19.0", "engine_version")
    while len(nums) < 3:
        nums.append(0)
    return nums[0], nums[1], nums[2]


@dataclass(frozen=True)
class Budget:
    """Per-rank figures (all ranks alike except weights / graphs for uneven PP splits)."""

    total: int
    requested: int
    weights: list[int]
    activation: int
    non_torch: int
    cuda_graph: list[int]
    cuda_context: int
    available: list[int]  # KV cache memory per rank
    explicit: bool  # --kv-cache-memory given
    graphs_in_budget: bool
    rope_cache: int = 0  # RoPE cos/sin buffer per rank (loaded with the weights, kvdesk shows it as overhead)


def batch_defaults(plan: Plan) -> tuple[int, int]:
    """(max_num_batched_tokens, max_num_seqs) as `vllm serve` picks them for this GPU."""
    big = plan.gpu.memory_bytes >= BIG_GPU_BYTES and "a100" not in plan.gpu.name.lower()
    tokens, seqs = BIG_GPU_DEFAULTS if big else SMALL_GPU_DEFAULTS
    tokens = plan.engine.max_num_batched_tokens or tokens
    return tokens, min(seqs, tokens)


def run_dtype(plan: Plan) -> str:
    """The dtype vLLM runs the model in: ``--dtype`` (kvdesk's f32/f16/bf16 weights format), else the model's.

    vllm/config/model.py ModelConfig.dtype (``--dtype float32`` overrides the config's torch_dtype); KV
    ``auto`` and Mamba state ``auto`` follow it (vllm/v1/worker/gpu_model_runner.py get_kv_cache_spec uses
    ``kv_cache_dtype_str_to_dtype(cache_dtype, model_config)`` = model_config.dtype for "auto"). Real log:
    Llama 3.1 8B ``--dtype float32`` on H100 holds 175,296 tokens in 42.8 GiB (4-byte KV), half the bf16
    count (llm-d-planner accuracy/results/v0.19.0/logs meta-llama-llama-3--h100-80gb--tp1pp1dp1--8192-dtf32.log).
    """
    fmt = (plan.workload.weights_format or "").strip().lower()
    return fmt if fmt in ("f32", "f16", "bf16") else plan.model.dtype


def rope_cache_bytes(plan: Plan) -> int:
    """The RoPE cos/sin buffer every rank holds on top of the weights (counted in "Model loading took").

    vllm/model_executor/layers/rotary_embedding/base.py RotaryEmbedding.__init__: ``cache =
    self._compute_cos_sin_cache()`` (``max_position_embeddings × rotary_dim``: cos and sin halves)
    ``.to(dtype)``, a non-persistent buffer; get_rope shares one per distinct setting. Small for most
    models (Llama 3.1 8B: 131072 × 128 × 2 B = 32 MiB, the 0.03 GiB between its parameters and the logged
    14.99 GiB), but Llama 4 Scout's 10,485,760 positions make it 2.5 GiB per GPU (logged 53.12 GiB per
    TP4 rank against 50.6 GiB of parameters: llm-d-planner accuracy/results/v0.19.0/logs
    meta-llama-llama-4-scout--h100-80gb--tp4pp1dp1--8192.log). rotary_dim is the head size (MLA: its
    rope part); a partial_rotary_factor, which kvdesk does not import, would make it smaller.
    """
    m = plan.model
    dims = [g.rope_dim if g.kind == "mla" else g.head_dim_k for g in m.layers if g.kind != "recurrent"]
    rotary = max((d or 0 for d in dims), default=0)
    dtype_bytes = 4 if run_dtype(plan).lower() in ("f32", "fp32", "float32") else 2
    return m.native_context * rotary * dtype_bytes


def activation_peak(plan: Plan, mnbt: int, max_num_seqs: int) -> int:
    m = plan.model
    old = parse_version(plan.engine.version) < SAMPLER_CHANGED_IN
    per = SAMPLER_BYTES_PER_SEQ_VOCAB_BEFORE_0_17 if old else SAMPLER_BYTES_PER_SEQ_VOCAB
    peak = per * max_num_seqs * m.vocab_size
    peak += FORWARD_BYTES_PER_TOKEN_HIDDEN * mnbt * m.hidden_size + FORWARD_FIXED_BYTES
    if m.is_moe:
        peak += MOE_EXTRA_BYTES
    if run_dtype(plan).lower() in ("f32", "fp32", "float32"):
        peak += F32_EXTRA_BYTES
    return int(peak)


def non_torch(tp: int, pp: int, version: tuple[int, int, int] = DEFAULT_VERSION) -> int:
    if tp > 1:
        return NON_TORCH_TP
    if pp > 1:
        return NON_TORCH_PP
    return NON_TORCH_TP1_BEFORE_0_18 if version < NON_TORCH_CHANGED_IN else NON_TORCH_TP1


def budget(plan: Plan, rank_layer_counts: list[int], mnbt: int, max_num_seqs: int) -> Budget:
    e = plan.engine
    ranks = e.tp * e.pp
    total = plan.gpu.usable_bytes
    requested = int(total * e.gpu_memory_utilization)
    weights_all = plan.model.weights_bytes(plan.workload.weights_format)
    per_stage = [weights_all * n // max(1, sum(rank_layer_counts)) for n in rank_layer_counts]
    rope = rope_cache_bytes(plan)
    weights = [per_stage[i // e.tp] // e.tp for i in range(ranks)]
    act = activation_peak(plan, mnbt, max_num_seqs)
    nt = non_torch(e.tp, e.pp, parse_version(e.version))
    graphs = [
        0 if e.enforce_eager else CUDA_GRAPH_BASE + CUDA_GRAPH_PER_LAYER * rank_layer_counts[i // e.tp]
        for i in range(ranks)
    ]
    ctx = CUDA_CONTEXT_1GPU if ranks == 1 else CUDA_CONTEXT_MULTI
    in_budget = CUDA_GRAPHS_IN_BUDGET
    if e.kv_cache_memory is not None:
        available = [e.kv_cache_memory] * ranks
    else:
        charged = [w + rope + act + nt + (g if in_budget else 0) for w, g in zip(weights, graphs, strict=True)]
        available = [requested - c for c in charged]
    explicit = e.kv_cache_memory is not None
    return Budget(total, requested, weights, act, nt, graphs, ctx, available, explicit, in_budget, rope)
