"""llama.cpp and Ollama log lines → ObservedLog figures.

Formats (each seen in a real log in tests/data/logs/, see SOURCES.md there):
- model buffers: ``load_tensors: CUDA0 model buffer size = X MiB`` (older ``llm_load_tensors:``,
  ik_llama ``llm_load_tensors: CUDA0 buffer size = X MiB``); llama.cpp prints them in
  ``llama_model::load_tensors`` (src/llama-model.cpp) as ``%s model buffer size = %8.2f MiB``.
- KV buffers: ``llama_kv_cache: CUDA0 KV buffer size = X MiB`` (``llama_kv_cache_unified:`` mid 2025,
  ``llama_kv_cache_init:`` before), recurrent ``llama_memory_recurrent: CUDA0 RS buffer size``.
- cache summary: ``llama_kv_cache: size = X MiB (N cells, L layers, a/b seqs), K (f16): …, V (f16): …``
  (src/llama-kv-cache.cpp), older ``KV self size = X MiB, K (f16): …``, MLA ``c^KV (f16): …``,
  recurrent ``R (f32): … S (f32): …``; ``llama_kv_cache_iswa: creating non-SWA/SWA KV cache`` precede
  the two caches of a sliding-window model.
- compute/output buffers: ``CUDA0 compute buffer size = X MiB`` (``llama_context:``,
  ``llama_new_context_with_model:`` or ``sched_reserve:``), ``CPU output buffer size``.
- Ollama: ``msg="offload to cuda" … memory.required.full="3.7 GiB" …`` (llm/memory.go, 0.5),
  ``msg=offload library=cuda …`` (llm/server.go, 0.11), new engine ``msg="model weights" buffer=CUDA0
  size="11.5 GiB"`` (one per weight buffer) and ``msg="compute graph" backend=CUDA0 buffer_type=CUDA0
  size=…`` (ml/backend/ggml/ggml.go ``Reserve``, which may run more than once: the last one counts).
  Ollama sizes are printed by format.HumanBytes2: binary units (KiB, MiB, GiB).
"""

from __future__ import annotations

import re

from kvdesk.core.logparse_models import DeviceFigures, KvCache, ObservedLog

MIB = 1 << 20
_NUM = r"(\d{1,12}(?:\.\d{1,6})?)"
_DEV = r"([A-Za-z][\w\-]{0,40}(?:\[[^\]\s]{1,80}\])?)"

MODEL_BUF = re.compile(rf"load_tensors:\s+{_DEV}\s+(?:model\s+)?buffer size\s*=\s*{_NUM}\s*MiB")
DEV_BUF = re.compile(rf"\s{_DEV}\s+(KV|RS|compute|output) buffer size\s*=\s*{_NUM}\s*MiB")
SUMMARY = re.compile(
    rf"(?:KV self size|\bsize)\s*=\s*{_NUM}\s*MiB\s*(?:\((?P<inner>[^)]{{0,200}})\))?\s*,(?P<parts>.*)$"
)
PART = re.compile(rf"([A-Za-z^]{{1,8}})\s*\((\w{{1,12}})\)\s*:\s*{_NUM}\s*MiB")
ISWA = re.compile(r"creating\s+(non-SWA|SWA)\s+KV cache")
# llama-kv-cache-dsa.cpp (llama.cpp#23346): "creating main KV cache" then "creating indexer KV cache"
DSA = re.compile(r"creating\s+(main|indexer)\s+KV cache")
SETTING = re.compile(
    r"llama_(?:context|new_context_with_model):\s+(n_ctx|n_ctx_per_seq|n_ctx_seq|n_batch|n_ubatch|n_seq_max|"
    r"flash_attn|kv_unified|mla_attn)\s*=\s*(\S{1,20})\s*$"
)
KV_TYPES = re.compile(r"type_k\s*=\s*'(\w+)',\s*type_v\s*=\s*'(\w+)'")
OFFLOADED = re.compile(r"offloaded (\d+)/(\d+) layers to GPU")

OLLAMA_OFFLOAD = re.compile(r'msg="?offload(?: to \w+)?"?\s')
OLLAMA_KV = re.compile(r'([\w.]{1,60})=("[^"]{0,400}"|\S{1,200})')
OLLAMA_BUFFER = re.compile(
    r'msg="(model weights|compute graph)"\s.{0,200}?(?:buffer|backend)=(\S{1,80}).{0,200}?\ssize="([^"]{1,40})"'
)
OLLAMA_CMD = re.compile(r"--(ctx-size|parallel|batch-size|n-gpu-layers)\s+(\d+)")
OLLAMA_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)\b")
_OLLAMA_UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
                 "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}  # fmt: skip
_OLLAMA_FIELDS = (
    "memory.available", "memory.gpu_overhead", "memory.required.full", "memory.required.partial",
    "memory.required.kv", "memory.required.allocations", "memory.weights.total", "memory.weights.repeating",
    "memory.weights.nonrepeating", "memory.graph.full", "memory.graph.partial", "projector.weights",
    "projector.graph",
)  # fmt: skip


def mib(text: str) -> int:
    """A printed ``%.2f MiB`` figure → bytes (exact to ±0.005 MiB)."""
    return round(float(text) * MIB)


