"""Bounds: sizes, depth, numbers and strings are refused before they cost memory or time."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from kvdesk.core.errors import InputError
from kvdesk.core.limits import (
    JsonLimits,
    check_count,
    check_file_size,
    json_depth,
    loads_json,
    read_bytes,
    read_json,
    read_json_object,
    read_text,
)


@pytest.fixture
def sparse_10g(tmp_path: Path) -> Path:
    path = tmp_path / "model.kvplan"
    with open(path, "wb") as fh:
        fh.truncate(10 << 30)  # sparse: no disk used
    return path


def test_sparse_10g_file_refused_in_milliseconds(sparse_10g: Path) -> None:
    start = time.perf_counter()
    with pytest.raises(InputError, match=r"model.kvplan: 10.0 GiB is too large for a plan .*limit 16 MiB"):
        read_json(sparse_10g, JsonLimits(max_bytes=16 << 20), what="plan")
    assert time.perf_counter() - start < 0.05


def test_size_limit_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(b"[" + b"1," * 49 + b"1]")  # 101 bytes
    assert check_file_size(path, 101) == 101
    with pytest.raises(InputError, match="too large"):
        check_file_size(path, 100)


def test_missing_folder_and_fifo_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_bytes(tmp_path / "nope.json", 100)
    with pytest.raises(InputError, match="is a folder"):
        read_bytes(tmp_path, 100)
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "pipe"
        os.mkfifo(fifo)
        start = time.perf_counter()
        with pytest.raises(InputError, match="not a regular file"):
            read_bytes(fifo, 100)  # would block forever if opened
        assert time.perf_counter() - start < 1


def test_deep_nesting_refused_before_parsing() -> None:
    deep = "[" * 200_000 + "]" * 200_000
    with pytest.raises(InputError, match="nested 200000 levels deep"):
        loads_json(deep)


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"notes": "[" * 5000 + "{" * 5000})
    assert json_depth(text) == 1
    assert loads_json(text)["notes"].startswith("[[[")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("NaN", "NaN is not a valid JSON number"),
        ('{"x": Infinity}', "Infinity is not a valid JSON number"),
        ("[-Infinity]", "-Infinity is not a valid JSON number"),
        ("1e400", "out of range"),
        ("9" * 5000, "a number with 5000 digits"),
        ("[1, 2", "not valid JSON"),
        ("", "not valid JSON"),
        ('"\\ud800"', "lone UTF-16 surrogate"),
    ],
)
def test_bad_json_is_a_clear_input_error(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        loads_json(text, name="plan.kvplan")


def test_string_and_array_caps() -> None:
    limits = JsonLimits(max_string_chars=10, max_items=3)
    assert loads_json('["abc", [1, 2, 3]]', limits) == ["abc", [1, 2, 3]]
    with pytest.raises(InputError, match="a text of 11 characters"):
        loads_json(json.dumps({"k": "x" * 11}), limits)
    with pytest.raises(InputError, match="an array of 4 items"):
        loads_json("[[1, 2, 3, 4]]", limits)
    with pytest.raises(InputError, match="an object with 4 keys"):
        loads_json(json.dumps({str(i): i for i in range(4)}), limits)
    with pytest.raises(InputError, match="a text of 11 characters"):
        loads_json(json.dumps({"x" * 11: 1}), limits)  # keys are strings too


def test_bytes_input_size_and_encoding() -> None:
    with pytest.raises(InputError, match="too large"):
        loads_json(b"[" + b"0," * 100 + b"0]", JsonLimits(max_bytes=50))
    with pytest.raises(InputError, match="not UTF-8 text"):
        loads_json(b'{"a": "\xff"}')
    assert loads_json('\ufeff{"a": 1}'.encode()) == {"a": 1}  # a BOM is fine


def test_read_text_and_object(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"n": 1}', encoding="utf-8")
    assert read_text(path, 100) == '{"n": 1}'
    assert read_json_object(path) == {"n": 1}
    path.write_text("[1]", encoding="utf-8")
    with pytest.raises(InputError, match="expected a JSON object, found list"):
        read_json_object(path)


@pytest.mark.parametrize("value", [-1, 1 << 40, True, 2.5])
def test_check_count_refuses(value: object) -> None:
    with pytest.raises(InputError, match="tensor count"):
        check_count(value, 1 << 20, "tensor count", "m.gguf")  # type: ignore[arg-type]
    assert check_count(7, 10, "n") == 7


def test_large_valid_document_is_fast() -> None:
    text = json.dumps({"layers": [{"count": i, "kind": "full"} for i in range(50_000)]})
    start = time.perf_counter()
    assert len(loads_json(text)["layers"]) == 50_000
    assert time.perf_counter() - start < 2
