"""safetensors headers: exact bytes per dtype and parameter counts, sharded checkpoints via the
index, snapshot folders through the config importer, and hostile headers."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest

from kvdesk.core.errors import InputError
from kvdesk.core.importers.hf_config import import_hf_config
from kvdesk.core.importers.safetensors import read_safetensors_weights

CONFIGS = Path(__file__).parents[1] / "data" / "configs"
SIZES = {"BF16": 2, "F16": 2, "F32": 4, "F8_E4M3": 1, "I32": 4, "U8": 1}


def write_safetensors(
    path: Path, tensors: dict[str, tuple[str, list[int]]], meta: dict[str, str] | None = None
) -> Path:
    header: dict[str, Any] = {"__metadata__": meta or {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        n = SIZES[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw)
        fh.truncate(8 + len(raw) + offset)
    return path


def test_single_file_bytes_and_params(tmp_path: Path) -> None:
    path = write_safetensors(
        tmp_path / "model.safetensors",
        {
            "a.weight": ("BF16", [1024, 512]),
            "b.weight": ("F32", [512]),
            "c.weight": ("F8_E4M3", [256, 256]),
        },
    )
    w = read_safetensors_weights(path)
    assert w.bytes_by_dtype == {"BF16": 1024 * 512 * 2, "F32": 512 * 4, "F8_E4M3": 256 * 256}
    assert w.n_params == 1024 * 512 + 512 + 256 * 256
    assert w.total_bytes == 1024 * 512 * 2 + 512 * 4 + 256 * 256
    assert w.main_dtype == "BF16" and not w.notes


def test_sharded_index(tmp_path: Path) -> None:
    write_safetensors(tmp_path / "model-00001-of-00002.safetensors", {"x": ("BF16", [64, 64])})
    write_safetensors(tmp_path / "model-00002-of-00002.safetensors", {"y": ("BF16", [32, 64])})
    index = {
        "metadata": {"total_size": 0},
        "weight_map": {"x": "model-00001-of-00002.safetensors", "y": "model-00002-of-00002.safetensors"},
    }
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    (tmp_path / "stray.safetensors").write_bytes(b"junk")  # not in the index: not read
    w = read_safetensors_weights(tmp_path)
    assert w.n_params == 64 * 64 + 32 * 64 and len(w.files) == 2
    (tmp_path / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(InputError, match="missing"):
        read_safetensors_weights(tmp_path)


def test_packed_int4_is_flagged(tmp_path: Path) -> None:
    path = write_safetensors(
        tmp_path / "q.safetensors", {"l.qweight": ("I32", [512, 64]), "l.scales": ("F16", [4, 512])}
    )
    assert "lower bound" in read_safetensors_weights(path).notes[0]


def test_snapshot_folder_uses_exact_bytes(tmp_path: Path) -> None:
    """A Llama-3.2-1B-shaped snapshot: config.json plus a safetensors file with its real tensor shapes."""
    shutil.copy(CONFIGS / "llama-3.2-1b-instruct.json", tmp_path / "config.json")
    h, inter, kv, vocab = 2048, 8192, 512, 128256
    tensors = {"model.embed_tokens.weight": ("BF16", [vocab, h]), "model.norm.weight": ("BF16", [h])}
    for i in range(16):
        p = f"model.layers.{i}."
        tensors |= {
            p + "self_attn.q_proj.weight": ("BF16", [h, h]),
            p + "self_attn.k_proj.weight": ("BF16", [kv, h]),
            p + "self_attn.v_proj.weight": ("BF16", [kv, h]),
            p + "self_attn.o_proj.weight": ("BF16", [h, h]),
            p + "mlp.gate_proj.weight": ("BF16", [inter, h]),
            p + "mlp.up_proj.weight": ("BF16", [inter, h]),
            p + "mlp.down_proj.weight": ("BF16", [h, inter]),
            p + "input_layernorm.weight": ("BF16", [h]),
            p + "post_attention_layernorm.weight": ("BF16", [h]),
        }
    write_safetensors(tmp_path / "model.safetensors", tensors)
    result = import_hf_config(tmp_path)
    # Llama-3.2-1B: 1,235,814,400 parameters (tied embeddings), 2,471,628,800 bytes in bf16
    assert result.model.params_total == 1_235_814_400
    assert result.model.weights_bytes() == 2_471_628_800
    assert "exact" in result.model.weight_formats[0].source
    assert any("safetensors" in n for n in result.notes)


def test_moe_active_params_from_expert_tensors(tmp_path: Path) -> None:
    cfg = {
        "model_type": "mixtral",
        "num_hidden_layers": 1,
        "hidden_size": 64,
        "num_attention_heads": 4,
        "num_local_experts": 8,
        "num_experts_per_tok": 2,
        "intermediate_size": 128,
        "vocab_size": 10,
    }
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    tensors = {f"model.layers.0.block_sparse_moe.experts.{e}.w1.weight": ("BF16", [128, 64]) for e in range(8)}
    tensors["model.embed_tokens.weight"] = ("BF16", [10, 64])
    write_safetensors(tmp_path / "model.safetensors", tensors)
    m = import_hf_config(tmp_path).model
    assert m.params_total == 8 * 128 * 64 + 640
    assert m.params_active == 2 * 128 * 64 + 640


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\x01\x02", "too short"),
        (struct.pack("<Q", 1 << 40) + b"{}", "impossible"),
        (struct.pack("<Q", 4) + b"\xff\xfe{}", "not JSON"),
        (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
        (struct.pack("<Q", 2) + b"{}", None),
    ],
)
def test_hostile_headers(tmp_path: Path, raw: bytes, message: str | None) -> None:
    path = tmp_path / "x.safetensors"
    path.write_bytes(raw)
    if message is None:
        assert read_safetensors_weights(path).n_params == 0
        return
    with pytest.raises(InputError, match=message):
        read_safetensors_weights(path)


@pytest.mark.parametrize(
    "entry",
    [
        {"dtype": "BF16", "shape": [4], "data_offsets": [0, 1 << 40]},
        {"dtype": "BF16", "shape": [-4], "data_offsets": [0, 8]},
        {"dtype": "BF16", "shape": "4", "data_offsets": [0, 8]},
        {"dtype": "BF16", "shape": [4], "data_offsets": [8, 0]},
        "not an object",
    ],
)
def test_malformed_tensor_entries(tmp_path: Path, entry: Any) -> None:
    raw = json.dumps({"t": entry}).encode()
    path = tmp_path / "x.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 8)
    with pytest.raises(InputError):
        read_safetensors_weights(path)


def test_bad_index_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no \.safetensors"):
        read_safetensors_weights(tmp_path)
    (tmp_path / "model.safetensors.index.json").write_text('{"weight_map": {"a": "../../etc/passwd"}}')
    with pytest.raises(InputError, match="unexpected shard"):
        read_safetensors_weights(tmp_path)
    (tmp_path / "model.safetensors.index.json").write_text("{oops")
    with pytest.raises(InputError, match="not valid JSON"):
        read_safetensors_weights(tmp_path)
