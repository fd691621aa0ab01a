"""ggml tensor types: values per block and bytes per block, to size GGUF tensors exactly.

Numbers from ggml/src/ggml.c ``type_traits`` and the block structs in ggml/src/ggml-common.h
(e.g. ``block_q4_K`` = 2×f16 + 12 scale bytes + 128 quant bytes = 144 B per 256 values). Ids are
``enum ggml_type`` in ggml/include/ggml.h; removed ids (4, 5, 31–33, 36–38) are refused.
A test checks this table against the ``gguf`` package's ``GGML_QUANT_SIZES``.
"""

from __future__ import annotations

from typing import NamedTuple

from kvdesk.core.errors import InputError


class GgmlType(NamedTuple):
    name: str
    block_values: int
    block_bytes: int


GGML_TYPES: dict[int, GgmlType] = {
    0: GgmlType("F32", 1, 4),
    1: GgmlType("F16", 1, 2),
    2: GgmlType("Q4_0", 32, 18),
    3: GgmlType("Q4_1", 32, 20),
    6: GgmlType("Q5_0", 32, 22),
    7: GgmlType("Q5_1", 32, 24),
    8: GgmlType("Q8_0", 32, 34),
    9: GgmlType("Q8_1", 32, 36),
    10: GgmlType("Q2_K", 256, 84),
    11: GgmlType("Q3_K", 256, 110),
    12: GgmlType("Q4_K", 256, 144),
    13: GgmlType("Q5_K", 256, 176),
    14: GgmlType("Q6_K", 256, 210),
    15: GgmlType("Q8_K", 256, 292),
    16: GgmlType("IQ2_XXS", 256, 66),
    17: GgmlType("IQ2_XS", 256, 74),
    18: GgmlType("IQ3_XXS", 256, 98),
    19: GgmlType("IQ1_S", 256, 50),
    20: GgmlType("IQ4_NL", 32, 18),
    21: GgmlType("IQ3_S", 256, 110),
    22: GgmlType("IQ2_S", 256, 82),
    23: GgmlType("IQ4_XS", 256, 136),
    24: GgmlType("I8", 1, 1),
    25: GgmlType("I16", 1, 2),
    26: GgmlType("I32", 1, 4),
    27: GgmlType("I64", 1, 8),
    28: GgmlType("F64", 1, 8),
    29: GgmlType("IQ1_M", 256, 56),
    30: GgmlType("BF16", 1, 2),
    34: GgmlType("TQ1_0", 256, 54),
    35: GgmlType("TQ2_0", 256, 66),
    39: GgmlType("MXFP4", 32, 17),
}

# llama.cpp ``enum llama_ftype`` (include/llama.h) → the name users know (general.file_type key).
LLAMA_FTYPES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
}


def ggml_type(type_id: int, tensor: str = "") -> GgmlType:
    try:
        return GGML_TYPES[type_id]
    except KeyError:
        where = f" (tensor '{tensor}')" if tensor else ""
        raise InputError(f"unknown ggml tensor type {type_id}{where}: the file needs a newer kvdesk") from None


def tensor_bytes(type_id: int, shape: tuple[int, ...], tensor: str = "") -> int:
    """Bytes of a tensor of ``shape`` (ggml order: ne0 first) stored as ``type_id``.

    ggml_nbytes: rows of ``ne0`` values cost ``ne0 / block_values * block_bytes``; ne0 must be a
    whole number of blocks.
    """
    t = ggml_type(type_id, tensor)
    ne0 = shape[0] if shape else 1
    if ne0 % t.block_values:
        raise InputError(f"tensor '{tensor}': row of {ne0} values is not a whole number of {t.name} blocks")
    rows = 1
    for d in shape[1:]:
        rows *= d
    return ne0 // t.block_values * t.block_bytes * rows
