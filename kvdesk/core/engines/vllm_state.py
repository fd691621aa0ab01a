"""What one vLLM start decides: the KV layout, the budget, ``num_gpu_blocks`` and the concurrency it reports.

Built by ``VllmEngine.state`` (vllm.py) once per plan; the numbers are read the way vLLM's
``_report_kv_cache_config`` prints them, by version.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from kvdesk.core.engines.vllm_budget import Budget
from kvdesk.core.engines.vllm_layout import KvLayout

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
