"""ExplainPanel: the formula with the plan's numbers substituted, and every rule the engine applied.

Refreshes only while visible (and when shown), so edits stay fast when another tab is up.
"""

from __future__ import annotations

from html import escape

from PySide6.QtWidgets import QTextBrowser, QVBoxLayout, QWidget

from kvdesk.core.breakdown import Breakdown
from kvdesk.core.plan import Plan
from kvdesk.core.units import format_bytes, format_tokens
from kvdesk.gui.plan_model import PlanModel
from kvdesk.gui.refresh_when_visible import RefreshWhenVisible


def explain_html(plan: Plan, bd: Breakdown, error: str = "") -> str:
    w = plan.workload
    rows = [
        ("Weights", bd.weights_bytes), ("K cache", bd.k_cache_bytes), ("V cache", bd.v_cache_bytes),
        ("Recurrent state", bd.recurrent_state_bytes), ("Compute buffers", bd.compute_bytes),
        ("Other overhead", bd.overhead_bytes - bd.compute_bytes), ("Total", bd.total_bytes),
        ("Budget", bd.budget_bytes),
    ]
    table = "".join(
        f"<tr><td>{escape(name)}</td><td align='right'>{format_bytes(value)}</td>"
        f"<td align='right'>{value:,} B</td></tr>"
        for name, value in rows if value or name in ("Total", "Budget", "Weights")
    )
    parts = [
        f"<h3>{escape(plan.model.name)} on {plan.gpu_count}× {escape(plan.gpu.name)} — engine {escape(bd.engine)}</h3>",
    ]
    if error:
        parts.append(f"<p><b>⚠ {escape(error)}</b></p>")
    parts += [
        "<h4>KV cache formula</h4>",
        f"<p><code>{escape(bd.formula) or 'n/a'}</code></p>",
        f"<p>KV per token of one sequence: <b>{format_bytes(bd.kv_bytes_per_token)}</b> "
        f"({bd.kv_bytes_per_token:,} B) · context {format_tokens(w.context)} × {w.batch} sequence(s) · "
        f"KV {escape(w.kv_dtype_k)}/{escape(w.kv_dtype_v)}</p>",
        f"<table cellspacing='0' cellpadding='3'>{table}</table>",
        f"<p>Decode ≈ {bd.decode_ms_per_token:.2f} ms/token (memory-bound: weights + live KV / bandwidth)"
        + (f", ~{bd.spill_slowdown:.1f}× slower from spilled bytes" if bd.spill_slowdown > 1.01 else "") + "</p>",
        "<h4>Rules applied</h4><ol>",
    ]
    for rule in bd.rules:
        detail = f"<br/>{escape(rule.detail)}" if rule.detail else ""
        source = f"<br/><small><i>source: {escape(rule.source)}</i></small>" if rule.source else ""
        parts.append(f"<li><b>{escape(rule.title)}</b>{detail}{source}</li>")
    parts.append("</ol>")
    if bd.extra:
        extra = "".join(f"<li>{escape(str(k))}: {escape(str(v))}</li>" for k, v in bd.extra.items())
        parts.append(f"<h4>Engine figures</h4><ul>{extra}</ul>")
    if bd.warnings:
        parts.append("<h4>Warnings</h4><ul>" + "".join(f"<li>{escape(x)}</li>" for x in bd.warnings) + "</ul>")
    return "\n".join(parts)


class ExplainPanel(RefreshWhenVisible):
    def __init__(self, model: PlanModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(False)
        self.text.setToolTip("How the numbers were computed: the formula with your plan's values, and the "
                             "engine rules applied, each with its source.")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.text)
        self._stale = True
        model.changed.connect(self._changed)
        model.error_changed.connect(self._changed)

    def refresh(self) -> None:
        self._stale = False
        self.text.setHtml(explain_html(self.model.plan, self.model.breakdown, self.model.error))


if __name__ == "__main__":
    from kvdesk.gui.preview import preview

    preview(ExplainPanel)
