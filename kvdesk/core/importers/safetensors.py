"""Exact weight bytes and parameter counts from safetensors headers (never the tensor data).

A ``.safetensors`` file starts with a little-endian uint64 N and N bytes of JSON mapping each tensor
name to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (safetensors docs, "Format").
A sharded checkpoint lists its shards in ``model.safetensors.index.json`` (``weight_map``).
Bytes come from the data offsets (exact); parameters from the shapes. Packed formats (GPTQ/AWQ
``qweight`` int32 holding 8 int4 values, MXFP4 blocks in uint8) count stored elements, not weights:
the result says so.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvdesk.core.errors import InputError

MAX_HEADER = 100 << 20  # the safetensors library refuses headers above 100 MB too
MAX_SHARDS = 4096
INDEX_NAME = "model.safetensors.index.json"
# bytes per element of each safetensors dtype
DTYPE_BYTES = {
    "F64": 8,
    "I64": 8,
    "U64": 8,
    "F32": 4,
    "I32": 4,
    "U32": 4,
    "F16": 2,
    "BF16": 2,
    "I16": 2,
    "U16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "F8_E8M0": 1,
}
PACKED = {"I32", "U32", "U8", "I8"}


@dataclass
class SafetensorsWeights:
    bytes_by_dtype: dict[str, int] = field(default_factory=dict)
    params_by_dtype: dict[str, int] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    expert_params: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes_by_dtype.values())

    @property
    def n_params(self) -> int:
        return sum(self.params_by_dtype.values())

    @property
    def main_dtype(self) -> str:
        return max(self.bytes_by_dtype, key=lambda k: self.bytes_by_dtype[k]) if self.bytes_by_dtype else ""


def read_header(path: Path) -> dict[str, Any]:
    """The JSON header of one safetensors file, checked against the file's size."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise InputError(f"{path.name}: too short to be a safetensors file")
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER or n + 8 > size:
                raise InputError(f"{path.name}: header length {n:,} is impossible (file is {size:,} B)")
            raw = fh.read(n)
    except OSError as exc:
        raise InputError(f"{path.name}: cannot read ({exc.strerror or exc})") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # bad UTF-8/JSON, a 5000-digit number, a nesting bomb
        raise InputError(f"{path.name}: not a safetensors file (header is not JSON)") from None
    if not isinstance(header, dict):
        raise InputError(f"{path.name}: not a safetensors file (header is not a JSON object)")
    _check(header, path, size - 8 - n)
    return header


def _check(header: dict[str, Any], path: Path, data_size: int) -> None:
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict):
            raise InputError(f"{path.name}: tensor '{name}' has no dtype/shape/offsets")
        dtype, shape, offs = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        ok = (
            isinstance(dtype, str)
            and isinstance(shape, list)
            and all(isinstance(d, int) and 0 <= d < 1 << 40 for d in shape)
            and isinstance(offs, list)
            and len(offs) == 2
            and all(isinstance(o, int) for o in offs)
        )
        if not ok or not isinstance(offs, list):
            raise InputError(f"{path.name}: tensor '{name}' has a malformed entry")
        if not 0 <= offs[0] <= offs[1] <= data_size:
            raise InputError(f"{path.name}: tensor '{name}' lies outside the file (truncated download?)")


def _shards(target: Path) -> list[Path]:
    if target.is_file():
        if target.name.endswith(".index.json"):
            return _from_index(target)
        return [target]
    if not target.is_dir():
        raise InputError(f"{target}: no such file or folder")
    index = target / INDEX_NAME
    if index.is_file():
        return _from_index(index)
    files = sorted(target.glob("*.safetensors"))
    if not files:
        raise InputError(f"{target}: no .safetensors files in this folder")
    return files


def _from_index(index: Path) -> list[Path]:
    if index.stat().st_size > 64 << 20:
        raise InputError(f"{index.name}: too large for an index file")
    try:
        doc = json.loads(index.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:  # bad UTF-8/JSON, a 5000-digit number, a nesting bomb
        raise InputError(f"{index.name}: not valid JSON ({exc})") from None
    weight_map: Any = doc.get("weight_map") if isinstance(doc, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise InputError(f"{index.name}: no weight_map")
    names = sorted({str(v) for v in weight_map.values()})
    if len(names) > MAX_SHARDS or any("/" in n or "\\" in n or n.startswith(".") for n in names):
        raise InputError(f"{index.name}: weight_map names unexpected shard files")
    paths = [index.parent / n for n in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise InputError(f"{index.name}: shard(s) missing: {', '.join(missing[:3])}")
    return paths


def read_safetensors_weights(folder_or_file: Path | str) -> SafetensorsWeights:
    """Sum bytes and elements per dtype over every tensor of a checkpoint (headers only)."""
    result = SafetensorsWeights()
    for shard in _shards(Path(folder_or_file)):
        header = read_header(shard)
        result.files.append(shard)
        for name, info in header.items():
            if name == "__metadata__":
                continue
            dtype = info["dtype"].upper()
            n = 1
            for d in info["shape"]:
                n *= d
            nbytes = info["data_offsets"][1] - info["data_offsets"][0]
            result.bytes_by_dtype[dtype] = result.bytes_by_dtype.get(dtype, 0) + nbytes
            result.params_by_dtype[dtype] = result.params_by_dtype.get(dtype, 0) + n
            if ".experts." in name or "_exps" in name:
                result.expert_params += n
    packed = sorted(d for d in result.params_by_dtype if d in PACKED)
    if packed:
        result.notes.append(
            f"{'/'.join(packed)} tensors may pack several weights per element (GPTQ/AWQ/MXFP4): "
            "parameter count from shapes is a lower bound"
        )
    return result
