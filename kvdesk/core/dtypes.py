"""Storage types for KV caches and weights, with their exact byte costs.

KV element types follow ggml's block layout: a row of n values of a block type costs
``n / block_values * block_bytes`` bytes (ggml.c ``ggml_row_size`` = ``type_size * ne / blck_size``),
type sizes from ggml/src/ggml.c ``type_traits`` (block_q8_0 = 2 + 32 bytes, block_q4_0 = 2 + 16, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from kvdesk.core.errors import InputError


@dataclass(frozen=True)
class KvType:
    name: str
    block_values: int
    block_bytes: int
    quantized: bool = False
    description: str = ""

    @property
    def bytes_per_value(self) -> Fraction:
        return Fraction(self.block_bytes, self.block_values)

    def row_bytes(self, n_values: int) -> int:
        """Bytes of one row of ``n_values`` elements (ggml_row_size); exact for whole blocks."""
        full, rest = divmod(n_values, self.block_values)
        if rest:
            # ggml asserts ne % blck_size == 0; a partial block still costs a whole block.
            full += 1
        return full * self.block_bytes


# ggml/src/ggml.c type_traits; vLLM fp8 caches are 1 byte per value (vllm/utils STR_DTYPE_TO_TORCH_DTYPE).
KV_TYPES: dict[str, KvType] = {
    t.name: t
    for t in (
        KvType("f32", 1, 4, description="32-bit float"),
        KvType("f16", 1, 2, description="16-bit float"),
        KvType("bf16", 1, 2, description="bfloat16"),
        KvType("fp8", 1, 1, True, "8-bit float (e4m3), vLLM/TensorRT"),
        KvType("fp8_e4m3", 1, 1, True, "8-bit float e4m3"),
        KvType("fp8_e5m2", 1, 1, True, "8-bit float e5m2"),
        KvType("q8_0", 32, 34, True, "ggml 8-bit blocks: 32 values + f16 scale"),
        KvType("q5_1", 32, 24, True, "ggml 5-bit blocks with min"),
        KvType("q5_0", 32, 22, True, "ggml 5-bit blocks"),
        KvType("q4_1", 32, 20, True, "ggml 4-bit blocks with min"),
        KvType("q4_0", 32, 18, True, "ggml 4-bit blocks"),
        KvType("iq4_nl", 32, 18, True, "ggml non-linear 4-bit blocks"),
    )
}

KV_TYPE_ALIASES = {
    "fp16": "f16",
    "float16": "f16",
    "half": "f16",
    "bfloat16": "bf16",
    "float32": "f32",
    "fp32": "f32",
    "float": "f32",
    "fp8_e4m3fn": "fp8_e4m3",
    "float8_e4m3fn": "fp8_e4m3",
    "float8_e5m2": "fp8_e5m2",
    "int8": "q8_0",
}

KV_DTYPE_CHOICES = ["auto", *KV_TYPES]


def normalize_dtype_name(name: str) -> str:
    key = str(name).strip().lower().removeprefix("torch.")
    return KV_TYPE_ALIASES.get(key, key)


@lru_cache(maxsize=256)
def kv_type(name: str, model_dtype: str = "bf16") -> KvType:
    """Resolve a KV dtype name; ``auto`` means the model's own dtype (vLLM ``--kv-cache-dtype auto``)."""
    key = normalize_dtype_name(name)
    if key == "auto":
        key = normalize_dtype_name(model_dtype)
        if key not in KV_TYPES or KV_TYPES[key].quantized:
            key = "bf16" if key not in ("f16", "f32") else key
    try:
        return KV_TYPES[key]
    except KeyError:
        choices = ", ".join(KV_DTYPE_CHOICES)
        raise InputError(f"unknown KV dtype '{name}' (choose from {choices})", field="kv_dtype") from None


# Bits per weight of common weight formats, used when a model has no exact size for a format.
# ggml k-quants: ggml/src/ggml-common.h block sizes (Q4_K 144 B / 256 = 4.5 bpw, Q6_K 210/256 = 6.5625,
# Q8_0 34/32 = 8.5); mixes such as Q4_K_M average more (llama.cpp tools/quantize/README table).
WEIGHT_BITS: dict[str, float] = {
    "f32": 32.0,
    "bf16": 16.0,
    "f16": 16.0,
    "fp8": 8.0,
    "int8": 8.0,
    "Q8_0": 8.5,
    "Q6_K": 6.5625,
    "Q5_K_M": 5.69,
    "Q5_K_S": 5.54,
    "Q4_K_M": 4.89,
    "Q4_K_S": 4.58,
    "Q4_0": 4.5,
    "IQ4_XS": 4.25,
    "IQ4_NL": 4.5,
    "Q3_K_M": 3.91,
    "Q2_K": 3.35,
    "IQ2_XXS": 2.06,
    "MXFP4": 4.25,
    "awq-int4": 4.25,
    "gptq-int4": 4.25,
    "nvfp4": 4.5,
}


def weight_bits(fmt: str) -> float:
    for key, bits in WEIGHT_BITS.items():
        if key.lower() == fmt.strip().lower():
            return bits
    raise InputError(
        f"unknown weights format '{fmt}' (choose from {', '.join(WEIGHT_BITS)})", field="weights_dtype"
    )
