"""``kvdesk``: with no subcommand opens the desktop app; ``kvdesk calc|check|list|…`` run headless.

Subcommands live in ``kvdesk/commands/<name>.py`` (``add_arguments(parser)`` and ``run(args) -> int``)
and are imported only when named, so ``kvdesk calc`` never imports Qt.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from kvdesk import __version__

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "calc": ("kvdesk.commands.calc", "compute a memory breakdown for a model, GPU and workload"),
    "check": ("kvdesk.commands.check", "recompute a .kvplan file; exit 0 fits, 1 does not fit, 2 bad file"),
    "list": ("kvdesk.commands.listing", "list catalogue models or GPUs with their ids"),
    "export": ("kvdesk.commands.export", "turn a plan into launch commands or a report"),
    "diff": ("kvdesk.commands.diff", "what differs between two plans and what it does to memory"),
    "probe": ("kvdesk.commands.probe", "read the local GPUs' free memory"),
}

EXIT_OK, EXIT_NO_FIT, EXIT_BAD_INPUT = 0, 1, 2


class OneLineErrorParser(argparse.ArgumentParser):
    """Bad flags print one line naming the problem (no usage dump) and exit 2 — the CLI contract."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _gui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kvdesk",
        description="kvdesk — will this model fit on this GPU, and how far can context and concurrency go?",
        epilog="Headless commands: " + ", ".join(COMMANDS) + " (kvdesk COMMAND --help).",
    )
    parser.add_argument("--version", action="version", version=f"kvdesk {__version__}")
    parser.add_argument("--smoke", action="store_true", help="open the main window, wait for its first paint, exit 0")
    parser.add_argument("file", nargs="?", help="a .kvplan, config.json or .gguf to open")
    return parser


def _command_parser(name: str) -> tuple[argparse.ArgumentParser, object]:
    module_name, help_text = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = OneLineErrorParser(prog=f"kvdesk {name}", description=help_text)
    module.add_arguments(parser)
    return parser, module


def _single_threaded_blas() -> None:
    """kvdesk's numpy work is element-wise on arrays of at most a few thousand values: it never calls BLAS
    on anything big enough for threads to pay off, yet OpenBLAS starts one spinning thread per core when
    numpy is imported (≈ 0.09 s of CPU at start on 2 cores, measured with benchmarks/startup.py's method).
    A value the user set wins."""
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main(argv: Sequence[str] | None = None) -> int:
    _single_threaded_blas()
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in COMMANDS:
        parser, module = _command_parser(args[0])
        ns = parser.parse_args(args[1:])
        return run_command(module, ns)
    ns = _gui_parser().parse_args(args)
    # No cyclic garbage collection while the app imports and builds its window: start-up creates hundreds of
    # thousands of long-lived objects and the collector would walk them again and again for nothing (≈ 4 % of
    # start-up instructions, measured with valgrind). run_app freezes them and resumes collection once the
    # window is up; this ``finally`` covers every other way out.
    gc.disable()
    try:
        from kvdesk.gui.app import run_app  # Qt is imported only here

        return run_app(file=ns.file, smoke=ns.smoke)
    finally:
        gc.enable()


def run_command(module: object, ns: argparse.Namespace) -> int:
    """Run a subcommand; bad input becomes a one-line message and exit 2, never a traceback."""
    from kvdesk.core.errors import KvdeskError, describe_validation_error

    try:
        return int(module.run(ns))  # type: ignore[attr-defined]
    except KvdeskError as exc:
        print(f"kvdesk: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ValueError, OSError) as exc:  # pydantic ValidationError is a ValueError
        print(f"kvdesk: error: {describe_validation_error(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    raise SystemExit(main())
