"""Reality check: read the memory lines an engine prints at startup and compare them with the plan.

``parse_log(text)`` is pure and never raises on any text (garbage, binary, huge); ``compare_log(path,
plan, breakdown)`` adds the prediction and the difference for each figure (``kvdesk calc --from-log``).
Engine formats and their sources: ``logparse_llama.py`` (llama.cpp, Ollama) and ``logparse_vllm.py``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kvdesk.core.breakdown import Breakdown
from kvdesk.core.errors import InputError
from kvdesk.core.logparse_llama import LlamaState
from kvdesk.core.logparse_models import DeviceFigures, KvCache, ObservedLog, VllmWorker
from kvdesk.core.logparse_vllm import VllmState
from kvdesk.core.plan import Plan

__all__ = [
    "MAX_LOG_BYTES",
    "DeviceFigures",
    "KvCache",
    "ObservedLog",
    "VllmWorker",
    "compare_log",
    "parse_log",
    "read_log_text",
]

MAX_LOG_BYTES = 32 << 20  # startup lines come first; 32 MiB holds many restarts of a journald log
MAX_LINE_CHARS = 8192  # vLLM config lines run to a few thousand characters; longer is not a log line
MAX_LINES = 400_000
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# A line without any of these words holds no figure: skip it before the engine parsers look at it.
_INTERESTING = re.compile(
    r"MiB|GiB|GB|buffer|n_ctx|n_batch|n_ubatch|n_seq|flash_attn|kv_unified|mla_attn|offloaded|type_k|creating|"
    r"msg=|tokens|blocks|non-default args|Initializing|total_memory"
)


def parse_log(text: str) -> ObservedLog:
    """Every memory figure a llama.cpp / Ollama / vLLM startup log prints (bytes as integers)."""
    log = ObservedLog()
    if not isinstance(text, str):
        log.warnings.append("the log is not text")
        return log
    if len(text) > MAX_LOG_BYTES:
        text, log.truncated = text[:MAX_LOG_BYTES], True
    llama, vllm = LlamaState(log), VllmState(log)
    for n, raw in enumerate(text.splitlines()):
        if n >= MAX_LINES:
            log.truncated = True
            break
        log.lines_read += 1
        if not _INTERESTING.search(raw, 0, MAX_LINE_CHARS):
            continue
        line = _clean(raw)
        try:
            hit = vllm.feed(line) or llama.feed(line)
        except (ValueError, OverflowError):  # a number too odd to be a real figure: skip the line
            hit = False
        log.lines_matched += int(hit)
    vllm.finish()
    _finish(log)
    return log


def _clean(raw: str) -> str:
    line = raw[:MAX_LINE_CHARS]
    if "\x00" in line:
        line = line.replace("\x00", "")
    if "\x1b" in line:
        line = _ANSI.sub("", line)
    return line.rstrip()


def _finish(log: ObservedLog) -> None:
    if log.engine == "unknown" and (log.devices or log.kv_caches):
        log.engine = "llama.cpp"
    if log.runs > 1:
        log.warnings.append(f"the log holds {log.runs} model loads; the figures are from the last one")
    if log.truncated:
        log.warnings.append(f"the log was cut at {MAX_LOG_BYTES >> 20} MiB / {MAX_LINES:,} lines")
    if log.lines_matched == 0:
        log.warnings.append("no llama.cpp, Ollama or vLLM memory lines found")


def read_log_text(path: Path, limit: int = MAX_LOG_BYTES) -> str:
    """A log file's text (its first ``limit`` bytes), or InputError naming the problem."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"log file not found: {path}", field="from_log")
    if not path.is_file():
        raise InputError(f"not a file: {path}", field="from_log")
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise InputError(f"cannot read log {path}: {exc.strerror or exc}", field="from_log") from None
    text = data[:limit].decode("utf-8", errors="replace")
    return text


def compare_log(path: Path, plan: Plan, breakdown: Breakdown) -> dict[str, Any]:
    """Each figure read from ``path`` beside the plan's prediction and the difference (``--from-log``)."""
    from kvdesk.core.logparse_compare import compare

    text = read_log_text(path)
    observed = parse_log(text)
    if len(text.encode("utf-8", errors="replace")) > MAX_LOG_BYTES:
        observed.truncated = True
    if observed.lines_matched == 0:
        raise InputError(f"{path}: no llama.cpp, Ollama or vLLM memory lines found in this log", field="from_log")
    result = compare(observed, plan, breakdown).to_json()
    result["file"] = str(path)
    return result
