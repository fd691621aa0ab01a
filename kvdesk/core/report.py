"""Plain-text rendering of a Breakdown (the CLI's table, the app's 'Copy summary')."""

from __future__ import annotations

from kvdesk.core.breakdown import Breakdown
from kvdesk.core.plan import Plan
from kvdesk.core.units import format_bytes, format_tokens
from kvdesk.core.verdict import verdict


def verdict_line(bd: Breakdown) -> str:
    return verdict(bd).headline


def summary_text(plan: Plan, bd: Breakdown) -> str:
    w = plan.workload
    gpus = f"{plan.gpu_count}× {plan.gpu.name}" if plan.gpu_count > 1 else plan.gpu.name
    rows = [
        f"{plan.model.name} on {gpus} — engine {bd.engine}",
        f"context {format_tokens(w.context)} × {w.batch} sequence(s), KV {w.kv_dtype_k}/{w.kv_dtype_v}",
        "",
        f"  weights          {format_bytes(bd.weights_bytes):>14}",
        f"  KV cache         {format_bytes(bd.kv_cache_bytes):>14}   (K {format_bytes(bd.k_cache_bytes)}, "
        f"V {format_bytes(bd.v_cache_bytes)})",
    ]
    if bd.recurrent_state_bytes:
        rows.append(f"  recurrent state  {format_bytes(bd.recurrent_state_bytes):>14}")
    rows += [
        f"  overhead         {format_bytes(bd.overhead_bytes):>14}"
        f"   (compute buffers {format_bytes(bd.compute_bytes)})",
        f"  total            {format_bytes(bd.total_bytes):>14}",
        f"  budget           {format_bytes(bd.budget_bytes):>14}",
        "",
        verdict_line(bd),
        f"max context at batch {w.batch}: {bd.max_context:,} tokens; max batch at {w.context:,} tokens: {bd.max_batch}",
        f"KV per token: {format_bytes(bd.kv_bytes_per_token)}; decode ≈ {bd.decode_ms_per_token:.2f} ms/token",
    ]
    for key in ("kv_cells", "kv_cache_tokens", "num_gpu_blocks", "max_concurrency"):
        if key in bd.extra:
            rows.append(f"{key}: {bd.extra[key]}")
    if len(bd.per_device) > 1:
        rows.append("")
        for d in bd.per_device:
            rows.append(
                f"  {d.name:<12} weights {format_bytes(d.weights_bytes)}, KV {format_bytes(d.kv_cache_bytes)}, "
                f"overhead {format_bytes(d.overhead_bytes)} / {format_bytes(d.budget_bytes)}"
            )
    for warning in bd.warnings:
        rows.append(f"warning: {warning}")
    return "\n".join(rows)
