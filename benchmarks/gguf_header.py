"""Benchmark: read the header of a synthetic GGUF file (150k-token vocabulary, ~300 tensors).

Times kvdesk's header reader (``import_gguf``: key/values + tensor infos → ModelSpec) against the
``gguf`` package's ``GGUFReader`` on the same file, in the same run. The file is Llama-3.1-8B-shaped
(32 layers × 9 tensors + 3, Q4_K) with a 150,000-entry vocabulary, scores, token types and merges;
tensor data is a sparse hole, so the file costs almost no disk. Installs ``gguf`` with pip when it
is missing. Prints one JSON object on its last line: kvdesk_s, gguf_reader_s, speedup (median of runs).

    python benchmarks/gguf_header.py [--runs 5] [--reader-runs 1] [--vocab 150000]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kvdesk.core.importers.ggml_types import tensor_bytes
from kvdesk.core.importers.gguf import import_gguf

U32, F32, I32, STR, ARR = 4, 6, 5, 8, 9
Q4_K, F32_T, Q6_K = 12, 0, 14
ALIGN = 32


def _s(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def _kv(key: str, vtype: int, value: Any) -> bytes:
    head = _s(key) + struct.pack("<I", vtype)
    if vtype == STR:
        return head + _s(value)
    if vtype == ARR:
        etype, items = value
        if etype == STR:
            body = b"".join(_s(v) for v in items)
        else:
            body = struct.pack(f"<{len(items)}{'f' if etype == F32 else 'i'}", *items)
        return head + struct.pack("<IQ", etype, len(items)) + body
    return head + struct.pack("<I", value)


def tensors() -> list[tuple[str, tuple[int, ...], int]]:
    h, inter, kv, vocab = 4096, 14336, 1024, 128256
    out = [
        ("token_embd.weight", (h, vocab), Q4_K),
        ("output_norm.weight", (h,), F32_T),
        ("output.weight", (h, vocab), Q6_K),
    ]
    for i in range(32):
        p = f"blk.{i}."
        out += [
            (p + "attn_norm.weight", (h,), F32_T),
            (p + "ffn_norm.weight", (h,), F32_T),
            (p + "attn_q.weight", (h, h), Q4_K),
            (p + "attn_k.weight", (h, kv), Q4_K),
            (p + "attn_v.weight", (h, kv), Q6_K),
            (p + "attn_output.weight", (h, h), Q4_K),
            (p + "ffn_gate.weight", (h, inter), Q4_K),
            (p + "ffn_up.weight", (h, inter), Q4_K),
            (p + "ffn_down.weight", (inter, h), Q6_K),
        ]
    return out


def write_file(path: Path, n_vocab: int) -> int:
    tokens = [f"tok_{i:06d}_{'x' * (i % 7)}" for i in range(n_vocab)]
    merges = [f"t{i % 997} t{i % 1009}" for i in range(n_vocab)]
    kvs = [
        _kv("general.architecture", STR, "llama"),
        _kv("general.name", STR, "synthetic 8B"),
        _kv("general.file_type", U32, 15),
        _kv("llama.block_count", U32, 32),
        _kv("llama.context_length", U32, 131072),
        _kv("llama.embedding_length", U32, 4096),
        _kv("llama.feed_forward_length", U32, 14336),
        _kv("llama.attention.head_count", U32, 32),
        _kv("llama.attention.head_count_kv", U32, 8),
        _kv("llama.rope.dimension_count", U32, 128),
        _kv("tokenizer.ggml.model", STR, "gpt2"),
        _kv("tokenizer.ggml.tokens", ARR, (STR, tokens)),
        _kv("tokenizer.ggml.scores", ARR, (F32, [0.0] * n_vocab)),
        _kv("tokenizer.ggml.token_type", ARR, (I32, [1] * n_vocab)),
        _kv("tokenizer.ggml.merges", ARR, (STR, merges)),
    ]
    infos, offset = [], 0
    for name, shape, ttype in tensors():
        infos.append(_s(name) + struct.pack(f"<I{len(shape)}QIQ", len(shape), *shape, ttype, offset))
        offset += -(-tensor_bytes(ttype, shape) // ALIGN) * ALIGN
    header = b"GGUF" + struct.pack("<IQQ", 3, len(infos), len(kvs)) + b"".join(kvs) + b"".join(infos)
    header += b"\0" * (-len(header) % ALIGN)
    with path.open("wb") as fh:
        fh.write(header)
        fh.truncate(len(header) + offset)
    return len(header) + offset


def gguf_module() -> Any:
    try:
        return importlib.import_module("gguf")
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "gguf"], check=True)
        return importlib.import_module("gguf")


def timed(fn: Any, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--vocab", type=int, default=150_000)
    ap.add_argument("--reader-runs", type=int, default=1, help="GGUFReader runs (each takes seconds)")
    args = ap.parse_args()
    gguf = gguf_module()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synthetic-8b-Q4_K_M.gguf"
        size = write_file(path, args.vocab)
        model = import_gguf(path).model
        assert model.vocab_size == args.vocab and model.n_layers == 32
        kvdesk_s = timed(lambda: import_gguf(path), args.runs)
        reader_s = timed(lambda: gguf.GGUFReader(str(path)), args.reader_runs)
        n_tensors = len(tensors())
    result = {
        "kvdesk_s": round(kvdesk_s, 4),
        "gguf_reader_s": round(reader_s, 4),
        "speedup": round(reader_s / kvdesk_s, 1),
        "target_s": 0.2,
        "vocab": args.vocab,
        "tensors": n_tensors,
        "file_bytes": size,
        "weights_bytes": model.weights_bytes(),
        "gguf_version": importlib.metadata.version("gguf"),
    }
    print(
        f"kvdesk {kvdesk_s * 1000:.1f} ms vs GGUFReader {reader_s * 1000:.1f} ms on {n_tensors} tensors, "
        f"{args.vocab:,}-token vocabulary"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
