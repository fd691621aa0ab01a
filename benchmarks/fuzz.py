"""Long fuzz run: ≥ 10,000 hypothesis cases per parser; counts cases, rejections and failures.

    python benchmarks/fuzz.py [--cases 10000] [--only kvplan,gguf] [--seed 1] [--show 1]

A failure is any exception other than a KvdeskError (or a parser's documented error) — the targets
and what each checks are in tests/hardening/fuzz_targets.py. Progress lines first, the first
failures' tracebacks (``--show``) to stderr, then ONE JSON object on the last line:
``{"cases_per_parser": N, "parsers": {name: {"cases", "accepted", "rejected", "failures"}}, "total_failures": F}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="cases per parser (default 10000)")
    parser.add_argument("--only", default="", help="comma-separated target names")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed (default: random)")
    parser.add_argument("--show", type=int, default=5, help="tracebacks to print per failing parser")
    args = parser.parse_args()

    import tempfile

    # never touch the user's real config/data dirs
    home = Path(tempfile.mkdtemp(prefix="kvdesk-fuzz-home-"))
    os.environ["KVDESK_CONFIG_DIR"] = str(home / "config")
    os.environ["KVDESK_DATA_DIR"] = str(home / "data")
    warnings.simplefilter("ignore")

    from tests.hardening.fuzz_targets import TARGETS, available
    from tests.hardening.fuzzlib import run_target

    names = [n for n in (args.only.split(",") if args.only else TARGETS) if n]
    report: dict[str, dict] = {}
    skipped: list[str] = []
    for name in names:
        if not available(name):
            print(f"{name}: module {TARGETS[name].module} not available, skipped", flush=True)
            skipped.append(name)
            continue
        start = time.perf_counter()
        result = run_target(TARGETS[name], args.cases, keep_going=True, seed=args.seed)
        seconds = time.perf_counter() - start
        report[name] = {**result.to_json(), "seconds": round(seconds, 1)}
        print(f"{name}: {result.cases} cases, {result.rejected} rejected, {result.failures} failures "
              f"in {seconds:.0f} s", flush=True)
        for example in result.examples[: args.show]:
            print(f"--- {name} failure ---\n{example}", file=sys.stderr, flush=True)
    total = sum(r["failures"] for r in report.values())
    print(json.dumps({"cases_per_parser": args.cases, "parsers": report, "skipped": skipped,
                      "total_failures": total}))
    return 1 if total else 0


if __name__ == "__main__":
    raise SystemExit(main())
