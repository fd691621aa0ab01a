"""llama.cpp cache-sizing rules by build: cell padding, streams, SWA cells, MLA layout.

Every rule below was read in llama.cpp's own source at several builds (the vendored copies in
ollama/ollama ``llama/llama.cpp/src`` at llama.cpp b6646, b6840, b7108 and a5bb8ba4, plus PR threads
in ggml-org/llama.cpp). Build numbers marked "≈" are bracketed by dated releases, not exact tags.

``-c`` is the total context shared by ``-np`` sequences; kvdesk's ``--ctx`` is ONE sequence, so
``n_ctx = ctx × batch`` and ``n_seq_max = batch``.

Cells of the (non-SWA) cache, per stream × streams:
  build        unified              one cache per sequence (default with an explicit -np)
  < b6050      PAD(n_ctx, pad)      (streams stayed off: forced unified)
  < b6890      PAD(n_ctx, pad)      PAD(ceil(n_ctx / n_seq), pad) × n_seq     pad = FA ? 256 : 32
  < b6970      n_ctx                floor(n_ctx / n_seq) × n_seq               (no padding)
  current      PAD(n_ctx, 256)      PAD(PAD(n_ctx, 256) / n_seq, 256) × n_seq
SWA cells: PAD(min(size_base, n_swa × (unified ? n_seq : 1) + n_ubatch), 256) now; earlier builds
min(size_base, PAD(…, pad)); ``--swa-full`` = size_base. ``-fa auto`` (default) counts as on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kvdesk.core.dtypes import KvType
from kvdesk.core.errors import InputError

IntArray = npt.NDArray[np.int64]

# -- build boundaries ---------------------------------------------------------------------------
# llama.cpp#4280 (2023-12): n_ctx padded to 32.  llama.cpp#5021 (FA, 2024-04-30 ≈ b2776): padded
# to 256.  llama.cpp#7257 (2024-05-13 ≈ b2865): "less KV padding when FA is off" ->
# llama_kv_cache_get_padding() = flash_attn ? 256 : 32 (src/llama-kv-cache.cpp get_padding, b6646).
B_PAD256_ALWAYS = 2776
B_PAD_FA_ONLY = 2865
# llama.cpp#12801 (2025-04-15 ≈ b5140): DeepSeek MLA caches the latent (kv_lora_rank + rope) as K
# with n_head_kv = 1 and kv_lora_rank as V.
B_MLA_LATENT = 5140
# llama.cpp#13194 (2025-05-20 ≈ b5450): llama_kv_cache_unified_iswa, SWA cache
# min(size_base, PAD(n_swa*n_seq_max + n_batch, n_pad)); llama.cpp#13833 (2025-05-31 ≈ b5560):
# n_ubatch instead of n_batch.
B_ISWA = 5450
B_SWA_UBATCH = 5560
# llama.cpp#14363 (2025-07-16, b5913) added per-sequence streams, but they stayed off until
# ggml_set_rows became the default (llama-context.cpp "non-unified KV cache requires
# ggml_set_rows() - forcing unified KV cache"; supports_set_rows = true by 2025-08, e54d41be).
B_STREAMS = 6050
# llama.cpp#15434 (2025-08-30, ≤ b6327: mybigday/llama.node "sync llama.cpp to b6327 - introduce
# flash_attn_type (auto|on|off)"): flash_attn_type defaults to AUTO; the cache is built with
# cparams.flash_attn = (type != DISABLED) (llama-context.cpp), so auto pads and lays V out as FA.
B_FA_AUTO = 6320
# [TAG_V_CACHE_VARIABLE] (present in b6646): without FA the V rows are padded to
# n_embd_v_gqa_max() over all layers (llama-kv-cache.cpp constructor).
B_V_MAX = 6600
# llama.cpp#16812 (2025-10-30 ≈ b6890): "memory : remove KV cache size padding" (n_pad = 1).
# llama.cpp#17046 (2025-11-07 ≈ b6970): n_ctx = PAD(n_ctx, 256) in llama_context, n_ctx_seq =
# PAD(n_ctx / n_seq_max, 256) when not unified; SWA cells PAD(min(size_base, ...), 256).
B_NO_PAD = 6890
B_PAD256_CTX = 6970
# llama.cpp#19067 (2026-01-24 ≈ b7820): "kv-cache : support V-less cache" - MLA stores no V.
B_MLA_NO_V = 7820
# llama.cpp#19559 (2026-02-12 ≈ b7990): "memory : fix kv cache size for hybrid models" - before
# it the attention part of hybrid models got n_ctx (total) cells per stream, -np times too many.
B_HYBRID_FIX = 7990
# common/arg.cpp --fit (default on, 1024 MiB target per device) appeared between b7450 and b7550.
B_FIT = 7500
# llama.cpp#22673 "llama + spec: MTP Support" (merged 2026-05-15; release b9180 has it, 2026-05-17):
# llama_memory_recurrent widens its r/s tensors to n_rows = mem_size * (1 + n_rs_seq) rollback
# snapshot planes (src/llama-memory-recurrent.cpp constructor). cparams.n_rs_seq =
# params.speculative.need_n_rs_seq() (common/common.cpp) = draft.n_max (--spec-draft-n-max) when
# --spec-type is draft-mtp / draft-eagle3 / draft-dflash, else 0; llama_context clamps it to 0 for
# architectures not in llm_arch_supports_rs_rollback (qwen35, qwen35moe, later qwen4exp …).
B_RS_SEQ = 9180
# llama.cpp#23346 "Support for DeepseekV32ForCausalLM with generic DeepSeek Sparse Attention" (merged
# 2026-05-28/29, ≈ b9330 from b9180 on 2026-05-17 and b9222 on 2026-05-20): llama_kv_cache_dsa
# (src/llama-kv-cache-dsa.cpp) builds a second, K-only llama_kv_cache for the lightning indexer:
# one key head of indexer_head_size per token, -ctk type, the main cache's cells. GLM-DSA models ran
# dense MLA without it until GLM_DSA joined that branch of create_memory (filter_lid keeps the layers
# with hparams.is_indexer_full(il)); current builds have it (GLM-5.2 log in kv_logs.json).
B_DSA_INDEXER = 9330

CURRENT_BUILD = 1 << 30  # "no version given" = current behaviour

_BUILD_RE = re.compile(r"^\s*b?(\d{3,6})\b", re.IGNORECASE)


@dataclass(frozen=True)
class Build:
    """A llama.cpp build: its number (CURRENT_BUILD when unknown) and whether it is ik_llama.cpp."""

    number: int = CURRENT_BUILD
    ik: bool = False

    @property
    def label(self) -> str:
        base = "ik_llama.cpp" if self.ik else "llama.cpp"
        return base if self.number == CURRENT_BUILD else f"{base} b{self.number}"


def parse_build(version: str | None) -> Build:
    """'b6209', '6209', 'b6209 (fb22dd07)', 'ik_llama.cpp …', None/'' -> a Build."""
    if version is None or not version.strip():
        return Build()
    text = version.strip()
    ik = text.lower().startswith(("ik", "ik_llama"))
    if ik:
        rest = text.lower().split(None, 1)
        match = _BUILD_RE.match(rest[1]) if len(rest) > 1 else None
        return Build(int(match.group(1)) if match else CURRENT_BUILD, ik=True)
    match = _BUILD_RE.match(text)
    if match is None:
        raise InputError(
            f"engine version '{version}' is not a llama.cpp build (use e.g. b6209, or ik_llama)",
            field="engine_version",
        )
    return Build(int(match.group(1)))


def pad(x: npt.ArrayLike, n: int) -> IntArray:
    """GGML_PAD(x, n): round x up to a multiple of n."""
    a = x if isinstance(x, np.ndarray) else np.asarray(x, dtype=np.int64)
    if n <= 1:
        return a
    if n & (n - 1) == 0:  # 32, 256: the same value with a mask, one numpy call fewer (GGML_PAD does this)
        return (a + (n - 1)) & -n
    return ((a + (n - 1)) // n) * n


def ctx_padding(build: Build, flash_attn: bool) -> int:
    """Cell padding of the KV cache size (1 = none)."""
    b = build.number
    if build.ik:
        return 256 if flash_attn else 32  # ik_llama keeps llama_kv_cache_get_padding()
    if b >= B_PAD256_CTX:
        return 256
    if b >= B_NO_PAD:
        return 1
    if b >= B_PAD_FA_ONLY:
        return 256 if flash_attn else 32
    if b >= B_PAD256_ALWAYS:
        return 256
    return 32


@dataclass(frozen=True)
class Cells:
    """Cells per stream and stream count of the (non-SWA) KV cache, plus the total n_ctx."""

    per_stream: IntArray
    n_stream: IntArray
    n_ctx: IntArray


def kv_cells(build: Build, flash_attn: bool, unified: bool, ctx: IntArray, batch: IntArray) -> Cells:
    """Cells of the standard KV cache for ``-c ctx*batch -np batch``.

    - current (llama-context.cpp, b7108+): n_ctx = PAD(n_ctx, 256); unified: one stream of n_ctx
      cells; else n_ctx_seq = PAD(n_ctx / n_seq_max, 256) cells in each of n_seq_max streams.
    - b6890..b6970: the same without any padding.
    - b6050..b6890 (llama-model.cpp create_memory, b6646): n_ctx_per_stream =
      PAD(ceil(n_ctx / n_seq), pad) when not unified, PAD(n_ctx, pad) when unified.
    - older builds: one unified cache of PAD(n_ctx, pad) cells.
    """
    seqs = np.asarray(batch, dtype=np.int64)
    n_ctx = np.asarray(ctx, dtype=np.int64) * seqs
    p = ctx_padding(build, flash_attn)
    one = np.int64(1)
    if build.ik or build.number < B_STREAMS or unified:
        total = pad(n_ctx, p)
        return Cells(total, one, total)  # type: ignore[arg-type]
    if build.number >= B_NO_PAD:
        total = pad(n_ctx, p)
        per = pad(total // seqs, p)
        return Cells(per, seqs, per * seqs)
    per = pad((n_ctx + seqs - 1) // seqs, p)
    return Cells(per, seqs, per * seqs)


def hybrid_cells(build: Build, flash_attn: bool, unified: bool, ctx: IntArray, batch: IntArray) -> Cells:
    """Attention cells of hybrid (recurrent + attention) models.

    Before llama.cpp#19559 llama_memory_hybrid got ``cparams.n_ctx`` (the total) as kv_size for
    every stream (llama-model.cpp create_memory, a5bb8ba4): n_seq times the cells when not unified.
    """
    cells = kv_cells(build, flash_attn, unified, ctx, batch)
    if build.ik or build.number >= B_HYBRID_FIX or build.number < B_STREAMS:
        return cells
    if build.number < B_NO_PAD:
        # b6646: cparams.n_ctx = PAD(n_ctx, padding) then kv_size = n_ctx for each stream
        total = pad(np.asarray(ctx, dtype=np.int64) * np.asarray(batch, dtype=np.int64), ctx_padding(build, flash_attn))
        return Cells(total, cells.n_stream, total * cells.n_stream)
    return Cells(cells.n_ctx, cells.n_stream, cells.n_ctx * cells.n_stream)


def swa_cells(
    build: Build,
    flash_attn: bool,
    unified: bool,
    swa_full: bool,
    window: int,
    base: Cells,
    batch: IntArray,
    n_ubatch: int,
    n_batch: int,
) -> IntArray:
    """Cells per stream of the SWA (or chunked) cache of llama_kv_cache_iswa.

    current (llama-kv-cache-iswa.cpp, b7108+): PAD(min(size_base, n_swa*(unified ? n_seq : 1) +
    n_ubatch), 256); b6050..b6890: min(size_base, PAD(n_swa*(unified ? n_seq : 1) + n_ubatch, pad));
    b6890..b6970: no padding; before llama.cpp#13194 SWA layers used the full cache. ``--swa-full``
    gives SWA layers the full size.
    """
    size_base = base.per_stream
    if swa_full or (not build.ik and build.number < B_ISWA):
        return size_base
    seqs = np.asarray(batch, dtype=np.int64)
    streams_unified = build.ik or build.number < B_STREAMS or unified
    mult = seqs if streams_unified else np.ones_like(seqs)
    extra = n_ubatch if (build.ik or build.number >= B_SWA_UBATCH) else n_batch
    want = window * mult + extra
    if not build.ik and build.number >= B_PAD256_CTX:
        return pad(np.minimum(size_base, want), 256)
    p = ctx_padding(build, flash_attn)
    return np.minimum(size_base, pad(want, p))


# llama-model.cpp load_hparams sets swa_type only for the architectures that implement it (gemma2/3/3n,
# cohere2, olmo2, exaone4, openai_moe, llama4 (chunked), smallthinker, mimo2, …). These read no
# sliding window although their HF config.json may carry one: Mistral / Mixtral load as LLM_ARCH_LLAMA,
# Qwen2 as LLM_ARCH_QWEN2, and PHI3 resets it ("Phi SWA is currently disabled", llama.cpp#13676).
_NO_SWA_GGUF = {"llama", "qwen2", "qwen2moe", "phi3", "starcoder2"}
_NO_SWA_HF = ("llamafor", "mistralfor", "mixtralfor", "qwen2for", "qwen2moefor", "phi3for", "starcoder2for")


def ignores_sliding_window(architecture: str) -> bool:
    """True when llama.cpp sizes this architecture's sliding layers like full ones."""
    arch = architecture.strip().lower()
    return arch in _NO_SWA_GGUF or arch.startswith(_NO_SWA_HF)


def rs_planes(build: Build, rs_seq: int) -> int:
    """Copies of the recurrent state per sequence: 1 + n_rs_seq from llama.cpp#22673 on, 1 before
    (and in ik_llama.cpp, which has no n_rs_seq)."""
    if build.ik or build.number < B_RS_SEQ:
        return 1
    return 1 + max(0, rs_seq)


def flash_attn_for_cache(build: Build, flash_attn: bool | None) -> bool:
    """Whether the cache is laid out for flash attention: ``-fa auto`` counts as on (b6320+);
    ik_llama.cpp turned flash attention on by default in ik_llama.cpp#863 (2025-10-25)."""
    if flash_attn is not None:
        return flash_attn
    return build.ik or build.number >= B_FA_AUTO


@dataclass(frozen=True, eq=False)  # one object per distinct setting (settings() memo): hash by identity
class Settings:
    """Everything about a plan that changes the cache layout, resolved once per call."""

    build: Build
    flash_attn: bool  # as the cache sees it (-fa auto counts as on)
    unified: bool
    swa_full: bool
    n_ubatch: int
    n_batch: int
    tk: KvType
    tv: KvType
    rs_planes: int = 1  # 1 + n_rs_seq recurrent-state copies per sequence (rs_planes())
