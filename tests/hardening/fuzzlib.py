"""Fuzzing helpers shared by the quick test run (tests/hardening/test_fuzz.py) and benchmarks/fuzz.py.

- strategies that mutate a valid seed document (JSON values replaced by nasty ones, keys dropped or
  added) or a seed text/byte string (truncated, bytes flipped, chunks duplicated or inserted);
- ``run_target``: runs one target under hypothesis; in the test it fails on the first uncaught
  exception, in the benchmark it counts every case and every failure and keeps going.
"""

from __future__ import annotations

import copy
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

NASTY_INTS = [0, -1, 1, 2, 3, 7, 255, 256, 4095, 4096, 65535, 65536, 2**31 - 1, 2**31, 2**32, 2**53 + 1,
              2**63 - 1, 2**63, 2**64, 10**30, -(2**63), -(10**30)]
NASTY_FLOATS = [0.0, -0.0, 0.5, 1.5, 1e-300, 5e-324, 1e308, -1e308, float("nan"), float("inf"), float("-inf")]
NASTY_STRINGS = ["", " ", "auto", "nan", "inf", "-1", "1e999", "0x10", "None", "__import__('os').system('x')",
                 "__class__", "os.system", "\x00", "\ud800", "\u202e", "a" * 300, "../../etc/passwd", "ñ", "💥"]

# JSON texts built to hurt a parser: recursion, huge numbers, non-standard constants, duplicate keys
JSON_BOMBS = [
    "[" * 50_000 + "]" * 50_000,
    '{"a":' * 20_000 + "1" + "}" * 20_000,
    "9" * 5000,
    '{"num_hidden_layers": ' + "9" * 5000 + ', "hidden_size": 4096}',
    '{"num_hidden_layers": 1e999999, "hidden_size": -1e400}',
    '{"num_hidden_layers": NaN, "hidden_size": Infinity, "vocab_size": -Infinity}',
    '{"num_hidden_layers": 32, "num_hidden_layers": 64}',
    '{"x": "' + "\\ud800" + '"}',
    "",
    "\ufeff{}",
]

numbers = st.one_of(
    st.sampled_from(NASTY_INTS), st.integers(), st.sampled_from(NASTY_FLOATS), st.floats(), st.booleans()
)
scalars = st.one_of(st.none(), numbers, st.sampled_from(NASTY_STRINGS), st.text(max_size=12))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every (path) to a value inside ``doc`` (dict keys and list indexes), the root excluded."""
    out: list[tuple] = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.append((*prefix, k))
            out.extend(paths(v, (*prefix, k)))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.append((*prefix, i))
            out.extend(paths(v, (*prefix, i)))
    return out


def _parent(doc: Any, path: tuple) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


@st.composite
def mutated_doc(draw: st.DrawFn, seeds: list[Any], values: st.SearchStrategy = json_values,
                only: Callable[[tuple, Any], bool] | None = None, max_mutations: int = 4) -> Any:
    """A seed document with 1…max_mutations values replaced, removed, or new keys added."""
    doc = copy.deepcopy(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, max_mutations))):
        candidates = [p for p in paths(doc) if only is None or only(p, _parent(doc, p)[p[-1]])]
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        parent = _parent(doc, path)
        action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add"]))
        if action == "replace" or only is not None:
            parent[path[-1]] = draw(values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(values)
        else:
            parent.append(draw(values))
    return doc


@st.composite
def mutated_bytes(draw: st.DrawFn, seeds: list[bytes], max_mutations: int = 4) -> bytes:
    """A seed byte string truncated, with bytes flipped, chunks deleted, duplicated or inserted."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, max_mutations))):
        n = len(data)
        pos = draw(st.integers(0, max(n - 1, 0)))
        action = draw(st.sampled_from(["flip", "flip", "set", "truncate", "delete", "dup", "insert"]))
        if action == "truncate":
            del data[pos:]
        elif n == 0:
            data += draw(st.binary(max_size=16))
        elif action == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif action == "set":
            data[pos] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF, 0x22, 0x5B, 0x7B, 0x5C]))
        elif action == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif action == "dup":
            chunk = data[pos : pos + draw(st.integers(1, 64))]
            data[pos:pos] = chunk * draw(st.integers(1, 8))
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


