"""``kvdesk export PLAN --to llama.cpp|vllm|ollama|markdown|csv [-o FILE]``: launch commands or a report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kvdesk.core.atomic import atomic_write_text
from kvdesk.core.export import TARGETS, export_plan
from kvdesk.core.planfile import PlanFileError, load_plan


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plan", metavar="PLAN", help="a .kvplan file")
    parser.add_argument("--to", required=True, metavar="TARGET", help="one of: " + ", ".join(TARGETS))
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of printing")


def run(args: argparse.Namespace) -> int:
    loaded = load_plan(Path(args.plan))
    for message in loaded.messages:
        print(f"kvdesk: note: {message}", file=sys.stderr)
    text = export_plan(loaded.plan, args.to)
    if args.output:
        try:
            atomic_write_text(Path(args.output), text)
        except OSError as exc:
            raise PlanFileError(f"could not write {args.output}: {exc.strerror or exc}") from None
    else:
        sys.stdout.write(text)
    return 0
