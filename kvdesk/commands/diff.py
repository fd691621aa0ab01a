"""``kvdesk diff A B [--json]``: what differs between two plans and what it does to memory.

Exit status as diff(1): 0 the plans are the same, 1 they differ, 2 a file could not be read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kvdesk.core.plandiff import diff_plans, diff_text
from kvdesk.core.planfile import load_plan


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", metavar="A", help="a .kvplan file")
    parser.add_argument("b", metavar="B", help="another .kvplan file")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    a = load_plan(Path(args.a), recompute_now=False).plan
    b = load_plan(Path(args.b), recompute_now=False).plan
    result = diff_plans(a, b)
    if args.json:
        print(json.dumps({"a": args.a, "b": args.b, **result.to_json()}, indent=2))
    else:
        print(diff_text(result, args.a, args.b))
    return 0 if result.identical else 1
