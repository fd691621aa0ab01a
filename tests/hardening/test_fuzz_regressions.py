"""Bugs the fuzzers found, pinned as plain regression tests (each one crashed before its fix)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from pydantic import ValidationError

from kvdesk.cli import main
from kvdesk.core.defaults import default_plan
from kvdesk.core.errors import InputError, KvdeskError
from kvdesk.core.units import parse_tokens
from tests.hardening.fuzz_targets import gguf_file


@pytest.mark.parametrize("text", ["9" * 400, "9" * 400 + "k", "1" * 30 + "M"])
def test_huge_token_count_is_an_input_error(text: str) -> None:
    with pytest.raises(InputError, match="far too large"):
        parse_tokens(text)  # was OverflowError: cannot convert float infinity to integer


def test_cli_huge_ctx_is_exit_2_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calc", "--model", "llama-3.1-8b", "--ctx", "9" * 400 + "k"]) == 2
    assert capsys.readouterr().err.startswith("kvdesk: error: ctx:")


@pytest.mark.parametrize("field", ["gpu", "host"])
def test_vanishing_bandwidth_is_refused(field: str) -> None:
    plan = default_plan().model_dump()
    if field == "gpu":
        plan["gpu"]["bandwidth_bytes_per_s"] = 5e-324  # made decode time inf and spill slowdown NaN
    else:
        plan["host_bandwidth_bytes_per_s"] = 5e-324
    with pytest.raises(ValidationError, match="greater than or equal to 1000000"):
        type(default_plan()).model_validate(plan)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 50_000 + "]" * 50_000,  # was RecursionError
        '{"num_hidden_layers": ' + "9" * 5000 + "}",  # was ValueError (int digits limit)
        '{"model_type": ["llama"], "num_hidden_layers": 2, "num_attention_heads": 4, "hidden_size": 64}',  # TypeError
        '{"model_type": "llama", "num_hidden_layers": 2, "num_attention_heads": 4, "hidden_size": 64,'
        ' "vocab_size": 18446744073709551616}',  # was ValidationError from WeightFormat
    ],
)
def test_hostile_config_json_is_an_input_error(text: str, tmp_path: Path) -> None:
    from kvdesk.core.importers.hf_config import import_hf_config

    path = tmp_path / "config.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(KvdeskError):
        import_hf_config(path)


def test_infinite_kv_heads_in_config_json_is_ignored(tmp_path: Path) -> None:
    from kvdesk.core.importers.hf_config import import_hf_config

    path = tmp_path / "config.json"
    path.write_text('{"model_type": "llama", "num_hidden_layers": 2, "num_attention_heads": 4, "hidden_size": 64,'
                    ' "num_key_value_heads": Infinity}', encoding="utf-8")
    model = import_hf_config(path).model  # was OverflowError; now read as "not given": MHA
    assert model.default_kv_heads == 4


@pytest.mark.parametrize("value", ["", "eight", float("nan"), float("inf")])
def test_gguf_head_count_that_is_not_a_number(value: object, tmp_path: Path) -> None:
    from kvdesk.core.importers.gguf import import_gguf

    kv = {"general.architecture": "llama", "llama.block_count": 2, "llama.embedding_length": 64,
          "llama.attention.head_count": value, "llama.attention.head_count_kv": value}
    path = tmp_path / "m.gguf"
    path.write_bytes(gguf_file(kv, [("token_embd.weight", (64, 3), 0)]))  # was ValueError / OverflowError
    with pytest.raises(KvdeskError):
        import_gguf(path)


@pytest.mark.parametrize("header", ["[" * 50_000, '{"w": ' + "9" * 5000 + "}"])
def test_hostile_safetensors_header_is_an_input_error(header: str, tmp_path: Path) -> None:
    from kvdesk.core.importers.safetensors import read_safetensors_weights

    raw = header.encode()
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    with pytest.raises(KvdeskError):
        read_safetensors_weights(path)  # was RecursionError / ValueError


@pytest.mark.parametrize("text", ["[" * 50_000, json.dumps({"card0": 1}).replace("1", "9" * 5000)])
def test_hostile_rocm_smi_output_is_a_parse_error(text: str) -> None:
    from kvdesk.core.probe.parsers import ProbeParseError, parse_rocm_smi_json

    with pytest.raises(ProbeParseError):
        parse_rocm_smi_json(text)  # was RecursionError / ValueError


@pytest.mark.parametrize("mib", ["9" * 400, str(10**30)])
def test_absurd_nvidia_smi_memory_is_a_parse_error(mib: str) -> None:
    from kvdesk.core.probe.parsers import ProbeParseError, parse_nvidia_smi_gpus

    text = f"memory.total [MiB], memory.used [MiB]\n{mib} MiB, 18560 MiB\n"
    with pytest.raises(ProbeParseError, match="not a plausible memory size"):
        parse_nvidia_smi_gpus(text)  # was OverflowError (inf) or a device GpuSpec refused later


def test_absurd_macos_memsize_still_makes_a_gpu_spec() -> None:
    from kvdesk.core.probe.parsers import parse_macos

    spec = parse_macos(str(10**30)).to_gpu_spec()  # was ValidationError: memory_bytes > 2**50
    assert spec.memory_bytes == 1 << 50


def test_absurd_vram_gib_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calc", "--model", "llama-3.1-8b", "--vram-gib", "1e308"]) == 2  # was OverflowError
    assert "not a GPU memory size" in capsys.readouterr().err
