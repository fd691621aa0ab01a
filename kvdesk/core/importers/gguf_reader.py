"""A fast, hardened reader of GGUF headers: key/values and tensor infos, never the tensor data.

Format (ggml/docs/gguf.md, ggml/src/gguf.cpp): ``GGUF`` magic, uint32 version (2 or 3),
uint64 tensor count, uint64 key/value count, then key/values (uint64-length strings, uint32 value
type) and tensor infos (name, uint32 n_dims ≤ 4, uint64 dims, uint32 ggml type, uint64 offset);
the tensor data starts at the next ``general.alignment`` boundary (default 32).

Speed: big arrays (the tokenizer vocabulary, merges, scores) are skipped, not parsed: fixed-size
elements by one jump, strings by hopping over their length prefixes. Arrays of up to
``SMALL_ARRAY`` elements (per-layer ``head_count_kv`` …) are kept.
Safety: the file is memory-mapped (nothing is read that is not needed); every count and length is
checked against the bytes left before it is used, so a truncated or hostile file raises
``InputError`` quickly, whatever it claims.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

from kvdesk.core.errors import InputError
from kvdesk.core.importers.ggml_types import tensor_bytes

GGUF_MAGIC = b"GGUF"
SMALL_ARRAY = 4096
MAX_TENSORS = 1 << 20
MAX_KV = 1 << 16
MAX_KEY_LEN = 1 << 16
MAX_STRING = 16 << 20
MAX_KEPT = 64 << 20  # text kept from one header (vocabularies are skipped, not kept)
MAX_DIMS = 4
DEFAULT_ALIGNMENT = 32

# gguf value types (enum gguf_type): fixed sizes and struct codes
_FIXED: dict[int, tuple[str, int]] = {
    0: ("B", 1),
    1: ("b", 1),
    2: ("H", 2),
    3: ("h", 2),
    4: ("I", 4),
    5: ("i", 4),
    6: ("f", 4),
    7: ("?", 1),
    10: ("Q", 8),
    11: ("q", 8),
    12: ("d", 8),
}
_STRING, _ARRAY = 8, 9
_U64 = struct.Struct("<Q")


@dataclass(frozen=True)
class SkippedArray:
    """An array too long to keep: its element type and length only."""

    elem_type: int
    count: int


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    type_id: int
    offset: int
    nbytes: int


@dataclass
class GgufHeader:
    path: Path
    version: int
    file_size: int
    kv: dict[str, Any] = field(default_factory=dict)
    tensors: list[TensorInfo] = field(default_factory=list)
    data_offset: int = 0

    @property
    def tensor_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    @property
    def n_params(self) -> int:
        total = 0
        for t in self.tensors:
            n = 1
            for d in t.shape:
                n *= d
            total += n
        return total


class _Cursor:
    def __init__(self, buf: mmap.mmap | bytes, name: str) -> None:
        self.buf = buf
        self.pos = 0
        self.size = len(buf)
        self.name = name
        self.kept = 0  # bytes of text kept so far (bounded by MAX_KEPT)

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.size:
            raise InputError(f"{self.name}: truncated GGUF file (ends inside {what} at byte {self.pos})")

    def unpack(self, code: str, size: int, what: str) -> Any:
        self.need(size, what)
        (value,) = struct.unpack_from("<" + code, self.buf, self.pos)
        self.pos += size
        return value

    def u32(self, what: str) -> int:
        return int(self.unpack("I", 4, what))

    def u64(self, what: str) -> int:
        return int(self.unpack("Q", 8, what))

    def string(self, what: str, limit: int | None = None) -> str:
        n = self.u64(what)
        if limit is not None and n > limit:
            raise InputError(f"{self.name}: {what} claims {n:,} bytes (limit {limit:,}): not a valid GGUF file")
        self.need(n, what)
        self.kept += n
        if self.kept > MAX_KEPT:
            raise InputError(f"{self.name}: header holds more than {MAX_KEPT >> 20} MiB of text: not a valid GGUF file")
        raw = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def skip_strings(self, count: int, what: str) -> None:
        """Hop over ``count`` length-prefixed strings without decoding them (the hot loop)."""
        unpack = _U64.unpack_from
        buf, pos = self.buf, self.pos
        try:
            for _ in repeat(None, count):
                pos += 8 + unpack(buf, pos)[0]
        except (struct.error, OverflowError):
            pos = self.size + 1
        if pos > self.size:
            self.pos = self.size
            raise InputError(f"{self.name}: truncated GGUF file (ends inside {what})")
        self.pos = pos


def _value(cur: _Cursor, vtype: int, key: str, depth: int = 0) -> Any:
    if vtype in _FIXED:
        code, size = _FIXED[vtype]
        return cur.unpack(code, size, f"value of '{key}'")
    if vtype == _STRING:
        return cur.string(f"value of '{key}'", MAX_STRING)
    if vtype == _ARRAY:
        if depth:
            raise InputError(f"{cur.name}: nested array in '{key}' is not supported")
        return _array(cur, key)
    raise InputError(f"{cur.name}: key '{key}' has unknown value type {vtype}: not a valid GGUF file")


def _array(cur: _Cursor, key: str) -> Any:
    etype = cur.u32(f"array type of '{key}'")
    count = cur.u64(f"array length of '{key}'")
    left = cur.size - cur.pos
    if etype in _FIXED:
        code, size = _FIXED[etype]
        if count * size > left:
            raise InputError(f"{cur.name}: array '{key}' claims {count:,} elements, more than the file holds")
        if count > SMALL_ARRAY:
            cur.pos += count * size
            return SkippedArray(etype, count)
        values = struct.unpack_from(f"<{count}{code}", cur.buf, cur.pos)
        cur.pos += count * size
        return list(values)
    if etype == _STRING:
        if count * 8 > left:
            raise InputError(f"{cur.name}: array '{key}' claims {count:,} strings, more than the file holds")
        if count > SMALL_ARRAY:
            cur.skip_strings(count, f"array '{key}'")
            return SkippedArray(etype, count)
        return [cur.string(f"array '{key}'", MAX_STRING) for _ in range(count)]
    raise InputError(f"{cur.name}: array '{key}' has unsupported element type {etype}")


def _tensor_info(cur: _Cursor) -> tuple[str, tuple[int, ...], int, int]:
    name = cur.string("tensor name", MAX_KEY_LEN)
    n_dims = cur.u32(f"dimensions of '{name}'")
    if not 1 <= n_dims <= MAX_DIMS:
        raise InputError(f"{cur.name}: tensor '{name}' has {n_dims} dimensions (GGUF allows 1–{MAX_DIMS})")
    shape = tuple(cur.u64(f"shape of '{name}'") for _ in range(n_dims))
    if any(d > 1 << 40 for d in shape):
        raise InputError(f"{cur.name}: tensor '{name}' has an absurd shape {shape}")
    type_id = cur.u32(f"type of '{name}'")
    offset = cur.u64(f"offset of '{name}'")
    return name, shape, type_id, offset


def _parse(buf: mmap.mmap | bytes, path: Path) -> GgufHeader:
    name = path.name
    cur = _Cursor(buf, name)
    if cur.size < 4 or bytes(buf[:4]) != GGUF_MAGIC:
        raise InputError(f"{name}: not a GGUF file (it does not start with 'GGUF')")
    cur.pos = 4
    version = cur.u32("version")
    if version not in (2, 3):
        raise InputError(f"{name}: GGUF version {version} is not supported (2 and 3 are)")
    n_tensors = cur.u64("tensor count")
    n_kv = cur.u64("key/value count")
    if n_tensors > MAX_TENSORS or n_kv > MAX_KV:
        raise InputError(f"{name}: claims {n_tensors:,} tensors and {n_kv:,} keys: not a valid GGUF file")
    header = GgufHeader(path=path, version=version, file_size=cur.size)
    for _ in range(n_kv):
        key = cur.string("key", MAX_KEY_LEN)
        header.kv[key] = _value(cur, cur.u32(f"type of '{key}'"), key)
    raw = [_tensor_info(cur) for _ in range(n_tensors)]
    align = header.kv.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(align, int) or align < 1 or align & (align - 1) or align > 1 << 20:
        raise InputError(f"{name}: general.alignment {align!r} is not a power of two")
    header.data_offset = (cur.pos + align - 1) // align * align
    data_size = cur.size - header.data_offset
    for t_name, shape, type_id, offset in raw:
        nbytes = tensor_bytes(type_id, shape, t_name)
        if offset % align or offset + nbytes > data_size:
            raise InputError(
                f"{name}: tensor '{t_name}' lies outside the file (offset {offset:,}, {nbytes:,} bytes): "
                "the file is truncated or damaged"
            )
        header.tensors.append(TensorInfo(t_name, shape, type_id, offset, nbytes))
    return header


def read_gguf_header(path: Path | str) -> GgufHeader:
    """Read the header of a GGUF file; raises InputError naming the problem on any bad input."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            size = p.stat().st_size
            if size < 24:
                head = fh.read(4)
                if head != GGUF_MAGIC:
                    raise InputError(f"{p.name}: not a GGUF file (it does not start with 'GGUF')")
                raise InputError(f"{p.name}: truncated GGUF file ({size} bytes)")
            if fh.read(4) != GGUF_MAGIC:
                raise InputError(f"{p.name}: not a GGUF file (it does not start with 'GGUF')")
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _parse(buf, p)
    except OSError as exc:
        raise InputError(f"{p.name}: cannot read ({exc.strerror or exc})") from None
