"""Ollama profile: llama.cpp's cache rules with Ollama's own settings and per-GPU reserve.

Sources (ollama/ollama):
- llm/llama_server.go (v0.30+, llama-server runner): ``-c NumCtx*numParallel -np numParallel``,
  ``--cache-type-k/-v $OLLAMA_KV_CACHE_TYPE`` passed through, ``--flash-attn auto`` unless
  OLLAMA_FLASH_ATTENTION is set; the llama.cpp build is the tag in LLAMA_CPP_VERSION.
- v0.5.8 … v0.24 (CGO llama runner): llm/server.go ``KvSize: opts.NumCtx * numParallel``;
  llama/llama.go NewContextParams sets n_ctx, n_seq_max, flash_attn, type_k/v and leaves the
  library defaults (llama.h: swa_full = true, kv_unified = false); a quantized
  OLLAMA_KV_CACHE_TYPE needs OLLAMA_FLASH_ATTENTION, otherwise f16, and only f16, q8_0, q4_0
  are accepted (llm/server.go, fs/ggml/ggml.go SupportsKVCacheType). The vendored llama.cpp is
  the FETCH_HEAD of Makefile.sync at each tag.
- ml/device.go DeviceInfo.MinimumMemory: 457 MiB per GPU (512 MiB on Metal), plus envconfig
  OLLAMA_GPU_OVERHEAD (default 0) per GPU (server/sched.go).
- server/sched.go: hybrid families (qwen35, qwen3next, lfm2, nemotron_h …) run with numParallel 1.
Models that Ollama < 0.30 ran on its Go engine (ollamarunner, kvcache/causal.go) are sized here
with the llama runner's rules.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from kvdesk.core.breakdown import Rule
from kvdesk.core.dtypes import KvType, kv_type
from kvdesk.core.engines.base import FixedCosts
from kvdesk.core.engines.llamacpp import MIB, LlamaCppEngine, Settings
from kvdesk.core.engines.llamacpp_layout import Layout
from kvdesk.core.engines.llamacpp_rules import pad, parse_build
from kvdesk.core.engines.memo import AnchoredMemo
from kvdesk.core.errors import InputError
from kvdesk.core.plan import Plan

LEGACY_KV_TYPES = ("f16", "q8_0", "q4_0")
MINIMUM_MEMORY = 457 * MIB  # ml/device.go MinimumMemory (CUDA, ROCm, Vulkan)
METAL_MINIMUM_MEMORY = 512 * MIB  # ml/device.go / discover/gpu_darwin.go metalMinimumMemory
LLAMA_SERVER_RELEASE = (0, 30, 0)  # runner: Remove CGO engines, use llama-server (#16031), first in v0.30.0

# Ollama release -> vendored llama.cpp build (Makefile.sync FETCH_HEAD / LLAMA_CPP_VERSION per tag);
# "≈" builds are bracketed by dated releases: 46e3556e ≈ b4590, d7cfe1ff ≈ b4780, 71e90e88 ≈ b5130,
# 2016f07b ≈ b5170, e1e8e099 ≈ b5250, de4c07f9 ≈ b5350, e54d41be ≈ b6150, 364a7a6d = b6646,
# 7049736b ≈ b6740, 3cfa9c3f = b6840, 7f8ef50c = b7108, 17f7f4ba ≈ b7350, ec98e2002 ≈ b7460.
OLLAMA_LLAMA_BUILDS: tuple[tuple[tuple[int, int, int], int], ...] = (
    ((0, 5, 8), 4590),
    ((0, 5, 13), 4780),
    ((0, 6, 6), 5130),
    ((0, 6, 7), 5170),
    ((0, 6, 8), 5250),
    ((0, 7, 0), 5350),
    ((0, 11, 5), 6150),
    ((0, 12, 4), 6646),
    ((0, 12, 6), 6740),
    ((0, 12, 11), 6840),
    ((0, 13, 2), 7108),
    ((0, 13, 3), 7350),
    ((0, 13, 5), 7460),
    ((0, 30, 0), 9452),
    ((0, 31, 0), 9840),
    ((0, 32, 0), 9888),
)

_OLLAMA_VERSION = re.compile(r"^\s*v?(\d+)\.(\d+)(?:\.(\d+))?")


def ollama_release(version: str | None) -> tuple[int, int, int] | None:
    match = _OLLAMA_VERSION.match(version or "")
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def llama_build_for(version: str | None) -> str | None:
    """The llama.cpp build an Ollama release runs ('0.12.3' -> 'b6150'); 'bNNNN' passes through."""
    if version is None or not version.strip():
        return None
    release = ollama_release(version)
    if release is None:
        try:
            parse_build(version)  # a llama.cpp build ('b7108') is accepted too
        except InputError:
            raise InputError(
                f"engine version '{version}' is not an Ollama release (e.g. 0.12.3) or a llama.cpp build (b7108)",
                field="engine_version",
            ) from None
        return version
    builds = [b for v, b in OLLAMA_LLAMA_BUILDS if v <= release]
    if not builds or release >= (0, 32, 15):
        return None if builds else "b4000"  # newest releases: current llama.cpp; pre-2025: old rules
    return f"b{builds[-1]}"


# fs/ggml/ggml.go OllamaEngineRequired (v0.12.x): these GGUF architectures ran on Ollama's Go engine
# before v0.30, whatever OLLAMA_NEW_ENGINE said; HF class names map to the same models.
GO_ENGINE_ARCHS = {
    "gemma3",
    "gemma3n",
    "mistral3",
    "qwen3",
    "qwen3moe",
    "llama4",
    "mllama",
    "qwen25vl",
    "gptoss",
    "gpt-oss",
}
GO_ENGINE_HF = (
    "gemma3for",
    "gemma3nfor",
    "mistral3for",
    "qwen3for",
    "qwen3moefor",
    "llama4for",
    "mllamafor",
    "qwen2_5_vlfor",
    "gptossfor",
)
GPT_OSS_SWA_MEMORY = 4096  # model/models/gptoss/model.go: kvcache.NewSWAMemCache(sliding_window, 4096, …)


def go_engine_arch(architecture: str) -> bool:
    arch = architecture.strip().lower()
    return arch in GO_ENGINE_ARCHS or arch.startswith(GO_ENGINE_HF)


def go_engine_cells(
    ctx: npt.ArrayLike, batch: npt.ArrayLike, lay: Layout, flash_attn: bool, n_batch: int
) -> dict[str, npt.NDArray[np.int64]]:
    """kvcache/causal.go Causal.Init: one buffer for all slots.

    full: roundUp(maxSequences × capacity, CachePadding); SWA: roundUp(maxSequences × swaMemory +
    maxBatch, CachePadding), or the full size when swaMemory > capacity. CachePadding is 256 with
    flash attention and 32 without (ml/backend/ggml/ggml.go CacheConfig); capacity = num_ctx.
    """
    c = np.asarray(ctx, dtype=np.int64)
    b = np.asarray(batch, dtype=np.int64)
    p = 256 if flash_attn else 32
    full = pad(b * c, p)
    out: dict[str, Any] = {"base": full, "streams": np.int64(1), "n_ctx": b * c}
    for w in lay.windows:
        if w:
            memory = lay.swa_memory or w
            out[f"swa{w}"] = np.where(memory > c, full, pad(b * memory + n_batch, p))
    return out


def legacy_runner(version: str | None) -> bool:
    """True for Ollama releases before v0.30 (CGO llama runner with llama.h defaults)."""
    release = ollama_release(version)
    return release is not None and release < LLAMA_SERVER_RELEASE



def _go_engine_layout(lay: Layout, architecture: str) -> Layout:
    """``lay`` marked for Ollama's Go engine (gpt-oss keeps its fixed SWA memory there)."""
    gpt_oss = "gpt" in architecture.lower()
    return replace(lay, go_engine=True, swa_memory=GPT_OSS_SWA_MEMORY if gpt_oss else 0)

