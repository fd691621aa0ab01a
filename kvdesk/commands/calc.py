"""``kvdesk calc``: a memory breakdown for a model, GPU and workload (table or ``--json``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from kvdesk.commands.planargs import add_plan_arguments, plan_from_args
from kvdesk.core.calculator import calculate
from kvdesk.core.report import summary_text
from kvdesk.core.units import format_bytes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_plan_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object (integers in bytes)")
    parser.add_argument("--save", metavar="FILE.kvplan", help="also write the plan to a .kvplan file")
    parser.add_argument("--from-log", metavar="FILE", help="compare an engine startup log with the prediction")


def run(args: argparse.Namespace) -> int:
    plan = plan_from_args(args)
    breakdown = calculate(plan)
    observed = None
    if args.from_log:
        from kvdesk.core.logparse import compare_log

        observed = compare_log(Path(args.from_log), plan, breakdown)
    if args.save:
        from kvdesk.core.planfile import save_plan

        save_plan(Path(args.save), plan)
    if args.json:
        data = breakdown.to_json()
        if observed is not None:
            data["observed"] = observed
        print(json.dumps(data, indent=2))
    else:
        print(summary_text(plan, breakdown))
        if observed is not None:
            print()
            print(observed_table(observed))
    return 0


def _fmt(value: object, unit: str) -> str:
    if not isinstance(value, int | float):
        return "—"
    if unit == "bytes":
        return format_bytes(value)
    return f"{value:,.2f}" if isinstance(value, float) and not value.is_integer() else f"{int(value):,}"


def observed_table(observed: dict[str, Any]) -> str:
    """The log's figures beside the prediction, one row each (what --json prints as 'observed')."""
    rows = [f"compared with {observed.get('file', 'the log')} ({observed.get('engine', '?')} log):",
            f"  {'figure':<26} {'log':>14} {'kvdesk':>14} {'difference':>14}"]
    for fig in observed.get("figures", {}).values():
        unit = str(fig.get("unit", ""))
        rows.append(
            f"  {fig.get('label', ''):<26} {_fmt(fig.get('observed'), unit):>14} "
            f"{_fmt(fig.get('predicted'), unit):>14} {_fmt(fig.get('difference'), unit):>14}"
        )
    rows += [f"warning: {w}" for w in observed.get("warnings", [])]
    return "\n".join(rows)
