"""``kvdesk calc``: a memory breakdown for a model, GPU and workload (table or ``--json``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kvdesk.commands.planargs import add_plan_arguments, plan_from_args
from kvdesk.core.calculator import calculate
from kvdesk.core.report import summary_text


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
            print("\nobserved in log:")
            print(json.dumps(observed, indent=2))
    return 0
