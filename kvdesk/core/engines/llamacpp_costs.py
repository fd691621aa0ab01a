"""llama.cpp costs beside the KV cache, and the settings it refuses: weights per device, compute buffers,
the --fit margin, and the quantized-V / hybrid checks.

Sources: common/common.h (fit_params_target 1024 MiB per device), src/llama-context.cpp
(llama_init_from_model: "V cache quantization requires flash_attn"; graph_reserve for the compute
buffers), llama.cpp#19559 (hybrid models' per-sequence cells).
"""

from __future__ import annotations

import numpy as np

from kvdesk.core.engines import llamacpp_report as report
from kvdesk.core.engines.base import FixedCosts
from kvdesk.core.engines.llamacpp_layout import Layout, layer_devices
from kvdesk.core.engines.llamacpp_rules import B_FIT, B_HYBRID_FIX, Settings
from kvdesk.core.errors import InputError
from kvdesk.core.plan import Plan

MIB = 1 << 20
FIT_MARGIN_BYTES = 1024 * MIB  # common/common.h fit_params_target: 1024 MiB per device


def fit_margin(plan: Plan, s: Settings) -> int:
    """What --fit leaves free on each device: the user's value, else 1 GiB on builds that have --fit."""
    if plan.engine.fit_margin_bytes is not None:
        return plan.engine.fit_margin_bytes
    return FIT_MARGIN_BYTES if (not s.build.ik and s.build.number >= B_FIT) else 0


def compute_terms(plan: Plan, s: Settings, n_devices: int) -> tuple[int, int, list[int]]:
    """(KQ bytes per cache cell, hidden bytes, logits bytes per device) of the compute estimate.

    compute(n_kv) = max(kq × n_kv, logits) + hidden per device: logits n_vocab × n_ubatch × 4 B on
    the output device, the f32 KQ matrix n_head × n_kv × n_ubatch × 4 B when flash attention is off,
    plus 2 × n_embd × n_ubatch × 4 B. n_ubatch is the configured -ub (the worst-case graph).
    """
    m = plan.model
    ub = s.n_ubatch
    kq = 0 if s.flash_attn else m.n_heads * ub * 4
    logits = [0] * n_devices
    logits[-1] = m.vocab_size * ub * 4
    return kq, 2 * m.hidden_size * ub * 4, logits


def compute_per_device(plan: Plan, s: Settings, n_devices: int, n_kv: int) -> list[int]:
    """Compute buffer per device (ggml-alloc peak) for ``n_kv`` cache cells, modelled on real logs."""
    kq, hidden, logits = compute_terms(plan, s, n_devices)
    return [max(kq * n_kv, lg) + hidden for lg in logits]


def fixed_costs(plan: Plan, compute: list[int], margin: int) -> FixedCosts:
    """Weights split by layer across the devices (the output layer on the last), compute, margin."""
    n = plan.gpu_count
    model = plan.model
    weights = model.weights_bytes(plan.workload.weights_format)
    counts = np.bincount(layer_devices(model.n_layers, n), minlength=n)  # repeating layers + output layer
    per = [int(weights * c // (model.n_layers + 1)) for c in counts]
    per[-1] += weights - sum(per)
    extra = plan.engine.overhead_bytes or 0
    return FixedCosts(
        names=[f"GPU{i}" for i in range(n)],
        weights=per,
        compute=compute,
        overhead=[margin + extra] * n,
        budget=[plan.gpu.usable_bytes] * n,
        rules=report.fixed_rules(counts, compute, margin),
    )


def check_settings(plan: Plan, s: Settings, lay: Layout) -> list[str]:
    """Refuse what llama.cpp refuses (InputError); warnings for what it may refuse or get wrong."""
    warnings: list[str] = []
    if s.tv.quantized and not s.flash_attn:
        raise InputError(
            f"kv_dtype_v: a quantized V cache ({s.tv.name}) requires flash attention in llama.cpp "
            "(llama_init_from_model: 'V cache quantization requires flash_attn'); use --flash-attn on",
            field="kv_dtype_v",
        )
    if s.tv.quantized and plan.engine.flash_attn is None:
        warnings.append(
            f"quantized V cache ({s.tv.name}) needs flash attention: with -fa auto llama.cpp stops with "
            "'quantized V cache was requested, but this requires Flash Attention' if the device cannot use it"
        )
    if lay.hybrid and not s.unified and plan.workload.batch > 1 and s.build.number < B_HYBRID_FIX:
        warnings.append(
            f"{s.build.label} gives hybrid models n_ctx cells per sequence (-np times the KV); "
            "fixed in llama.cpp#19559"
        )
    return warnings
