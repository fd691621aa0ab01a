"""Explain-panel rules and the formula line of the llama.cpp profile (each cites its source)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from kvdesk.core.breakdown import Rule, cached_rule
from kvdesk.core.engines.llamacpp_layout import Layout
from kvdesk.core.engines.llamacpp_rules import Settings
from kvdesk.core.plan import Plan

MIB = 1 << 20
Cells = dict[str, npt.NDArray[np.int64]]


def fixed_rules(counts: npt.NDArray[np.int64], compute: list[int], margin: int) -> list[Rule]:
    """Rules of the per-device fixed costs: layer split, compute buffer estimate, --fit margin."""
    n = len(counts)
    rules = [
        Rule(
            id="llamacpp.layers",
            title=f"Layers split over {n} device(s): {', '.join(str(int(c)) for c in counts)} (incl. output layer)",
            detail="llama-model.cpp load_tensors: upper_bound of cumulative splits at il/(n_layer+1); "
            "weights and KV of a layer live on its device",
            source="llama.cpp src/llama-model.cpp load_tensors; RPC log 656/624 MiB = 41/39 layers",
        ),
        Rule(
            id="llamacpp.compute",
            title=f"Compute buffer ≈ {max(compute) / MIB:.0f} MiB per device (estimate)",
            detail="max(logits n_vocab×n_ubatch×4 on the output device, KQ n_head×n_kv×n_ubatch×4 without FA) "
            "+ 2×n_embd×n_ubatch×4. On 8 real logs: exact for gemma-2-2b, Qwen3-235B (ub 4096), DeepSeek-V2-Lite; "
            "-12 % to +2 % for the others; 2026 llama-server builds that reserve fewer outputs use less",
            source="tests/data/llamacpp/compute_buffers.json; tests/data/validation/engine_memory.json",
        ),
    ]
    if margin:
        rules.append(
            Rule(
                id="llamacpp.fit_margin",
                title=f"--fit keeps {margin / MIB:.0f} MiB free per device",
                detail="common_params fit_params_target default 1024 MiB per device (set engine.fit_margin_bytes)",
                source="llama.cpp common/common.h fit_params_target; tools/server README --fit-target",
            )
        )
    return rules


def cache_rules(plan: Plan, s: Settings, lay: Layout, cells: Cells) -> list[Rule]:
    """The explain-panel rules of the cache, with their llama.cpp sources."""
    w = plan.workload
    base = int(cells["base"].reshape(-1)[0])
    streams = int(cells["streams"].reshape(-1)[0])
    src = "llama.cpp src/llama-context.cpp, src/llama-kv-cache.cpp"
    rules = [
        cached_rule(
            id="llamacpp.cells",
            title=f"{base:,} cells × {streams} stream(s) ({s.build.label}, -c {w.context * w.batch} -np {w.batch}, "
            f"{'unified' if s.unified else 'one cache per sequence'})",
            detail="n_ctx padded to 256 (current); per-sequence caches pad n_ctx/n_seq to 256; older builds pad to "
            "256 with flash attention and 32 without",
            source=src,
        ),
        cached_rule(
            id="llamacpp.rows",
            title=f"K {s.tk.name}, V {s.tv.name}: bytes per cell = ggml_row_size(type, n_head_kv × head_dim)",
            detail="per layer; q8_0 34 B / 32 values, q4_0 18/32, q4_1 20/32, q5_0 22/32, q5_1 24/32, "
            "iq4_nl 18/32, f16 2, f32 4",
            source="ggml/src/ggml.c type_traits; llama-kv-cache.cpp "
            "ggml_new_tensor_3d(type, n_embd, kv_size, n_stream)",
        ),
    ]
    for g in lay.groups:
        if g.window:
            n = int(cells[f"swa{g.window}"].reshape(-1)[0])
            rules.append(
                cached_rule(
                    id="llamacpp.swa",
                    title=f"{g.n_layers} sliding layers (window {g.window}): {n:,} cells"
                    + (" (--swa-full)" if s.swa_full else ""),
                    detail="PAD(min(size_base, n_swa × (unified ? n_seq : 1) + n_ubatch), 256)",
                    source="llama.cpp src/llama-kv-cache-iswa.cpp llama_kv_cache_iswa",
                )
            )
    if "sliding" in plan.model.kinds() and not lay.has_swa:
        rules.append(
            cached_rule(
                id="llamacpp.no_swa",
                title=f"llama.cpp ignores the sliding window of {plan.model.architecture}: full cache in all layers",
                detail="load_hparams sets no swa_type for this architecture (Phi-3: llama.cpp#13676)",
                source="llama.cpp src/llama-model.cpp load_hparams",
            )
        )
    if "mla" in plan.model.kinds():
        rules.append(
            cached_rule(
                id="llamacpp.mla",
                title="MLA layers cache the latent kv_lora_rank + rope as K"
                + ("; no V cache" if not any(g.v_row for g in lay.groups) else ""),
                detail="llama.cpp#12801 latent K + kv_lora_rank V; llama.cpp#19067 drops V; ik_llama c^KV only",
                source="llama.cpp src/llama-kv-cache.cpp (has_v = !is_mla); ik_llama.cpp#596 log",
            )
        )
    idx_layers = sum(g.idx_layers for g in lay.groups)
    if idx_layers:
        rules.append(
            cached_rule(
                id="llamacpp.dsa_indexer",
                title=f"DSA lightning-indexer cache: {idx_layers} layers × one key per cell, "
                f"{sum(g.idx_row for g in lay.groups):,} B per cell",
                detail="a second K-only cache with the main cache's cells, in the -ctk type (counted in K)",
                source="llama.cpp src/llama-kv-cache-dsa.cpp (llama.cpp#23346); src/llama-model.cpp create_memory",
            )
        )
    if lay.n_recurrent:
        rules.append(
            cached_rule(
                id="llamacpp.recurrent",
                title=f"{lay.n_recurrent} recurrent layers: f32 r/s state × max(1, n_seq) "
                f"= {max(1, w.batch)} sequence(s)"
                + (f" × (1 + n_rs_seq) = {lay.rs_planes} rollback planes" if lay.rs_planes > 1 else ""),
                detail="not per token: one state per sequence"
                + ("; speculative drafts (MTP/EAGLE3/DFlash) keep n_rs_seq snapshots" if lay.rs_planes > 1 else ""),
                source="llama.cpp src/llama-memory-recurrent.cpp (n_rows = mem_size * (1 + n_rs_seq), "
                "llama.cpp#22673); src/llama-model.cpp create_memory",
            )
        )
    return rules


def formula(lay: Layout, cells: Cells) -> str:
    """cells × streams × (K + V bytes per cell) per cache, as llama.cpp sizes it."""
    streams = int(cells["streams"].reshape(-1)[0])
    parts = []
    for g in lay.groups:
        n = int(cells[f"swa{g.window}" if g.window else "base"].reshape(-1)[0])
        parts.append(f"{n:,} cells × {streams} × ({g.k_row:,} + {g.v_row:,}) B [{g.n_layers} layers]")
    return " + ".join(parts)
