"""Markdown and CSV reports of a plan's breakdown (``kvdesk export --to markdown|csv``)."""

from __future__ import annotations

import csv
import io

from kvdesk.core.breakdown import Breakdown, DeviceBreakdown
from kvdesk.core.plan import Plan
from kvdesk.core.report import verdict_line
from kvdesk.core.units import GIB, format_bytes, format_tokens

# (label, DeviceBreakdown / Breakdown attribute)
COMPONENTS: tuple[tuple[str, str], ...] = (
    ("Weights", "weights_bytes"),
    ("K cache", "k_cache_bytes"),
    ("V cache", "v_cache_bytes"),
    ("KV cache (K + V)", "kv_cache_bytes"),
    ("Recurrent state", "recurrent_state_bytes"),
    ("Compute buffers", "compute_bytes"),
    ("Overhead (incl. compute buffers)", "overhead_bytes"),
    ("Total", "total_bytes"),
    ("Budget", "budget_bytes"),
    ("Spill", "spill_bytes"),
)
CSV_COLUMNS = ("device", *(attr for _, attr in COMPONENTS))


def _cell(text: object) -> str:
    """A Markdown table cell: pipes escaped, line breaks flattened."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _params(n: int) -> str:
    return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.1f} M"


def _plan_rows(plan: Plan, bd: Breakdown) -> list[tuple[str, str]]:
    m, w, e = plan.model, plan.workload, plan.engine
    params = _params(m.params_total) + (f" ({_params(m.params_active)} active)" if m.is_moe and m.params_active else "")
    engine = e.name + (f" {e.version}" if e.version else "")
    if e.tp > 1 or e.pp > 1:
        engine += f" (TP {e.tp}, PP {e.pp})"
    return [
        ("Model", f"{m.name} — {params} parameters, {m.n_layers} layers"),
        ("Weights format", w.weights_format or m.dtype),
        ("GPU", f"{plan.gpu_count}× {plan.gpu.name} ({format_bytes(plan.gpu.memory_bytes)} each)"),
        ("Engine", engine),
        ("Context", f"{format_tokens(w.context)} tokens per sequence × {w.batch} sequence(s)"),
        ("KV cache dtype", f"K {w.kv_dtype_k}, V {w.kv_dtype_v}"),
    ]


def _gib(n: int) -> str:
    return f"{n / GIB:.2f}"


def markdown_report(plan: Plan, bd: Breakdown) -> str:
    out = [f"# {_cell(plan.model.name)} on {_cell(plan.gpu.name)}", "", "| Setting | Value |", "|---|---|"]
    out += [f"| {k} | {_cell(v)} |" for k, v in _plan_rows(plan, bd)]
    out += ["", "## Memory", "", "| Component | Bytes | GiB |", "|---|---:|---:|"]
    for label, attr in COMPONENTS:
        value = int(getattr(bd, attr))
        if value or attr in ("weights_bytes", "kv_cache_bytes", "total_bytes", "budget_bytes"):
            bold = "**" if attr == "total_bytes" else ""
            out.append(f"| {bold}{label}{bold} | {value:,} | {_gib(value)} |")
    out += [
        "",
        f"**{_cell(verdict_line(bd))}**",
        "",
        f"- Largest context at {plan.workload.batch} sequence(s): {bd.max_context:,} tokens",
        f"- Most sequences at {plan.workload.context:,} tokens: {bd.max_batch:,}",
        f"- KV cache per token: {bd.kv_bytes_per_token:,} bytes",
        f"- Decode ≈ {bd.decode_ms_per_token:.2f} ms/token",
    ]
    if len(bd.per_device) > 1:
        out += _device_table(bd.per_device)
    if bd.rules:
        out += ["", "## Rules applied", ""]
        for r in bd.rules:
            line = f"- **{_cell(r.title)}** (`{r.id}`)"
            if r.detail:
                line += f" — {_cell(r.detail)}"
            if r.source:
                line += f". Source: {_cell(r.source)}"
            out.append(line)
    if bd.warnings:
        out += ["", "## Warnings", ""] + [f"- {_cell(x)}" for x in bd.warnings]
    if plan.notes.strip():
        out += ["", "## Notes", ""] + ["> " + line for line in plan.notes.strip().splitlines()]
    return "\n".join(out) + "\n"


def _device_table(devices: list[DeviceBreakdown]) -> list[str]:
    out = ["", "## Per device", "", "| Device | Weights | KV cache | Recurrent | Overhead | Total | Budget |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for d in devices:
        cells = [d.weights_bytes, d.kv_cache_bytes, d.recurrent_state_bytes, d.overhead_bytes, d.total_bytes,
                 d.budget_bytes]
        out.append(f"| {_cell(d.name)} | " + " | ".join(format_bytes(c) for c in cells) + " |")
    return out


def _csv_text(value: str) -> str:
    """Defuse spreadsheet formulas in text cells (CSV injection): a leading = + - @ gets a quote mark."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def csv_report(plan: Plan, bd: Breakdown) -> str:
    """One row per device and an ``all`` row; integers in bytes."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for d in bd.per_device:
        writer.writerow([_csv_text(d.name), *(int(getattr(d, attr)) for _, attr in COMPONENTS)])
    writer.writerow(["all", *(int(getattr(bd, attr)) for _, attr in COMPONENTS)])
    return buf.getvalue()