def mutated_text(seeds: list[str], max_mutations: int = 4) -> st.SearchStrategy[str]:
    raw = [s.encode("utf-8") for s in seeds]
    return mutated_bytes(raw, max_mutations).map(lambda b: b.decode("utf-8", errors="replace"))


@st.composite
def mutated_lines(draw: st.DrawFn, seeds: list[str]) -> str:
    """Line-level mutations for line-oriented outputs (tool output, logs): numbers swapped for nasty
    ones, lines dropped, duplicated or replaced with random text."""
    lines = draw(st.sampled_from(seeds)).splitlines()
    for _ in range(draw(st.integers(1, 5))):
        if not lines:
            lines.append(draw(st.text(max_size=40)))
            continue
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["number", "number", "drop", "dup", "random", "cut"]))
        if action == "number":
            words = lines[i].split(" ")
            j = draw(st.integers(0, len(words) - 1))
            nasty = draw(st.one_of(st.sampled_from([*map(str, NASTY_INTS), *map(str, NASTY_FLOATS)]),
                                   st.sampled_from(NASTY_STRINGS), st.text(max_size=6),
                                   st.from_regex(r"\A[0-9]{1,400}(\.[0-9]{1,4})?\Z")))
            words[j] = nasty
            lines[i] = " ".join(words)
        elif action == "drop":
            del lines[i]
        elif action == "dup":
            lines[i:i] = [lines[i]] * draw(st.integers(1, 50))
        elif action == "random":
            lines[i] = draw(st.text(max_size=80))
        else:
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
    return "\n".join(lines)


@dataclass
class Target:
    """One parser under fuzz: ``check(case)`` returns 'accepted' or 'rejected' and lets only bugs escape."""

    name: str
    module: str  # the module under test (skipped while it does not exist)
    strategy: Callable[[], st.SearchStrategy]
    check: Callable[[Any], str]
    describe: str = ""


@dataclass
class Result:
    name: str
    cases: int = 0
    accepted: int = 0
    rejected: int = 0
    failures: int = 0
    examples: list[str] = field(default_factory=list)  # one traceback per distinct bug
    bugs: dict[str, int] = field(default_factory=dict)  # "ExcType at file:line" -> count

    def to_json(self) -> dict[str, Any]:
        return {"cases": self.cases, "accepted": self.accepted, "rejected": self.rejected,
                "failures": self.failures, "bugs": self.bugs}


def run_target(target: Target, max_examples: int, *, keep_going: bool = False, seed: int | None = None) -> Result:
    """Run ``target`` for up to ``max_examples`` cases. Without ``keep_going`` the first uncaught
    exception propagates (hypothesis shrinks it); with it, failures are counted and kept."""
    result = Result(target.name)

    def body(case: Any) -> None:
        result.cases += 1
        try:
            outcome = target.check(case)
        except Exception as exc:
            if not keep_going:
                raise
            result.failures += 1
            where = traceback.extract_tb(exc.__traceback__)[-1]
            bug = f"{type(exc).__name__} at {Path(where.filename).name}:{where.lineno}"
            if bug not in result.bugs:
                result.examples.append(f"{bug}\ninput: {case!r:.300}\n{traceback.format_exc(limit=-4)}")
            result.bugs[bug] = result.bugs.get(bug, 0) + 1
            return
        if outcome == "accepted":
            result.accepted += 1
        else:
            result.rejected += 1

    phases = [Phase.generate] if keep_going else [Phase.explicit, Phase.generate, Phase.shrink]
    test = settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=seed is None and not keep_going,
        phases=phases,
        suppress_health_check=list(HealthCheck),
    )(given(target.strategy())(body))
    if seed is not None:
        from hypothesis import seed as hseed

        test = hseed(seed)(test)
    test()
    return result
