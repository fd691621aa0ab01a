"""``kvdesk list models|gpus [--json]``: catalogue ids with their key numbers and source."""

from __future__ import annotations

import argparse
import json
from typing import Any

from kvdesk.core.catalog import all_gpus, all_models
from kvdesk.core.units import format_bytes, format_tokens


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["models", "gpus"])
    parser.add_argument("--json", action="store_true", help="print a JSON array")


def run(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]]
    if args.what == "models":
        rows = [
            {
                "id": m.id, "name": m.name, "family": m.family, "layers": m.n_layers,
                "params_total": m.params_total, "params_active": m.params_active,
                "native_context": m.native_context, "kinds": sorted(m.kinds()),
                "formats": [f.name for f in m.weight_formats], "source": m.source,
            }
            for m in all_models()
        ]
        if not args.json:
            for r in rows:
                params = f"{r['params_total'] / 1e9:.1f}B"
                if r["params_active"]:
                    params += f" ({r['params_active'] / 1e9:.1f}B active)"
                print(f"{r['id']:<32} {r['name']:<36} {params:<22} ctx {format_tokens(r['native_context'])}")
    else:
        rows = [
            {
                "id": g.id, "name": g.name, "vendor": g.vendor, "memory_bytes": g.memory_bytes,
                "usable_bytes": g.usable_bytes, "bandwidth_bytes_per_s": g.bandwidth_bytes_per_s,
                "unified_memory": g.unified_memory, "source": g.source,
            }
            for g in all_gpus()
        ]
        if not args.json:
            for r in rows:
                print(
                    f"{r['id']:<28} {r['name']:<40} {format_bytes(r['memory_bytes']):>11} "
                    f"{r['bandwidth_bytes_per_s'] / 1e9:>7.0f} GB/s"
                )
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0
