"""The fits / tight / spills / does-not-fit verdict, shared by the CLI table and the app's banner."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from kvdesk.core.breakdown import Breakdown
from kvdesk.core.units import format_bytes

VerdictKind = Literal["fits", "tight", "spills", "no_fit"]
TIGHT_FRACTION = 0.05
# Engines that offload what does not fit to system RAM and keep running (llama.cpp -ngl / --fit, Ollama's
# layer scheduler). vLLM refuses to start instead ("No available memory for the cache blocks").
SPILLING_ENGINES = ("generic", "llama.cpp", "ollama")


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    headline: str


def _slowdown(factor: float) -> str:
    return f"~{factor:.1f}×" if factor < 10 else f"~{factor:.0f}×"


def verdict(bd: Breakdown, size: Callable[[float], str] = format_bytes) -> Verdict:
    """The verdict on ``bd``; ``size`` formats byte counts (the app's banner uses one-decimal GiB)."""
    if not bd.fits:
        if bd.spill_bytes > 0 and bd.engine in SPILLING_ENGINES:
            return Verdict(
                "spills",
                f"Spills {size(bd.spill_bytes)} to system RAM — decode {_slowdown(bd.spill_slowdown)} slower",
            )
        reason = bd.warnings[-1] if bd.warnings else f"needs {size(bd.total_bytes)}"
        if bd.spill_bytes > 0:
            reason = f"{size(bd.spill_bytes)} over the budget; {reason}"
        return Verdict("no_fit", f"Does not fit — {reason}")
    headroom = bd.headroom_bytes
    if bd.budget_bytes and headroom < TIGHT_FRACTION * bd.budget_bytes:
        return Verdict("tight", f"Tight — under 5 % headroom ({size(headroom)})")
    return Verdict("fits", f"Fits — {size(headroom)} headroom")