class OllamaEngine(LlamaCppEngine):
    name = "ollama"
    label = "Ollama"

    def __init__(self) -> None:
        super().__init__()
        self._go_layouts: AnchoredMemo[Layout] = AnchoredMemo(64)

    def _resolve(self, plan: Plan) -> Settings:
        changes: dict[str, object] = {"version": llama_build_for(plan.engine.version)}
        if legacy_runner(plan.engine.version):
            changes["swa_full"] = True  # llama.h llama_context_default_params: swa_full = true
        s = super()._resolve(plan.with_engine(**changes))
        tk, tv = self.kv_types(plan)  # from the Ollama version, not the llama.cpp build it maps to
        return replace(s, tk=tk, tv=tv)

    def layout(self, plan: Plan, s: Settings | None = None) -> Layout:
        """The llama.cpp layout, marked for Ollama's Go engine where Ollama < 0.30 used it."""
        lay = super().layout(plan, s)
        if not (legacy_runner(plan.engine.version) and go_engine_arch(plan.model.architecture)):
            return lay
        return self._go_layouts.get(id(lay), lay, _go_engine_layout, lay, plan.model.architecture)

    def _cells_for(
        self, s: Settings, lay: Layout, ctx: npt.ArrayLike, batch: npt.ArrayLike
    ) -> dict[str, npt.NDArray[np.int64]]:
        if lay.go_engine:
            return go_engine_cells(ctx, batch, lay, s.flash_attn, s.n_ubatch)
        return super()._cells_for(s, lay, ctx, batch)

    def kv_types(self, plan: Plan) -> tuple[KvType, KvType]:
        t = self.cache_type(plan)
        return kv_type(t), kv_type(t)

    def cache_type(self, plan: Plan) -> str:
        """OLLAMA_KV_CACHE_TYPE as Ollama applies it: one type for K and V."""
        w = plan.workload
        k = "f16" if w.kv_dtype_k == "auto" else kv_type(w.kv_dtype_k).name
        v = "f16" if w.kv_dtype_v == "auto" else kv_type(w.kv_dtype_v).name
        if k != v:
            raise InputError(
                f"kv_dtype: Ollama sets one OLLAMA_KV_CACHE_TYPE for K and V (got K {k}, V {v})", field="kv_dtype"
            )
        if not legacy_runner(plan.engine.version):
            if k.startswith("fp8"):  # llama-server's --cache-type-k has no fp8 (common/arg.cpp kv_cache_types)
                msg = f"kv_dtype: Ollama (llama.cpp) has no {k} cache type (use f16, q8_0, q4_0)"
                raise InputError(msg, "kv_dtype")
            return k  # v0.30+: passed to llama-server as --cache-type-k/-v
        if k not in LEGACY_KV_TYPES:
            return "f16"  # llm/server.go: "unsupported OLLAMA_KV_CACHE_TYPE" -> default f16
        if k != "f16" and plan.engine.flash_attn is not True:
            return "f16"  # llm/server.go: a quantized cache needs OLLAMA_FLASH_ATTENTION, else f16
        return k

    def validate(self, plan: Plan) -> list[str]:
        w = plan.workload
        asked = "f16" if w.kv_dtype_k == "auto" else kv_type(w.kv_dtype_k).name
        used = self.cache_type(plan)
        warnings = []
        if asked != used:
            why = (
                "Ollama before 0.30 supports only f16, q8_0 and q4_0"
                if asked not in LEGACY_KV_TYPES
                else "a quantized cache needs OLLAMA_FLASH_ATTENTION=1"
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
        runner = (
            "CGO llama runner, llama.h defaults (swa_full on)" if legacy_runner(plan.engine.version) else "llama-server"
        )
        return [
            Rule(
                id="ollama.context",
                title=f"num_ctx {w.context:,} × num_parallel {w.batch} → llama.cpp -c {w.context * w.batch:,} "
                f"-np {w.batch}",
                detail=f"OLLAMA_KV_CACHE_TYPE={self.cache_type(plan)} for K and V; {runner}",
                source="ollama llm/llama_server.go (-c NumCtx*numParallel); llm/server.go KvSize (< 0.30)",
            ),
            *super()._cache_rules(plan),
        ]
