"""Ollama profile: llama.cpp's cache rules with Ollama's own settings and per-GPU reserve.

Sources (ollama/ollama):
- llm/llama_server.go (2026, llama-server runner): ``-c NumCtx*numParallel -np numParallel``,
  ``--cache-type-k/-v OLLAMA_KV_CACHE_TYPE``, ``--flash-attn auto`` unless OLLAMA_FLASH_ATTENTION
  is set; the older CGO runner passed the same n_ctx = NumCtx × numParallel, n_seq_max = numParallel
  (llama/llama.go NewContextParams).
- llm/server.go (2025): a quantized OLLAMA_KV_CACHE_TYPE needs flash attention, otherwise Ollama
  warns and uses f16; only f16, q8_0 and q4_0 are supported (fs/ggml/ggml.go SupportsKVCacheType).
- ml/device.go DeviceInfo.MinimumMemory: 457 MiB per GPU (512 MiB on Metal) set aside, plus
  envconfig OLLAMA_GPU_OVERHEAD (default 0) per GPU (server/sched.go).
- server/sched.go: hybrid families (qwen35, qwen3next, lfm2, nemotron_h …) run with numParallel 1.
"""

from __future__ import annotations

import re

from kvdesk.core.breakdown import Rule
from kvdesk.core.dtypes import KvType, kv_type
from kvdesk.core.engines.base import FixedCosts
from kvdesk.core.engines.llamacpp import MIB, LlamaCppEngine, Settings
from kvdesk.core.engines.llamacpp_rules import parse_build
from kvdesk.core.errors import InputError
from kvdesk.core.plan import Plan

OLLAMA_KV_TYPES = ("f16", "q8_0", "q4_0")
MINIMUM_MEMORY = 457 * MIB  # ml/device.go MinimumMemory (CUDA, ROCm, Vulkan)
METAL_MINIMUM_MEMORY = 512 * MIB  # ml/device.go / discover/gpu_darwin.go metalMinimumMemory

_OLLAMA_VERSION = re.compile(r"^\s*v?\d+\.\d+")


class OllamaEngine(LlamaCppEngine):
    name = "ollama"
    label = "Ollama"

    def _resolve(self, plan: Plan) -> Settings:
        s = super()._resolve(plan.with_engine(version=self.llama_build(plan.engine.version)))
        return s

    @staticmethod
    def llama_build(version: str | None) -> str | None:
        """An Ollama release ('0.12.3') runs a recent llama.cpp; 'bNNNN' names the llama.cpp build."""
        if version is None or _OLLAMA_VERSION.match(version):
            return None
        parse_build(version)  # raises a clear InputError for nonsense
        return version

    def kv_types(self, plan: Plan) -> tuple[KvType, KvType]:
        t = self.cache_type(plan)
        return kv_type(t), kv_type(t)

    def cache_type(self, plan: Plan) -> str:
        """OLLAMA_KV_CACHE_TYPE as Ollama applies it: one type for K and V, f16 unless supported."""
        w = plan.workload
        k = "f16" if w.kv_dtype_k == "auto" else kv_type(w.kv_dtype_k).name
        v = "f16" if w.kv_dtype_v == "auto" else kv_type(w.kv_dtype_v).name
        if k != v:
            raise InputError(
                f"kv_dtype: Ollama sets one OLLAMA_KV_CACHE_TYPE for K and V (got K {k}, V {v})", field="kv_dtype"
            )
        if k not in OLLAMA_KV_TYPES:
            return "f16"  # llm/server.go: "unsupported OLLAMA_KV_CACHE_TYPE" -> default f16
        if k != "f16" and plan.engine.flash_attn is False:
            return "f16"  # llm/server.go: quantized cache needs OLLAMA_FLASH_ATTENTION, else f16
        return k

    def validate(self, plan: Plan) -> list[str]:
        w = plan.workload
        asked = "f16" if w.kv_dtype_k == "auto" else kv_type(w.kv_dtype_k).name
        used = self.cache_type(plan)
        warnings = []
        if asked != used:
            why = (
                "Ollama supports only f16, q8_0 and q4_0"
                if asked not in OLLAMA_KV_TYPES
                else "a quantized cache needs OLLAMA_FLASH_ATTENTION"
            )
            warnings.append(f"OLLAMA_KV_CACHE_TYPE={asked} falls back to f16: {why} (ollama llm/server.go)")
        if self.layout(plan).n_recurrent and w.batch > 1:
            warnings.append(
                "Ollama runs hybrid recurrent models with num_parallel 1 (server/sched.go); batch > 1 will not be used"
            )
        return warnings + super().validate(plan)

    def margin(self, plan: Plan, s: Settings) -> int:
        reserve = METAL_MINIMUM_MEMORY if plan.gpu.vendor == "apple" else MINIMUM_MEMORY
        return reserve + (plan.engine.fit_margin_bytes or 0)

    def _fixed(self, plan: Plan) -> FixedCosts:
        costs = super()._fixed(plan)
        reserve = METAL_MINIMUM_MEMORY if plan.gpu.vendor == "apple" else MINIMUM_MEMORY
        costs.rules = [r for r in costs.rules if r.id != "llamacpp.fit_margin"]
        costs.rules.append(
            Rule(
                id="ollama.reserve",
                title=f"Ollama sets aside {reserve / MIB:.0f} MiB per GPU"
                + (f" + OLLAMA_GPU_OVERHEAD {plan.engine.overhead_bytes:,} B" if plan.engine.overhead_bytes else ""),
                detail="DeviceInfo.MinimumMemory (457 MiB, Metal 512 MiB) + OLLAMA_GPU_OVERHEAD, per GPU",
                source="ollama ml/device.go MinimumMemory; server/sched.go; envconfig/config.go OLLAMA_GPU_OVERHEAD",
            )
        )
        return costs

    def _cache_rules(self, plan: Plan) -> list[Rule]:
        w = plan.workload
        return [
            Rule(
                id="ollama.context",
                title=f"num_ctx {w.context:,} × num_parallel {w.batch} → llama.cpp -c {w.context * w.batch:,} "
                f"-np {w.batch}",
                detail=f"OLLAMA_KV_CACHE_TYPE={self.cache_type(plan)} for K and V",
                source="ollama llm/llama_server.go (-c NumCtx*numParallel -np numParallel)",
            ),
            *super()._cache_rules(plan),
        ]
