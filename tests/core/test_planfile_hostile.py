"""Corrupt, truncated and hostile .kvplan files: every one is a PlanFileError naming the problem."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from kvdesk.core.errors import KvdeskError
from kvdesk.core.planfile import PlanFileError, dumps_plan, load_plan, loads_plan, save_plan
from kvdesk.core.planfile_json import MAX_FILE_BYTES, nesting_depth
from tests.core.test_planfile import llama_plan

GOOD = dumps_plan(llama_plan())


def _doc() -> dict:
    return json.loads(GOOD)


def _with(mutate: object) -> bytes:
    doc = _doc()
    mutate(doc)  # type: ignore[operator]
    return json.dumps(doc).encode()


def _replace(old: str, new: str) -> bytes:
    assert old in GOOD
    return GOOD.replace(old, new, 1).encode()


CASES: list[tuple[str, bytes, str]] = [
    ("empty", b"", "empty"),
    ("whitespace", b"  \n\t ", "empty"),
    ("binary-junk", bytes(range(256)) * 8, "binary data"),
    ("png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary data"),
    ("latin1", "{\"notes\": \"caf\xe9\"}".encode("latin-1"), "not UTF-8 text (byte 0xe9"),
    ("utf16-bom", GOOD.encode("utf-16"), "UTF-16"),
    ("truncated", GOOD[: len(GOOD) // 2].encode(), "looks truncated"),
    ("truncated-one-byte", GOOD.rstrip()[:-1].encode(), "looks truncated"),
    ("trailing-garbage", (GOOD + "{}").encode(), "Extra data"),
    ("top-level-list", b"[1, 2, 3]", "top level is a JSON list"),
    ("top-level-string", b'"kvplan"', "top level is a JSON str"),
    ("deep-nesting", b"[" * 100_000 + b"]" * 100_000, "nested 100000 levels deep"),
    ("deep-object", b'{"a":' * 50 + b"1" + b"}" * 50, "nested 50 levels deep"),
    ("huge-int", _replace('"context": 8192', '"context": ' + "9" * 5000), "5000-digit integer"),
    ("huge-float", _replace('"context": 8192', '"context": 1e999'), "out of range"),
    ("long-float", _replace('"context": 8192', '"context": 0.' + "1" * 200), "too long"),
    ("nan", _replace('"gpu_memory_utilization": 0.9', '"gpu_memory_utilization": NaN'), "NaN"),
    ("infinity", _replace('"gpu_memory_utilization": 0.9', '"gpu_memory_utilization": Infinity'), "Infinity"),
    ("minus-infinity", _replace('"context": 8192', '"context": -Infinity'), "-Infinity"),
    ("duplicate-key", _replace('"context": 8192', '"context": 8192, "context": 1'), "duplicate key 'context'"),
    ("duplicate-top", (GOOD.rstrip()[:-1] + ', "format_version": 1}').encode(), "duplicate key 'format_version'"),
    ("no-version", _with(lambda d: d.pop("format_version")), "no 'format_version'"),
    ("version-string", _with(lambda d: d.__setitem__("format_version", "2")), "must be an integer"),
    ("version-bool", _with(lambda d: d.__setitem__("format_version", True)), "must be an integer"),
    ("version-float", _with(lambda d: d.__setitem__("format_version", 2.0)), "must be an integer"),
    ("version-zero", _with(lambda d: d.__setitem__("format_version", 0)), "does not exist"),
    ("version-negative", _with(lambda d: d.__setitem__("format_version", -3)), "does not exist"),
    ("no-plan", _with(lambda d: d.pop("plan")), "plan"),
    ("plan-null", _with(lambda d: d.__setitem__("plan", None)), "plan"),
    ("context-string", _with(lambda d: d["plan"]["workload"].__setitem__("context", "4096")), "workload.context"),
    ("context-float", _with(lambda d: d["plan"]["workload"].__setitem__("context", 4096.5)), "workload.context"),
    ("context-zero", _with(lambda d: d["plan"]["workload"].__setitem__("context", 0)), "workload.context"),
    ("context-negative", _with(lambda d: d["plan"]["workload"].__setitem__("context", -1)), "workload.context"),
    ("context-2^63", _with(lambda d: d["plan"]["workload"].__setitem__("context", 2**63)), "workload.context"),
    ("flash-attn-int", _with(lambda d: d["plan"]["engine"].__setitem__("flash_attn", 1)), "engine.flash_attn"),
    ("unknown-engine", _with(lambda d: d["plan"]["engine"].__setitem__("name", "os.system")), "engine.name"),
    ("unknown-kv-dtype", _with(lambda d: d["plan"]["workload"].__setitem__("kv_dtype_k", "q3_x")), "q3_x"),
    ("layers-empty", _with(lambda d: d["plan"]["model"].__setitem__("layers", [])), "model.layers"),
    ("layers-wrong-type", _with(lambda d: d["plan"]["model"].__setitem__("layers", {"a": 1})), "model.layers"),
    ("memory-negative", _with(lambda d: d["plan"]["gpu"].__setitem__("memory_bytes", -5)), "gpu.memory_bytes"),
    ("unknown-field", _with(lambda d: d["plan"].__setitem__("__class__", "Plan")), "__class__"),
    ("unknown-top-key", _with(lambda d: d.__setitem__("pickle", "gASV")), "pickle"),
    ("snapshot-list", _with(lambda d: d.__setitem__("snapshot", [1])), "snapshot"),
    ("version-text-huge", _with(lambda d: d.__setitem__("kvdesk_version", "9" * 100)), "kvdesk_version"),
    ("long-string", _with(lambda d: d["plan"].__setitem__("notes", "x" * (1 << 21))), "characters is too long"),
    ("long-notes", _with(lambda d: d["plan"].__setitem__("notes", "x" * 200_000)), "notes"),
    ("long-array", _with(lambda d: d["plan"]["model"].__setitem__("layers", [1] * 70_000)), "70,000 items"),
    ("lone-surrogate", _replace('"notes": "', '"notes": "\\ud800'), "surrogate"),
    ("control-char", _replace('"notes": "', '"notes": "\x07'), "Invalid control character"),
]


@pytest.mark.parametrize(("data", "needle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_file_is_a_clear_error(data: bytes, needle: str, tmp_path: Path) -> None:
    path = tmp_path / "hostile.kvplan"
    path.write_bytes(data)
    start = time.perf_counter()
    with pytest.raises(PlanFileError) as err:
        load_plan(path)
    assert time.perf_counter() - start < 5.0
    message = str(err.value)
    assert needle in message
    assert message.startswith("hostile.kvplan: ")
    assert "\n" not in message and "Traceback" not in message
    assert isinstance(err.value, KvdeskError)


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.kvplan"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert load_plan(path).plan == llama_plan()


def test_crlf_line_endings_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "crlf.kvplan"
    path.write_bytes(GOOD.replace("\n", "\r\n").encode())
    assert load_plan(path).plan == llama_plan()


def test_oversized_file_is_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "huge.kvplan"
    with path.open("wb") as fh:  # sparse: costs no disk
        fh.truncate(MAX_FILE_BYTES + 1)

    def no_open(*_: object, **__: object) -> None:
        raise AssertionError("the file was opened")

    monkeypatch.setattr(Path, "open", no_open)
    with pytest.raises(PlanFileError, match=r"too large for a plan file \(limit 16 MiB\)"):
        load_plan(path)


def test_oversized_text_is_refused() -> None:
    with pytest.raises(PlanFileError, match="larger than"):
        loads_plan(" " * (MAX_FILE_BYTES + 1))


@pytest.mark.parametrize("kind", ["missing", "folder", "fifo"])
def test_not_a_file(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "x.kvplan"
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        os.mkfifo(path)
    with pytest.raises(PlanFileError, match={"missing": "no such file", "folder": "is a folder",
                                              "fifo": "not a regular file"}[kind]):
        load_plan(path)


def test_unreadable_file(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads everything")
    path = tmp_path / "locked.kvplan"
    path.write_text(GOOD)
    path.chmod(0)
    with pytest.raises(PlanFileError, match="cannot read"):
        load_plan(path)


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b"", 0),
        (b"[]", 1),
        (b'{"a":[1,{"b":2}]}', 3),
        (b'{"n": "[[[{{\\\\\\"]]"}', 1),  # escaped quote inside the string
        (b'["\\\\", "[", ["\\\\\\\\\\"["]]', 2),  # even/odd backslash runs before quotes
        (b'[["]"]]', 2),
        (b'["]]]]]]]]",' + b"[" * 40 + b"]" * 41, 41),  # closing brackets in a string hide nothing
    ],
)
def test_nesting_depth_exact(text: bytes, depth: int) -> None:
    assert nesting_depth(text) == depth
    if depth and b"\\" not in text:
        assert nesting_depth(text) == _python_depth(json.loads(text))


def _python_depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_python_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_python_depth(v) for v in value), default=0)
    return 0


def test_depth_scan_ignores_brackets_inside_strings() -> None:
    text = json.dumps({"notes": "[" * 500 + "{" * 500}).encode()
    assert nesting_depth(text) == 1
    doc = _doc()
    doc["plan"]["notes"] = "[[[[{{{{ \\\" ]]]" * 1000
    assert loads_plan(json.dumps(doc)).plan.notes == doc["plan"]["notes"]


def test_a_bad_file_never_replaces_what_was_loaded(tmp_path: Path) -> None:
    """Saving over a file and failing to open another leaves the first plan intact (GUI contract)."""
    good = tmp_path / "good.kvplan"
    save_plan(good, llama_plan())
    bad = tmp_path / "bad.kvplan"
    bad.write_bytes(b"\x00\x01")
    with pytest.raises(PlanFileError):
        load_plan(bad)
    assert load_plan(good).plan == llama_plan()
