"""VerdictBanner: "Fits — 6.2 GiB headroom" / "Tight — under 5 %" / "Spills 3.1 GiB to system RAM — …".

Below the verdict: the largest context at this concurrency and the most sequences at this context,
and any error or warning the last recompute produced.
"""

from __future__ import annotations

from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

from kvdesk.core.breakdown import Breakdown
from kvdesk.core.units import GIB
from kvdesk.core.verdict import VerdictKind
from kvdesk.core.verdict import verdict as core_verdict
from kvdesk.gui.plan_model import PlanModel
from kvdesk.gui.theme import theme_manager

State = VerdictKind


def _gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"


def verdict(bd: Breakdown) -> tuple[State, str]:
    """The banner's state and headline: the core's verdict (kvdesk.core.verdict) in one-decimal GiB."""
    v = core_verdict(bd, size=_gib)
    return v.kind, v.headline


def limits_line(bd: Breakdown, context: int, batch: int) -> str:
    seqs = "sequence" if batch == 1 else "sequences"
    ctx = f"{bd.max_context:,} tokens" if bd.max_context > 0 else "none fits"
    conc = f"{bd.max_batch:,} sequence{'s' if bd.max_batch != 1 else ''}" if bd.max_batch > 0 else "none fits"
    return f"Max context at {batch:,} {seqs}: {ctx}   ·   Max concurrency at {context:,} tokens: {conc}"


class VerdictBanner(QFrame):
    def __init__(self, model: PlanModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("VerdictBanner")
        self.model = model
        self.headline = QLabel()
        self.headline.setObjectName("VerdictHeadline")
        font = self.headline.font()
        font.setPointSizeF(font.pointSizeF() * 1.35)
        font.setBold(True)
        self.headline.setFont(font)
        self.limits = QLabel()
        self.limits.setObjectName("VerdictLimits")
        self.limits.setWordWrap(True)
        self.headline.setWordWrap(True)
        self.message = QLabel()
        self.message.setObjectName("VerdictMessage")
        self.message.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.setSpacing(2)
        for w in (self.headline, self.limits, self.message):
            layout.addWidget(w)
        self.setToolTip(
            "Fits: everything stays in GPU memory. Tight: less than 5 % of the budget left — real "
            "engines may still run out. Spills: the rest goes to system RAM, which is far slower. "
            "Does not fit: the engine would refuse to start (vLLM does not spill)."
        )
        self.state: State = "fits"
        self._style = ""
        model.changed.connect(self.refresh)
        model.error_changed.connect(self.refresh)
        theme_manager().changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        bd = self.model.breakdown
        w = self.model.plan.workload
        self.state, text = verdict(bd)
        self.headline.setText(text)
        self.limits.setText(limits_line(bd, w.context, w.batch))
        notes = [f"⚠ {self.model.error}"] if self.model.error else []
        notes += [f"• {x}" for x in bd.warnings[:3]]
        self.message.setText("\n".join(notes))
        self.message.setVisible(bool(notes))
        colors = theme_manager().colors
        accents = {"fits": colors.fits, "tight": colors.tight, "spills": colors.spills, "no_fit": colors.spills}
        accent = accents[self.state]
        style = (
            f"#VerdictBanner {{ border-left: 6px solid {accent}; border-radius: 4px; "
            f"background: {colors.background}; }} #VerdictHeadline {{ color: {accent}; }}"
        )
        if style != self._style:
            self._style = style
            self.setStyleSheet(style)


if __name__ == "__main__":
    from kvdesk.gui.preview import preview

    preview(VerdictBanner)
