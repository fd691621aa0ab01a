"""Compare an ObservedLog with a plan's Breakdown: figure by figure, per device, and a calibration.

Difference = observed − predicted (positive: the engine used more than kvdesk said).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kvdesk.core.breakdown import Breakdown
from kvdesk.core.logparse_models import ObservedLog
from kvdesk.core.plan import Calibration, Plan

Unit = Literal["bytes", "tokens", "sequences", "x", "bytes/token", "blocks"]
OVERHEAD_LIMIT = 1 << 44

# Keys an engine profile may put in Breakdown.extra for figures only an engine knows.
EXTRA_KEYS: dict[str, tuple[str, ...]] = {
    "available_kv_bytes": ("available_kv_cache_memory_bytes", "available_kv_bytes", "kv_cache_memory_bytes"),
    "requested_bytes": ("requested_memory_bytes",),
    "activation_bytes": ("activation_peak_bytes",),
    "non_torch_bytes": ("non_torch_bytes",),
    "cuda_graph_bytes": ("cuda_graph_bytes",),
    "kv_tokens": ("kv_cache_tokens", "kv_tokens", "gpu_kv_cache_tokens"),
    "max_concurrency": ("max_concurrency",),
    "num_gpu_blocks": ("num_gpu_blocks", "kv_blocks"),
}


class Figure(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    label: str
    unit: Unit = "bytes"
    observed: float
    predicted: float | None = None

    @property
    def difference(self) -> float | None:
        return None if self.predicted is None else self.observed - self.predicted

    def as_json(self) -> dict[str, Any]:
        def num(x: float | None) -> float | int | None:
            if x is None:
                return None
            return round(x) if self.unit in ("bytes", "tokens", "sequences", "blocks") else round(x, 4)

        return {
            "label": self.label,
            "unit": self.unit,
            "observed": num(self.observed),
            "predicted": num(self.predicted),
            "difference": num(self.difference),
        }


class DeviceComparison(BaseModel):
    device: str
    plan_device: str | None = None
    figures: list[Figure] = Field(default_factory=list)


class LogComparison(BaseModel):
    engine: str
    figures: list[Figure] = Field(default_factory=list)
    per_device: list[DeviceComparison] = Field(default_factory=list)
    settings: list[Figure] = Field(default_factory=list)
    observed: ObservedLog
    calibration: Calibration | None = None
    warnings: list[str] = Field(default_factory=list)

    def figure(self, name: str) -> Figure | None:
        return next((f for f in self.figures if f.name == name), None)

    def to_json(self) -> dict[str, Any]:
        log = self.observed
        return {
            "engine": self.engine,
            "figures": {f.name: f.as_json() for f in self.figures},
            "per_device": [
                {"device": d.device, "plan_device": d.plan_device, **{f.name: f.as_json() for f in d.figures}}
                for d in self.per_device
            ],
            "settings": {f.name: f.as_json() for f in self.settings},
            "kv_caches": [c.model_dump() for c in log.kv_caches],
            "calibration": None if self.calibration is None else self.calibration.model_dump(),
            "warnings": list(self.warnings),
            "lines_read": log.lines_read,
            "lines_matched": log.lines_matched,
        }


def _extra(breakdown: Breakdown, name: str) -> float | None:
    for key in EXTRA_KEYS[name]:
        value = breakdown.extra.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def _add(
    out: list[Figure], name: str, label: str, observed: float | None, predicted: float | None, unit: Unit = "bytes"
) -> None:
    if observed is not None:
        out.append(Figure(name=name, label=label, unit=unit, observed=observed, predicted=predicted))


def observed_overhead(log: ObservedLog) -> int | None:
    """Bytes the engine used beyond weights and caches on the GPUs (what ``overhead_bytes`` models)."""
    if log.engine == "vllm":
        parts = [(w.activation_bytes, w.non_torch_bytes, w.cuda_graph_bytes) for w in log.vllm_workers]
        known = [p for p in parts if p[0] is not None or p[1] is not None]
        return sum(sum(x or 0 for x in p) for p in known) if known else None
    gpus = log.gpu_devices()
    if not any(d.compute_bytes for d in gpus):
        if "memory.graph.full" in log.ollama:
            return int(log.ollama["memory.graph.full"])  # type: ignore[arg-type]
        return None
    return sum(d.compute_bytes + d.output_bytes for d in gpus)


def compare(log: ObservedLog, plan: Plan, breakdown: Breakdown) -> LogComparison:
    result = LogComparison(engine=log.engine, observed=log, warnings=list(log.warnings))
    if log.engine == "vllm":
        _vllm_figures(log, plan, breakdown, result.figures)
    else:
        _llama_figures(log, breakdown, result.figures)
    _add(result.figures, "overhead_bytes", "Overhead (compute buffers, activations, runtime)",
         observed_overhead(log), breakdown.overhead_bytes)  # fmt: skip
    result.per_device = _per_device(log, breakdown, result.warnings)
    result.settings = _settings(log, plan)
    result.calibration = suggest_calibration(log, plan, breakdown)
    if log.engine not in ("unknown",) and log.engine != _plan_engine(plan):
        result.warnings.append(f"the log is from {log.engine}, the plan uses the {plan.engine.name} engine")
    return result


def _plan_engine(plan: Plan) -> str:
    return {"generic": "unknown"}.get(plan.engine.name, plan.engine.name)


def _llama_figures(log: ObservedLog, bd: Breakdown, out: list[Figure]) -> None:
    gpus = log.gpu_devices()
    ollama_estimate = not log.devices and bool(log.ollama)
    if ollama_estimate:
        tag = " (Ollama's estimate)"
        get = log.ollama.get
        _add(out, "weights_bytes", "Weights" + tag, _scalar(get("memory.weights.total")), bd.weights_bytes)
        _add(out, "kv_cache_bytes", "KV cache" + tag, _scalar(get("memory.required.kv")), bd.kv_cache_bytes)
        _add(out, "compute_bytes", "Compute graph" + tag, _scalar(get("memory.graph.full")), bd.compute_bytes)
        _add(out, "total_bytes", "Total, fully offloaded" + tag, _scalar(get("memory.required.full")), bd.total_bytes)
        return
    _add(out, "weights_bytes", "Weights (model buffers, all devices)", log.model_bytes, bd.weights_bytes)
    _add(out, "kv_cache_bytes", "KV cache", log.kv_bytes, bd.kv_cache_bytes)
    _add(out, "k_cache_bytes", "K cache", log.k_bytes, bd.k_cache_bytes)
    _add(out, "v_cache_bytes", "V cache", log.v_bytes, bd.v_cache_bytes)
    _add(out, "recurrent_state_bytes", "Recurrent state (R+S)", log.recurrent_bytes, bd.recurrent_state_bytes)
    compute = sum(d.compute_bytes for d in gpus)
    _add(out, "compute_bytes", "Compute buffers", compute or None, bd.compute_bytes)
    _add(out, "total_bytes", "Total on the devices", sum(d.total_bytes for d in gpus) or None, bd.total_bytes)
    _add(out, "kv_bytes_per_token", "KV bytes per token", log.kv_bytes_per_token, bd.kv_bytes_per_token, "bytes/token")


def _vllm_figures(log: ObservedLog, plan: Plan, bd: Breakdown, out: list[Figure]) -> None:
    first = next((w for w in log.vllm_workers if w.available_kv_bytes is not None), None)
    _add(out, "weights_bytes", "Weights (sum over GPUs)", log.model_bytes, bd.weights_bytes)
    _add(out, "available_kv_bytes", "KV cache memory per GPU",
         first.available_kv_bytes if first else None, _extra(bd, "available_kv_bytes"))  # fmt: skip
    for name, label in (
        ("requested_bytes", "Requested memory (total × gpu_memory_utilization)"),
        ("activation_bytes", "Activation peak"),
        ("non_torch_bytes", "Non-torch memory"),
        ("cuda_graph_bytes", "CUDA graphs"),
    ):
        value = getattr(first, name) if first else None
        _add(out, name, label + " per GPU", value, _extra(bd, name))
    _add(out, "kv_tokens", "GPU KV cache size", log.kv_tokens, _extra(bd, "kv_tokens"), "tokens")
    _add(out, "num_gpu_blocks", "GPU blocks", log.num_gpu_blocks, _extra(bd, "num_gpu_blocks"), "blocks")
    _add(out, "max_concurrency", f"Maximum concurrency for {log.concurrency_tokens or '?'} tokens",
         log.max_concurrency, _extra(bd, "max_concurrency"), "x")  # fmt: skip
    per_gpu = bd.extra.get("kv_bytes_per_token_per_gpu")
    predicted = float(per_gpu) if isinstance(per_gpu, int | float) else bd.kv_bytes_per_token / max(1, plan.engine.tp)
    _add(out, "kv_bytes_per_token", "KV bytes per token per GPU (memory ÷ tokens)",
         log.kv_bytes_per_token, predicted, "bytes/token")  # fmt: skip


def _scalar(value: int | list[int] | None) -> float | None:
    if value is None:
        return None
    return float(sum(value)) if isinstance(value, list) else float(value)


def _per_device(log: ObservedLog, bd: Breakdown, warnings: list[str]) -> list[DeviceComparison]:
    plan_devs = bd.per_device
    if log.engine == "vllm":
        workers = [w for w in log.vllm_workers if w.weights_bytes is not None]
        paired = len(workers) == len(plan_devs)
        out = []
        for i, w in enumerate(workers if len(workers) > 1 else []):
            pd = plan_devs[i] if paired else None
            figs: list[Figure] = []
            _add(figs, "weights_bytes", "Weights", w.weights_bytes, pd.weights_bytes if pd else None)
            _add(figs, "available_kv_bytes", "KV cache memory", w.available_kv_bytes, None)
            out.append(DeviceComparison(device=w.name, plan_device=pd.name if pd else None, figures=figs))
        if len(workers) > 1 and not paired:
            warnings.append(f"the log has {len(workers)} GPU workers, the plan {len(plan_devs)} devices")
        return out
    devices = log.gpu_devices()
    paired = len(devices) == len(plan_devs)
    if devices and not paired:
        warnings.append(f"the log has {len(devices)} device(s), the plan {len(plan_devs)}: shown without prediction")
    out = []
    for i, d in enumerate(devices):
        pd = plan_devs[i] if paired else None
        figs = []
        _add(figs, "weights_bytes", "Weights", d.model_bytes or None, pd.weights_bytes if pd else None)
        _add(figs, "kv_cache_bytes", "KV buffer", d.kv_bytes or None, pd.kv_cache_bytes if pd else None)
        _add(figs, "recurrent_state_bytes", "Recurrent state", d.recurrent_bytes or None,
             pd.recurrent_state_bytes if pd else None)  # fmt: skip
        _add(figs, "compute_bytes", "Compute buffer", d.compute_bytes or None, pd.compute_bytes if pd else None)
        _add(figs, "total_bytes", "Total", d.total_bytes or None, pd.total_bytes if pd else None)
        out.append(DeviceComparison(device=d.name, plan_device=pd.name if pd else None, figures=figs))
    return out


def _settings(log: ObservedLog, plan: Plan) -> list[Figure]:
    s, w, out = log.settings, plan.workload, []
    ctx = s.get("n_ctx_seq", s.get("n_ctx_per_seq"))
    n_seq = s.get("n_seq_max")
    if ctx is None and isinstance(s.get("n_ctx"), int):
        ctx = int(s["n_ctx"]) // (int(n_seq) if isinstance(n_seq, int) and n_seq > 0 else 1)
    if isinstance(s.get("ollama.ctx-size"), int):
        parallel = s.get("ollama.parallel")
        n_seq = parallel if isinstance(parallel, int) and parallel > 0 else 1
        ctx = int(s["ollama.ctx-size"]) // int(n_seq)
    ctx = s.get("vllm.max_model_len", ctx)
    if isinstance(ctx, int | float):
        out.append(
            Figure(name="context", label="Context per sequence", unit="tokens", observed=ctx, predicted=w.context)
        )
    if isinstance(n_seq, int):
        out.append(Figure(name="sequences", label="Sequences", unit="sequences", observed=n_seq, predicted=w.batch))
    if isinstance(s.get("rs_seq"), int):
        out.append(Figure(name="rs_seq", label="Recurrent-state copies for drafts (rs_seq)", unit="x",
                          observed=s["rs_seq"], predicted=plan.engine.rs_seq))  # fmt: skip
    if isinstance(s.get("n_ubatch"), int):
        out.append(Figure(name="ubatch", label="ubatch", unit="tokens", observed=s["n_ubatch"],
                          predicted=plan.engine.ubatch))  # fmt: skip
    util = s.get("vllm.gpu_memory_utilization")
    if isinstance(util, int | float):
        out.append(Figure(name="gpu_memory_utilization", label="gpu_memory_utilization", unit="x", observed=util,
                          predicted=plan.engine.gpu_memory_utilization))  # fmt: skip
    return out


def suggest_calibration(log: ObservedLog, plan: Plan, breakdown: Breakdown, source: str = "") -> Calibration | None:
    """The overhead correction that makes the plan's overhead match the log's (None: the log lacks it)."""
    seen = observed_overhead(log)
    if seen is None:
        return None
    old = plan.calibration.overhead_delta_bytes if plan.calibration else 0
    delta = max(-OVERHEAD_LIMIT, min(OVERHEAD_LIMIT, old + seen - breakdown.overhead_bytes))
    observed = {"overhead_bytes": float(seen)}
    for name, value in (("weights_bytes", log.model_bytes), ("kv_cache_bytes", log.kv_bytes)):
        if value is not None:
            observed[name] = float(value)
    return Calibration(source=source or f"{log.engine} log", overhead_delta_bytes=int(delta), observed=observed)
