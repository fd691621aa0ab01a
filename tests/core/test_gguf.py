"""GGUF header reader and importer, on small GGUF files written by the tests for each layout,
plus hostile files (truncated, wrong magic, absurd counts, unknown types)."""

from __future__ import annotations

import contextlib
import struct
import time
from pathlib import Path
from typing import Any

import pytest

from kvdesk.core.errors import InputError
from kvdesk.core.importers.ggml_types import GGML_TYPES, tensor_bytes
from kvdesk.core.importers.gguf import import_gguf
from kvdesk.core.importers.gguf_reader import SkippedArray, read_gguf_header

# gguf value types (ggml/docs/gguf.md)
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
_CODES = {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f", BOOL: "?", U64: "Q", I64: "q", F64: "d"}
F16_T, Q4_K_T, Q8_0_T, Q6_K_T, F32_T = 1, 12, 8, 14, 0


def _s(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def _value(vtype: int, value: Any) -> bytes:
    if vtype == STR:
        return _s(value)
    if vtype == ARR:
        etype, items = value
        body = b"".join(_value(etype, v) for v in items)
        return struct.pack("<IQ", etype, len(items)) + body
    return struct.pack("<" + _CODES[vtype], value)


def gguf_bytes(
    kv: dict[str, tuple[int, Any]],
    tensors: list[tuple[str, tuple[int, ...], int]],
    *,
    version: int = 3,
    alignment: int = 32,
) -> tuple[bytes, int]:
    """Header bytes of a GGUF file and the size of its data section (tensor data is zeros)."""
    out = [b"GGUF", struct.pack("<IQQ", version, len(tensors), len(kv))]
    for key, (vtype, value) in kv.items():
        out += [_s(key), struct.pack("<I", vtype), _value(vtype, value)]
    offset = 0
    for name, shape, ttype in tensors:
        out += [_s(name), struct.pack("<I", len(shape)), struct.pack(f"<{len(shape)}Q", *shape)]
        out.append(struct.pack("<IQ", ttype, offset))
        offset += -(-tensor_bytes(ttype, shape) // alignment) * alignment
    header = b"".join(out)
    header += b"\0" * (-len(header) % alignment)
    return header, offset


def write_gguf(
    path: Path, kv: dict[str, tuple[int, Any]], tensors: list[tuple[str, tuple[int, ...], int]], **opts: Any
) -> Path:
    header, data = gguf_bytes(kv, tensors, **opts)
    with path.open("wb") as fh:
        fh.write(header)
        fh.truncate(len(header) + data)  # sparse zeros: big tensors cost no disk
    return path


def arch_kv(arch: str, n_layer: int, **keys: tuple[int, Any]) -> dict[str, tuple[int, Any]]:
    kv: dict[str, tuple[int, Any]] = {
        "general.architecture": (STR, arch),
        "general.name": (STR, f"test {arch}"),
        f"{arch}.block_count": (U32, n_layer),
        f"{arch}.context_length": (U32, 131072),
        f"{arch}.embedding_length": (U32, 4096),
        f"{arch}.attention.head_count": (U32, 32),
        "tokenizer.ggml.tokens": (ARR, (STR, [f"t{i}" for i in range(100)])),
    }
    kv.update({f"{arch}.{k}": v for k, v in keys.items()})
    return kv


def llama_tensors(n_layer: int, ttype: int = Q4_K_T) -> list[tuple[str, tuple[int, ...], int]]:
    t = [("token_embd.weight", (4096, 100), Q8_0_T)]
    for i in range(n_layer):
        t += [(f"blk.{i}.attn_q.weight", (4096, 4096), ttype), (f"blk.{i}.attn_k.weight", (4096, 1024), ttype)]
    return t


def test_plain_gqa_llama(tmp_path: Path) -> None:
    kv = arch_kv("llama", 4, **{"attention.head_count_kv": (U32, 8)})
    kv["general.file_type"] = (U32, 15)
    path = write_gguf(tmp_path / "m.gguf", kv, llama_tensors(4))
    result = import_gguf(path)
    m = result.model
    assert [(g.count, g.kind, g.n_kv_heads, g.head_dim_k, g.head_dim_v) for g in m.layers] == [(4, "full", 8, 128, 128)]
    # Q4_K: 144 B per 256 values; Q8_0: 34 B per 32 values
    expected = 4 * (4096 * 4096 + 4096 * 1024) // 256 * 144 + 4096 * 100 // 32 * 34
    assert m.weights_bytes() == expected
    assert m.dtype == "Q4_K_M"
    assert m.params_total == 4 * (4096 * 4096 + 4096 * 1024) + 4096 * 100
    assert m.vocab_size == 100 and m.native_context == 131072
    assert result.origin.gguf_size == path.stat().st_size


def test_per_layer_head_count_kv_array(tmp_path: Path) -> None:
    # e.g. OpenELM / Jamba: one head_count_kv per layer
    kv = arch_kv("llama", 4, **{"attention.head_count_kv": (ARR, (U32, [8, 8, 4, 2]))})
    m = import_gguf(write_gguf(tmp_path / "m.gguf", kv, [])).model
    assert [(g.count, g.n_kv_heads) for g in m.layers] == [(2, 8), (1, 4), (1, 2)]


def test_gemma3_sliding_pattern(tmp_path: Path) -> None:
    kv = arch_kv(
        "gemma3",
        12,
        **{
            "attention.head_count_kv": (U32, 4),
            "attention.key_length": (U32, 256),
            "attention.value_length": (U32, 256),
            "attention.sliding_window": (U32, 1024),
        },
    )
    m = import_gguf(write_gguf(tmp_path / "g.gguf", kv, [])).model
    kinds = [g.kind for g in m.iter_layers()]
    assert kinds == (["sliding"] * 5 + ["full"]) * 2  # llama.cpp set_swa_pattern(6)
    assert {g.window for g in m.layers if g.kind == "sliding"} == {1024}
    assert m.layers[0].head_dim_k == 256  # key_length, not 4096/32


def test_sliding_window_pattern_key_wins(tmp_path: Path) -> None:
    kv = arch_kv(
        "gemma3",
        4,
        **{
            "attention.sliding_window": (U32, 512),
            "attention.sliding_window_pattern": (ARR, (BOOL, [True, False, False, True])),
        },
    )
    m = import_gguf(write_gguf(tmp_path / "g.gguf", kv, [])).model
    assert [g.kind for g in m.iter_layers()] == ["sliding", "full", "full", "sliding"]


def test_gpt_oss_alternates_and_counts_active_experts(tmp_path: Path) -> None:
    kv = arch_kv(
        "gpt-oss",
        4,
        **{
            "attention.head_count_kv": (U32, 8),
            "attention.key_length": (U32, 64),
            "attention.value_length": (U32, 64),
            "attention.sliding_window": (U32, 128),
            "expert_count": (U32, 32),
            "expert_used_count": (U32, 4),
        },
    )
    tensors = [("blk.0.ffn_up_exps.weight", (2880, 2880, 32), 39), ("blk.0.attn_q.weight", (2880, 4096), 30)]
    m = import_gguf(write_gguf(tmp_path / "o.gguf", kv, tensors)).model
    assert [g.kind for g in m.iter_layers()] == ["sliding", "full"] * 2
    exps = 2880 * 2880 * 32
    assert m.params_total == exps + 2880 * 4096
    assert m.params_active == 2880 * 4096 + exps * 4 // 32
    assert m.weights_bytes() == exps // 32 * 17 + 2880 * 4096 * 2  # MXFP4 17 B / 32 values, BF16


def test_llama4_chunked_attention(tmp_path: Path) -> None:
    m = import_gguf(write_gguf(tmp_path / "l4.gguf", arch_kv("llama4", 8), [])).model
    kinds = [g.kind for g in m.iter_layers()]
    assert kinds == (["chunked"] * 3 + ["full"]) * 2
    assert {g.window for g in m.layers if g.kind == "chunked"} == {8192}


def test_deepseek2_mla_keys(tmp_path: Path) -> None:
    kv = arch_kv(
        "deepseek2",
        3,
        **{
            "attention.head_count": (U32, 128),
            "attention.head_count_kv": (U32, 1),
            "attention.key_length": (U32, 576),
            "attention.value_length": (U32, 512),
            "attention.key_length_mla": (U32, 192),
            "attention.value_length_mla": (U32, 128),
            "attention.kv_lora_rank": (U32, 512),
            "rope.dimension_count": (U32, 64),
        },
    )
    m = import_gguf(write_gguf(tmp_path / "ds.gguf", kv, [])).model
    g = m.layers[0]
    assert (g.count, g.kind, g.kv_lora_rank, g.rope_dim) == (3, "mla", 512, 64)
    assert (g.n_kv_heads, g.head_dim_k, g.head_dim_v) == (128, 192, 128)
    assert g.k_width() == 576 and g.v_width() == 0


def test_qwen3next_recurrent_state(tmp_path: Path) -> None:
    kv = arch_kv(
        "qwen3next",
        8,
        **{
            "attention.head_count_kv": (U32, 2),
            "attention.key_length": (U32, 256),
            "ssm.conv_kernel": (U32, 4),
            "ssm.inner_size": (U32, 4096),
            "ssm.state_size": (U32, 128),
            "ssm.group_count": (U32, 16),
        },
    )
    m = import_gguf(write_gguf(tmp_path / "q.gguf", kv, [])).model
    assert [g.kind for g in m.iter_layers()] == (["recurrent"] * 3 + ["full"]) * 2
    assert m.layers[0].state_bytes == 4 * (3 * (4096 + 2 * 16 * 128) + 128 * 4096)


def test_jamba_zero_kv_heads_are_mamba_layers(tmp_path: Path) -> None:
    heads = [0, 0, 0, 0, 8, 0, 0, 0]
    kv = arch_kv(
        "jamba",
        8,
        **{
            "attention.head_count_kv": (ARR, (U32, heads)),
            "ssm.conv_kernel": (U32, 4),
            "ssm.inner_size": (U32, 8192),
            "ssm.state_size": (U32, 16),
        },
    )
    m = import_gguf(write_gguf(tmp_path / "j.gguf", kv, [])).model
    assert [g.kind for g in m.iter_layers()] == ["recurrent"] * 4 + ["full"] + ["recurrent"] * 3
    assert m.layers[0].state_bytes == 4 * (3 * 8192 + 16 * 8192)  # Mamba-1: no groups


def test_split_gguf_sums_all_parts(tmp_path: Path) -> None:
    kv = arch_kv("llama", 2, **{"attention.head_count_kv": (U32, 8)})
    kv["split.count"] = (U16, 2)
    write_gguf(tmp_path / "m-00001-of-00002.gguf", kv, llama_tensors(2)[:2])
    write_gguf(tmp_path / "m-00002-of-00002.gguf", {"split.count": (U16, 2)}, llama_tensors(2)[2:])
    m = import_gguf(tmp_path / "m-00001-of-00002.gguf").model
    assert m.params_total == 2 * (4096 * 4096 + 4096 * 1024) + 4096 * 100
    (tmp_path / "m-00002-of-00002.gguf").unlink()
    with pytest.raises(InputError, match="missing"):
        import_gguf(tmp_path / "m-00001-of-00002.gguf")


def test_big_vocabulary_is_skipped_not_kept(tmp_path: Path) -> None:
    kv = arch_kv("llama", 1)
    kv["tokenizer.ggml.tokens"] = (ARR, (STR, [f"tok{i}" for i in range(20_000)]))
    kv["tokenizer.ggml.scores"] = (ARR, (F32, [0.0] * 20_000))
    header = read_gguf_header(write_gguf(tmp_path / "v.gguf", kv, []))
    assert header.kv["tokenizer.ggml.tokens"] == SkippedArray(STR, 20_000)
    assert header.kv["tokenizer.ggml.scores"] == SkippedArray(F32, 20_000)
    assert import_gguf(tmp_path / "v.gguf").model.vocab_size == 20_000


def test_type_table_matches_gguf_package() -> None:
    gguf = pytest.importorskip("gguf")
    for type_id, t in GGML_TYPES.items():
        if t.name == "Q8_1":
            # gguf-py still lists the old float d/s layout (40 B); ggml-common.h block_q8_1 is now
            # ggml_half2 ds + 32 int8 = 36 B. Q8_1 is an internal activation type, never stored.
            continue
        assert gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(type_id)] == (t.block_values, t.block_bytes), t.name


def test_reader_agrees_with_gguf_package_writer(tmp_path: Path) -> None:
    gguf = pytest.importorskip("gguf")
    import numpy as np

    path = tmp_path / "w.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(2)
    w.add_head_count(8)
    w.add_head_count_kv(2)
    w.add_embedding_length(256)
    w.add_context_length(4096)
    w.add_token_list([f"t{i}" for i in range(5000)])
    w.add_tensor("blk.0.attn_q.weight", np.zeros((256, 256), dtype=np.float16))
    w.add_tensor("blk.1.attn_q.weight", np.zeros((64, 256), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    m = import_gguf(path).model
    assert m.weights_bytes() == 256 * 256 * 2 + 64 * 256 * 4
    assert m.vocab_size == 5000
    assert [(g.count, g.n_kv_heads, g.head_dim_k) for g in m.layers] == [(2, 2, 32)]


# ---- hostile files -------------------------------------------------------------------------


def _good(tmp_path: Path) -> bytes:
    kv = arch_kv("llama", 2, **{"attention.head_count_kv": (U32, 8)})
    small = [
        ("token_embd.weight", (256, 100), F16_T),
        ("blk.0.attn_q.weight", (256, 256), F16_T),
        ("blk.1.attn_k.weight", (256, 64), F16_T),
    ]
    return (write_gguf(tmp_path / "good.gguf", kv, small)).read_bytes()


def test_truncated_everywhere_raises_input_error(tmp_path: Path) -> None:
    data = _good(tmp_path)
    header_end = data.index(b"blk.1.attn_k.weight") + 60
    bad = tmp_path / "cut.gguf"
    for cut in [*range(0, 64, 3), *range(64, header_end, 97), header_end + 100, len(data) - 1]:
        bad.write_bytes(data[:cut])
        with pytest.raises(InputError):
            import_gguf(bad)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (lambda d: b"GGML" + d[4:], "not a GGUF file"),
        (lambda d: d[:4] + struct.pack("<I", 1) + d[8:], "version 1"),
        (lambda d: d[:8] + struct.pack("<Q", 1 << 40) + d[16:], "tensors"),
        (lambda d: d[:16] + struct.pack("<Q", 1 << 50) + d[24:], "keys"),
        (lambda d: d[:24] + struct.pack("<Q", 1 << 60) + d[32:], "claims"),
    ],
)
def test_bad_headers(tmp_path: Path, patch: Any, message: str) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(patch(_good(tmp_path)))
    with pytest.raises(InputError, match=message):
        import_gguf(bad)


def test_unknown_value_type_and_tensor_type(tmp_path: Path) -> None:
    data = _good(tmp_path)
    key = b"general.architecture"
    at = data.index(key) + len(key)
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(data[:at] + struct.pack("<I", 99) + data[at + 4 :])
    with pytest.raises(InputError, match="unknown value type"):
        import_gguf(bad)
    kv = arch_kv("llama", 1)
    write_gguf(bad, kv, [("x", (32,), F16_T)])
    raw = bytearray(bad.read_bytes())
    at = raw.index(b"\x01\x00\x00\x00" + struct.pack("<Q", 32)) + 12
    raw[at : at + 4] = struct.pack("<I", 77)
    bad.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="unknown ggml tensor type 77"):
        import_gguf(bad)


def test_absurd_array_and_dims(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    kv = arch_kv("llama", 1)
    kv["x.array"] = (ARR, (U32, [1]))
    data = bytearray(write_gguf(bad, kv, []).read_bytes())
    at = data.index(b"x.array") + len(b"x.array") + 8
    data[at : at + 8] = struct.pack("<Q", 1 << 61)
    bad.write_bytes(bytes(data))
    with pytest.raises(InputError, match="more than the file holds"):
        import_gguf(bad)
    write_gguf(bad, arch_kv("llama", 1), [("t", (32, 1, 1, 1), F16_T)])
    data = bytearray(bad.read_bytes())
    at = data.index(b"\x04\x00\x00\x00" + struct.pack("<Q", 32))
    data[at : at + 4] = struct.pack("<I", 9)
    bad.write_bytes(bytes(data))
    with pytest.raises(InputError, match="dimensions"):
        import_gguf(bad)


def test_tensor_beyond_end_of_file(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", arch_kv("llama", 1), [("t", (256, 16), F16_T)])
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size - 10)
    with pytest.raises(InputError, match="outside the file"):
        import_gguf(path)


def test_huge_file_picked_by_mistake_is_refused_fast(tmp_path: Path) -> None:
    big = tmp_path / "movie.mkv"
    with big.open("wb") as fh:
        fh.write(b"\x1aE\xdf\xa3")
        fh.truncate(10 << 30)  # 10 GiB, sparse
    start = time.perf_counter()
    with pytest.raises(InputError, match="not a GGUF file"):
        import_gguf(big)
    assert time.perf_counter() - start < 0.5


def test_folder_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="folder"):
        import_gguf(tmp_path)
    with pytest.raises(InputError, match="cannot read"):
        import_gguf(tmp_path / "nope.gguf")


def test_nemotron_h_mlp_only_layers_are_not_recurrent(tmp_path: Path) -> None:
    kv = arch_kv(
        "nemotron_h",
        4,
        **{
            "attention.head_count_kv": (ARR, (U32, [0, 0, 8, 0])),
            "feed_forward_length": (ARR, (U32, [0, 21504, 0, 0])),
            "ssm.conv_kernel": (U32, 4),
            "ssm.inner_size": (U32, 7680),
            "ssm.state_size": (U32, 128),
            "ssm.group_count": (U32, 8),
        },
    )
    m = import_gguf(write_gguf(tmp_path / "n.gguf", kv, [])).model
    assert [g.kind for g in m.iter_layers()] == ["recurrent", "none", "full", "recurrent"]


def test_random_corruption_only_raises_input_error(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Flip bytes anywhere in the header: the reader answers with a model or an InputError, nothing else."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    base = tmp_path_factory.mktemp("fuzz")
    good = _good(base)
    header_len = good.index(b"blk.1.attn_k.weight") + 64
    path = base / "fuzz.gguf"

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(st.tuples(st.integers(0, header_len - 1), st.integers(0, 255)), min_size=1, max_size=6))
    def check(flips: list[tuple[int, int]]) -> None:
        data = bytearray(good)
        for at, value in flips:
            data[at] = value
        path.write_bytes(bytes(data))
        with contextlib.suppress(InputError):
            import_gguf(path)

    check()


def test_text_kept_from_a_header_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kvdesk.core.importers import gguf_reader

    monkeypatch.setattr(gguf_reader, "MAX_KEPT", 1000)
    kv = arch_kv("llama", 1)
    kv["general.description"] = (STR, "x" * 2000)
    with pytest.raises(InputError, match="MiB of text"):
        import_gguf(write_gguf(tmp_path / "t.gguf", kv, []))
