"""VerdictBanner: "Fits — 6.2 GiB headroom" / "Tight — under 5 %" / "Spills 3.1 GiB to system RAM — …".

Below the verdict: the largest context at this concurrency and the most sequences at this context,
and any error or warning the last recompute produced.
"""

from __future__ import annotations

from typing import Literal

from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

from kvdesk.core.breakdown import Breakdown
from kvdesk.core.units import GIB
from kvdesk.gui.plan_model import PlanModel
from kvdesk.gui.theme import theme_manager

State = Literal["fits", "tight", "spills"]
TIGHT_FRACTION = 0.05


def _gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"


def _slowdown(factor: float) -> str:
    return f"~{factor:.0f}×" if factor >= 2 else f"~{factor:.1f}×"


def verdict(bd: Breakdown) -> tuple[State, str]:
    """The banner's state and headline for a breakdown."""
    if not bd.fits:
        return "spills", f"Spills {_gib(bd.spill_bytes)} to system RAM — decode {_slowdown(bd.spill_slowdown)} slower"
    headroom = bd.headroom_bytes
    if bd.budget_bytes and headroom < TIGHT_FRACTION * bd.budget_bytes:
        return "tight", f"Tight — under 5 % headroom ({_gib(headroom)})"
    return "fits", f"Fits — {_gib(headroom)} headroom"


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
            "engines may still run out. Spills: the rest goes to system RAM, which is far slower."
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
        accent = {"fits": colors.fits, "tight": colors.tight, "spills": colors.spills}[self.state]
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
