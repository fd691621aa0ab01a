"""``kvdesk check PLAN``: recompute a .kvplan file — exit 0 fits, 1 does not fit, 2 bad file.

Usable in CI: ``kvdesk check deploy/llama.kvplan --gpu l40s`` answers "does our plan still fit on
the L40S?". ``--json`` prints the same object as ``kvdesk calc --json``; notes about the file
(upgraded from an older format, numbers that changed since it was saved) go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kvdesk.commands.planargs import add_gpu_arguments, gpu_from_args
from kvdesk.core.plan import Plan
from kvdesk.core.planfile import load_plan, recompute
from kvdesk.core.report import summary_text

EXIT_FITS, EXIT_NO_FIT = 0, 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plan", metavar="PLAN", help="a .kvplan file")
    add_gpu_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the `kvdesk calc --json` object")


def with_gpu(plan: Plan, args: argparse.Namespace) -> Plan:
    """``plan`` on the GPU given by --gpu/--vram-gib/--gpus, if any (validated)."""
    gpu, gpu_id = gpu_from_args(args)
    count = getattr(args, "gpus", None)
    if gpu is None and count is None:
        return plan
    data = plan.model_dump()
    if gpu is not None:
        data["gpu"], data["gpu_preset_id"] = gpu.model_dump(), gpu_id
    if count is not None:
        data["gpu_count"] = count
    return Plan.model_validate(data)


def run(args: argparse.Namespace) -> int:
    loaded = load_plan(Path(args.plan))
    for message in loaded.messages:
        print(f"kvdesk: note: {message}", file=sys.stderr)
    plan = with_gpu(loaded.plan, args)
    breakdown = loaded.breakdown if plan is loaded.plan and loaded.breakdown else recompute(plan)
    if args.json:
        print(json.dumps(breakdown.to_json(), indent=2))
    else:
        print(summary_text(plan, breakdown))
    return EXIT_FITS if breakdown.fits else EXIT_NO_FIT