class LlamaState:
    """Per-run llama.cpp / Ollama state; a second model load starts a new run (journald logs)."""

    def __init__(self, log: ObservedLog) -> None:
        self.log = log
        self.pending_kind = ""
        self.seen_context = False

    def device(self, name: str) -> DeviceFigures:
        # Metal_Mapped (mmap'd weights in GPU-visible buffers) is the Metal device itself
        if name.endswith("_Mapped") and not name.upper().startswith("CPU"):
            name = name.removesuffix("_Mapped")
        for d in self.log.devices:
            if d.name == name:
                return d
        dev = DeviceFigures(name=name)
        self.log.devices.append(dev)
        return dev

    def new_run_if_needed(self) -> None:
        if self.seen_context:  # weights again after caches: a new model load; keep only the last one
            self.log.devices.clear()
            self.log.kv_caches.clear()
            self.log.settings = {k: v for k, v in self.log.settings.items() if k.startswith("vllm.")}
            self.seen_context = False
        if not any(d.model_bytes for d in self.log.devices):
            self.log.runs += 1

    def feed(self, line: str) -> bool:
        """Read one line; True when it held a figure."""
        if "buffer size" in line:
            return self._buffer(line)
        if "size" in line and "MiB" in line and "(" in line and ("llama_" in line or "KV self size" in line):
            return self._summary(line)
        if "creating" in line and "KV cache" in line:
            match = ISWA.search(line)
            if match:
                self.pending_kind = "non-swa" if match.group(1) == "non-SWA" else "swa"
                return True
            match = DSA.search(line)
            if match:
                self.pending_kind = "indexer" if match.group(1) == "indexer" else ""
                return True
            return False
        if "ollama" in line or "msg=" in line:
            return self._ollama(line)
        return self._setting(line)

    def _buffer(self, line: str) -> bool:
        match = MODEL_BUF.search(line)
        if match:
            self.new_run_if_needed()
            name, size = match.group(1), mib(match.group(2))
            dev = self.device(name)
            if name.upper().endswith("_REPACK"):
                dev.repack_bytes += size
            else:
                dev.model_bytes += size
            return True
        match = DEV_BUF.search(line)
        if not match:
            return False
        dev, kind, size = self.device(match.group(1)), match.group(2), mib(match.group(3))
        self.seen_context = True
        attr = {"KV": "kv_bytes", "RS": "recurrent_bytes", "compute": "compute_bytes", "output": "output_bytes"}[kind]
        setattr(dev, attr, getattr(dev, attr) + size)
        return True

    def _summary(self, line: str) -> bool:
        match = SUMMARY.search(line)
        if not match:
            return False
        parts, types = {}, {}
        for name, dtype, size in PART.findall(match.group("parts")):
            parts[name], types[name] = mib(size), dtype
        if not parts:
            return False
        inner = match.group("inner") or ""
        kind = "recurrent" if "recurrent" in line or {"R", "S"} & parts.keys() else self.pending_kind
        self.pending_kind = ""
        self.seen_context = True
        rs_seq = _int_before(inner, "rs_seq")  # llama-memory-recurrent.cpp: "(… seqs  6 rs_seq)" since llama.cpp#22673
        if kind == "recurrent" and rs_seq is not None:
            self.log.settings["rs_seq"] = rs_seq
        self.log.kv_caches.append(
            KvCache(
                kind=kind,
                size_bytes=mib(match.group(1)),
                cells=_int_before(inner, "cells"),
                layers=_int_before(inner, "layers"),
                seqs=_int_before(inner, "seqs", allow_slash=True),
                parts=parts,
                types=types,
            )
        )
        return True

    def _setting(self, line: str) -> bool:
        match = SETTING.search(line)
        if match:
            key, value = match.group(1), match.group(2)
            self.log.settings[key] = int(value) if value.isdigit() else value
            return True
        match = KV_TYPES.search(line)
        if match:
            self.log.settings["type_k"], self.log.settings["type_v"] = match.group(1), match.group(2)
            return True
        match = OFFLOADED.search(line)
        if match:
            self.log.settings["offloaded_layers"] = int(match.group(1))
            self.log.settings["total_layers"] = int(match.group(2))
            return True
        return False

    def _ollama(self, line: str) -> bool:
        if OLLAMA_OFFLOAD.search(line):
            self.log.engine = "ollama"
            for key, raw in OLLAMA_KV.findall(line):
                if key in _OLLAMA_FIELDS:
                    sizes = ollama_sizes(raw)
                    if sizes:
                        is_list = key in ("memory.available", "memory.required.allocations")
                        self.log.ollama[key] = sizes if is_list else sizes[0]
                elif key.startswith("layers.") and raw.strip('"').lstrip("-").isdigit():
                    self.log.settings["ollama." + key] = int(raw.strip('"'))
            return True
        match = OLLAMA_BUFFER.search(line)
        if match:
            self.log.engine = "ollama"
            what, dev, size = match.group(1), match.group(2).strip('"'), ollama_sizes(match.group(3))
            if not size:
                return False
            if what == "model weights":
                self.new_run_if_needed()
            target = self.device(dev)
            if what == "model weights":  # one line per weight buffer: they add up
                target.model_bytes += size[0]
            else:  # Reserve() may run several times; the last graph is the one kept (ml/backend/ggml/ggml.go)
                target.compute_bytes = size[0]
                self.seen_context = True
            return True
        if "starting llama server" in line or 'msg="starting runner"' in line:
            self.log.engine = "ollama"
            for key, value in OLLAMA_CMD.findall(line):
                self.log.settings["ollama." + key] = int(value)
            return True
        return self._setting(line)


def ollama_sizes(text: str) -> list[int]:
    """'"[11.1 GiB 11.1 GiB]"' or '"0 B"' → bytes per entry."""
    return [round(float(n) * _OLLAMA_UNITS[u]) for n, u in OLLAMA_SIZE.findall(text)]


def _int_before(text: str, word: str, allow_slash: bool = False) -> int | None:
    pattern = rf"(\d+)(?:/\d+)?\s+{word}" if allow_slash else rf"(\d+)\s+{word}"
    match = re.search(pattern, text)
    return int(match.group(1)) if match else None
