"""Importers: turn a model on disk (HF config.json / snapshot folder, safetensors, GGUF) into a ModelSpec.

Every importer is offline and reads headers only. The result carries the spec, where it came from
(``ModelOrigin``) and notes saying what was read from where and what was assumed, for the user to
inspect and edit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kvdesk.core.model import LayerGroup, ModelSpec
from kvdesk.core.plan import ModelOrigin


@dataclass
class ImportResult:
    model: ModelSpec
    origin: ModelOrigin
    notes: list[str] = field(default_factory=list)


def merge_layers(layers: list[LayerGroup]) -> list[LayerGroup]:
    """Merge runs of identical consecutive layers into one group each (order kept)."""
    merged: list[LayerGroup] = []
    for layer in layers:
        if merged and merged[-1].model_copy(update={"count": layer.count}) == layer:
            last = merged.pop()
            merged.append(last.model_copy(update={"count": last.count + layer.count}))
        else:
            merged.append(layer)
    return merged


def recurrent_state_bytes(d_conv: int, d_inner: int, d_state: int, n_group: int, dtype_bytes: int = 4) -> int:
    """Bytes of one layer's recurrent state per sequence, as llama.cpp allocates it.

    llama.cpp src/llama-hparams.cpp: ``n_embd_r() = (ssm_d_conv - 1) * (ssm_d_inner + 2*ssm_n_group*ssm_d_state)``
    (the conv window) and ``n_embd_s() = ssm_d_state * ssm_d_inner`` (the SSM / delta-net state),
    both kept in f32 by default (llama-memory-recurrent.cpp, type_r = type_s = F32). Mamba-1 has
    n_group 0; Mamba-2 its ``n_groups``; Qwen3-Next's gated delta-net maps d_inner = value heads ×
    value head dim, d_state = key head dim, n_group = key heads (llama-model.cpp, LLM_ARCH_QWEN3NEXT).
    """
    conv = max(d_conv - 1, 0) * (d_inner + 2 * n_group * d_state)
    return dtype_bytes * (conv + d_state * d_inner)


def shortconv_state_bytes(n_embd: int, l_cache: int, dtype_bytes: int = 4) -> int:
    """LFM2 short-conv layers: ``n_embd_r() = n_embd * (n_shortconv_l_cache - 1)``, no SSM state."""
    return dtype_bytes * n_embd * max(l_cache - 1, 0)


__all__ = ["ImportResult", "merge_layers", "recurrent_state_bytes", "shortconv_state_bytes"]
