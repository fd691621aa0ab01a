"""vLLM startup log lines → ObservedLog figures.

Formats (real excerpts in tests/data/logs/, see SOURCES.md):
- V1 (vllm/v1/worker/gpu_worker.py, gpu_model_runner.py, v1/core/kv_cache_utils.py):
  ``Model loading took 14.99 GiB memory and 6.97 seconds``, ``Available KV cache memory: 58.11 GiB``,
  ``GPU KV cache size: 476,016 tokens``, ``Maximum concurrency for 8,192 tokens per request: 58.11x``,
  ``Memory profiling takes … Total non KV cache memory: 17.12GiB; torch peak memory increase: 1.89GiB;
  non-torch forward increase memory: 0.25GiB; weights memory: 14.99GiB.``,
  ``Graph capturing finished in 3 secs, took 0.91 GiB``, ``num_gpu_blocks is: 29751``.
- V0 / early V1: ``Loading model weights took 67.7229 GB`` — vLLM computed this as
  ``model_memory_usage / float(2**30)`` (vllm/worker/model_runner.py), so its "GB" is GiB;
  ``# GPU blocks: 1381``; 0.6–0.8 worker profiles: ``total_gpu_memory (23.58GiB) x
  gpu_memory_utilization (0.99) = 23.35GiB`` / ``model weights take 21.21GiB; non_torch_memory takes
  0.20GiB; PyTorch activation peak memory takes 0.37GiB; the rest of the memory reserved for KV Cache
  is 1.57GiB.``, Dec 2024 ``Memory profiling results: … total_gpu_memory=79.15GiB, … non_torch_memory=1.96GiB,
  kv_cache_size=34.96GiB``.
Lines carry the process that printed them — ``(Worker_TP1 pid=448)``, ``(VllmWorkerProcess pid=507)`` —
so figures are kept per worker (one worker = one GPU); unprefixed lines belong to the driver process.
"""

from __future__ import annotations

import re

from kvdesk.core.logparse_models import ObservedLog, VllmWorker

GIB = 1 << 30
_NUM = r"(\d{1,9}(?:\.\d{1,6})?)"
WORKER = re.compile(r"\((?P<label>[A-Za-z_][\w ]{0,40}?(?:rank=\d+)?)\s+pid=(?P<pid>\d{1,9})\)")
_TP = re.compile(r"(?:TP|PP|DP|rank=)\d+")

# (field on VllmWorker, pattern) — a line may hold several of them
WORKER_FIGURES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("weights_bytes", re.compile(rf"(?:Model loading took|Loading model weights took)\s+{_NUM}\s*Gi?B")),
    ("weights_bytes", re.compile(rf"model weights take\s*{_NUM}\s*GiB")),
    ("available_kv_bytes", re.compile(rf"Available KV cache memory:\s*{_NUM}\s*GiB")),
    ("available_kv_bytes", re.compile(rf"reserved for KV Cache is\s*{_NUM}\s*GiB")),
    ("available_kv_bytes", re.compile(rf"kv_cache_size={_NUM}\s*GiB")),
    ("non_kv_bytes", re.compile(rf"Total non KV cache memory:\s*{_NUM}\s*GiB")),
    ("activation_bytes", re.compile(rf"torch peak memory increase:\s*{_NUM}\s*GiB")),
    ("activation_bytes", re.compile(rf"PyTorch activation peak memory takes\s*{_NUM}\s*GiB")),
    ("non_torch_bytes", re.compile(rf"non-torch forward increase memory:\s*{_NUM}\s*GiB")),
    ("non_torch_bytes", re.compile(rf"non_torch_memory(?:=|\s+takes\s*){_NUM}\s*GiB")),
    ("cuda_graph_bytes", re.compile(rf"Graph capturing finished in \d+ secs?, took\s*{_NUM}\s*GiB")),
    ("total_gpu_bytes", re.compile(rf"total_gpu_memory(?:=|\s*\(){_NUM}\s*GiB")),
    ("total_gpu_bytes", re.compile(rf"worker init memory snapshot:.*?total_memory={_NUM}\s*GiB")),
    ("requested_bytes", re.compile(rf"Requested memory:\s*[\d.]+\s*\(util\),\s*{_NUM}\s*GiB")),
    ("requested_bytes", re.compile(rf"x gpu_memory_utilization \([\d.]+\) =\s*{_NUM}\s*GiB")),
)
KV_TOKENS = re.compile(r"GPU KV cache size:\s*([\d,]{1,20})\s*tokens")
CONCURRENCY = re.compile(rf"Maximum concurrency for\s*([\d,]{{1,20}})\s*tokens per request:\s*{_NUM}\s*x")
BLOCKS = re.compile(r"(?:# GPU blocks:|num_gpu_blocks is:|# cuda blocks:)\s*(\d{1,12})")
ARGS = re.compile(
    r"'(gpu_memory_utilization|max_model_len|kv_cache_dtype|tensor_parallel_size|dtype)':\s*'?([\w.]{1,40})'?"
)
_HINTS = (
    "vllm",
    "GiB",
    "non-default args",
    "GPU blocks",
    "KV cache size",
    "Maximum concurrency",
    "Loading model weights",
    "Model loading",
)


def looks_like_vllm(line: str) -> bool:
    return any(h in line for h in _HINTS)


def _int(text: str) -> int:
    return int(text.replace(",", ""))


class VllmState:
    def __init__(self, log: ObservedLog) -> None:
        self.log = log
        self.by_key: dict[str, VllmWorker] = {}

    def worker(self, line: str) -> VllmWorker:
        match = WORKER.search(line)
        if match is None:
            key = "driver"
        else:
            label = match.group("label").strip()
            key = label if _TP.search(label) else f"{label} pid={match.group('pid')}"
            if label == "EngineCore" or label.startswith("APIServer"):
                key = "driver"  # V1 single-GPU: the engine core process runs the only worker
        if key not in self.by_key:
            self.by_key[key] = VllmWorker(name=key)
            self.log.vllm_workers.append(self.by_key[key])
        return self.by_key[key]

    def feed(self, line: str) -> bool:
        if not looks_like_vllm(line):
            return False
        hit = False
        for field, pattern in WORKER_FIGURES:
            match = pattern.search(line)
            if match:
                setattr(self.worker(line), field, round(float(match.group(1)) * GIB))
                hit = True
        hit = self._engine_figures(line) or hit
        if hit:
            self.log.engine = "vllm"
        return hit

    def _engine_figures(self, line: str) -> bool:
        hit = False
        match = KV_TOKENS.search(line)
        if match:
            self.log.kv_tokens, hit = _int(match.group(1)), True
        match = CONCURRENCY.search(line)
        if match:
            self.log.concurrency_tokens, self.log.max_concurrency = _int(match.group(1)), float(match.group(2))
            hit = True
        match = BLOCKS.search(line)
        if match:
            self.log.num_gpu_blocks, hit = int(match.group(1)), True
        if "non-default args" in line or "Initializing" in line:
            for key, value in ARGS.findall(line):
                self.log.settings["vllm." + key] = _number(value)
                hit = True
        return hit

    def finish(self) -> None:
        """Drop workers that printed nothing useful (e.g. an APIServer line with no figures)."""
        self.log.vllm_workers[:] = [
            w for w in self.log.vllm_workers if any(v is not None for k, v in w.model_dump().items() if k != "name")
        ]


def _number(value: str) -> int | float | str:
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return value
