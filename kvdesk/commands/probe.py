"""``kvdesk probe``: the local GPUs' real memory, the backend that answered, and why others did not.

Exits 0 whether or not a GPU is found: "no GPU" is an answer, not an error.
"""

from __future__ import annotations

import argparse
import json

from kvdesk.core.probe import ProbeReport, probe_devices
from kvdesk.core.units import format_bytes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object (integers in bytes)")


def report_text(report: ProbeReport) -> str:
    lines = []
    if report.found:
        lines.append(f"{len(report.devices)} device(s), read by {report.backend}:")
        for d in report.devices:
            lines.append(
                f"  [{d.index}] {d.name}: {format_bytes(d.total_bytes)} total, {format_bytes(d.used_bytes)} used, "
                f"{format_bytes(d.free_bytes)} free"
            )
            if d.budget_bytes is not None:
                lines.append(f"      GPU working-set limit {format_bytes(d.budget_bytes)} ({d.note})")
            versions = ", ".join(f"{k} {v}" for k, v in (("driver", d.driver_version), ("CUDA", d.cuda_version)) if v)
            if versions:
                lines.append(f"      {versions}")
            for p in d.processes:
                lines.append(f"      process {p.label()}")
    else:
        lines.append("No GPU found.")
    lines.append("Backends tried:")
    lines += [f"  {'[ok]' if a.ok else '[--]'} {a.line()}" for a in report.attempts]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    report = probe_devices()
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(report_text(report))
    return 0
