"""Probe backends: each reads the local GPUs one way, or says plainly why it cannot.

Tried in order (NVML, torch, nvidia-smi, rocm-smi, amd-smi, macOS); the first that finds a device
answers. A backend raises ``ProbeUnavailable(reason)`` when it cannot answer; any other exception is
caught by ``probe_devices`` too, so probing never raises. Subprocesses run with a timeout and no shell.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, Protocol

from kvdesk.core.probe.models import GpuProcess, ProbedDevice
from kvdesk.core.probe.parsers import (
    attach_processes,
    parse_amd_smi_metric,
    parse_amd_smi_names,
    parse_macos,
    parse_nvidia_smi_apps,
    parse_nvidia_smi_gpus,
    parse_rocm_smi_json,
)

DEFAULT_TIMEOUT_S = 5.0
MAX_OUTPUT = 4 << 20  # 4 MiB of tool output is far more than any real answer


class ProbeUnavailable(Exception):
    """This backend cannot answer here; the message says why (shown to the user)."""


class Backend(Protocol):
    name: str

    def probe(self) -> list[ProbedDevice]: ...


Runner = Callable[[Sequence[str], float], str]


def run_tool(argv: Sequence[str], timeout: float = DEFAULT_TIMEOUT_S) -> str:
    """Run a tool found on PATH (no shell) and return its stdout, or raise ProbeUnavailable."""
    exe = shutil.which(argv[0])
    if exe is None:
        raise ProbeUnavailable("not found on PATH")
    try:
        done = subprocess.run(
            [exe, *argv[1:]], capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise ProbeUnavailable(f"timed out after {timeout:g} s") from None
    except OSError as exc:
        raise ProbeUnavailable(f"could not run ({exc.strerror or exc})") from None
    out = done.stdout[:MAX_OUTPUT].decode("utf-8", errors="replace")
    if done.returncode != 0:
        err = done.stderr[:2000].decode("utf-8", errors="replace").strip() or out.strip()
        first = err.splitlines()[0][:200] if err else ""
        raise ProbeUnavailable(f"exited with code {done.returncode}" + (f": {first}" if first else ""))
    return out


# -- NVML ----------------------------------------------------------------------------------------------
_NVML_REASONS = {
    "LibraryNotFound": "library not found (no NVIDIA driver installed)",
    "DriverNotLoaded": "NVIDIA driver not loaded",
    "NoPermission": "no permission to query the GPU",
    "FunctionNotFound": "driver too old for this NVML call",
}


def nvml_reason(exc: BaseException) -> str:
    cls = type(exc).__name__
    for key, reason in _NVML_REASONS.items():
        if key in cls:
            return reason
    return str(exc) or cls


def _text(value: object) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _process_name(nv: Any, pid: int) -> str:
    return _text(nv.nvmlSystemGetProcessName(pid))


def cuda_version_text(version: int) -> str:
    """NVML's ``nvmlSystemGetCudaDriverVersion`` integer (12040) → '12.4'."""
    return f"{version // 1000}.{version % 1000 // 10}"


class NvmlBackend:
    """NVML through nvidia-ml-py (``import pynvml``); ``nvml`` injects a module (tests: a fake)."""

    name = "NVML"

    def __init__(self, nvml: Any = None) -> None:
        self._nvml = nvml

    def _module(self) -> Any:
        if self._nvml is not None:
            return self._nvml
        try:
            return importlib.import_module("pynvml")
        except ImportError:
            raise ProbeUnavailable("nvidia-ml-py (pynvml) is not installed") from None

    def probe(self) -> list[ProbedDevice]:
        nv = self._module()
        error = getattr(nv, "NVMLError", Exception)
        try:
            nv.nvmlInit()
        except error as exc:
            raise ProbeUnavailable(nvml_reason(exc)) from None
        try:
            driver = self._optional(nv, error, lambda: _text(nv.nvmlSystemGetDriverVersion()))
            cuda = self._optional(nv, error, lambda: cuda_version_text(int(nv.nvmlSystemGetCudaDriverVersion_v2())))
            return [self._device(nv, error, i, driver, cuda) for i in range(int(nv.nvmlDeviceGetCount()))]
        except error as exc:
            raise ProbeUnavailable(nvml_reason(exc)) from None
        finally:
            with contextlib.suppress(error):
                nv.nvmlShutdown()

    @staticmethod
    def _optional(nv: Any, error: type[BaseException], get: Callable[[], Any]) -> Any:
        try:
            return get()
        except error:
            return None

    def _device(
        self, nv: Any, error: type[BaseException], i: int, driver: str | None, cuda: str | None
    ) -> ProbedDevice:
        handle = nv.nvmlDeviceGetHandleByIndex(i)
        mem = self._memory(nv, error, handle)
        reserved = int(getattr(mem, "reserved", 0) or 0)
        return ProbedDevice(
            index=i,
            name=_text(nv.nvmlDeviceGetName(handle)),
            vendor="nvidia",
            # nvmlMemory_v2_t.reserved is the driver's own share, invisible to CUDA: the total engines size
            # against is total - reserved (NVML docs, nvmlMemory_v2_t); v1's `used` included it.
            total_bytes=int(mem.total) - reserved,
            used_bytes=int(mem.used),
            free_bytes=int(mem.free),
            uuid=self._optional(nv, error, lambda: _text(nv.nvmlDeviceGetUUID(handle))),
            driver_version=driver,
            cuda_version=cuda,
            processes=self._processes(nv, error, handle),
            backend=self.name,
        )

    @staticmethod
    def _memory(nv: Any, error: type[BaseException], handle: Any) -> Any:
        """NVML v2 memory info (with ``reserved``) where the driver has it, else v1."""
        version = getattr(nv, "nvmlMemory_v2", None)
        if version is not None:
            try:
                return nv.nvmlDeviceGetMemoryInfo(handle, version=version)
            except (error, TypeError):
                pass
        return nv.nvmlDeviceGetMemoryInfo(handle)

    def _processes(self, nv: Any, error: type[BaseException], handle: Any) -> list[GpuProcess]:
        seen: dict[int, GpuProcess] = {}
        for getter in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
            fn = getattr(nv, getter, None)
            infos = self._optional(nv, error, functools.partial(fn, handle)) if fn else None
            for info in infos or []:
                pid = int(info.pid)
                used = getattr(info, "usedGpuMemory", None)
                name = self._optional(nv, error, functools.partial(_process_name, nv, pid)) or ""
                if pid not in seen:
                    seen[pid] = GpuProcess(pid=pid, name=name, used_bytes=int(used) if used is not None else None)
        return list(seen.values())


# -- torch ---------------------------------------------------------------------------------------------
class TorchBackend:
    """``torch.cuda.mem_get_info`` per device (CUDA or ROCm builds), else ``torch.mps`` on Apple.

    torch is optional (``kvdesk[torch]``); ``torch`` injects a module (tests use a fake one).
    """

    name = "torch"

    def __init__(self, torch: ModuleType | Any = None) -> None:
        self._torch = torch

    def _module(self) -> Any:
        if self._torch is not None:
            return self._torch
        if "torch" not in sys.modules and importlib.util.find_spec("torch") is None:
            raise ProbeUnavailable("not installed (optional: pip install 'kvdesk[torch]')")
        try:
            return importlib.import_module("torch")
        except Exception as exc:  # a broken torch install must not break probing
            raise ProbeUnavailable(f"import failed ({type(exc).__name__}: {exc})") from None

    def probe(self) -> list[ProbedDevice]:
        torch = self._module()
        cuda = getattr(torch, "cuda", None)
        if cuda is not None and cuda.is_available():
            return self._cuda(torch)
        mps = getattr(getattr(torch, "backends", None), "mps", None)
        if mps is not None and mps.is_available():
            return [self._mps(torch)]
        raise ProbeUnavailable("torch sees no CUDA, ROCm or MPS device")

    def _cuda(self, torch: Any) -> list[ProbedDevice]:
        version = getattr(torch, "version", None)
        hip = getattr(version, "hip", None)
        devices = []
        for i in range(int(torch.cuda.device_count())):
            free, total = (int(x) for x in torch.cuda.mem_get_info(i))
            devices.append(
                ProbedDevice(
                    index=i,
                    name=str(torch.cuda.get_device_name(i)),
                    vendor="amd" if hip else "nvidia",
                    total_bytes=total,
                    used_bytes=max(0, total - free),
                    free_bytes=free,
                    cuda_version=None if hip else getattr(version, "cuda", None),
                    backend="torch.cuda",
                )
            )
        return devices

    def _mps(self, torch: Any) -> ProbedDevice:
        mps = torch.mps
        if not hasattr(mps, "recommended_max_memory"):
            raise ProbeUnavailable("torch.mps has no recommended_max_memory (torch < 2.5)")
        budget = int(mps.recommended_max_memory())
        used = int(mps.driver_allocated_memory()) if hasattr(mps, "driver_allocated_memory") else 0
        used = min(max(0, used), budget)
        return ProbedDevice(
            index=0,
            name="Apple GPU (MPS)",
            vendor="apple",
            total_bytes=budget,
            used_bytes=used,
            free_bytes=budget - used,
            budget_bytes=budget,
            unified_memory=True,
            backend="torch.mps",
            note="recommendedMaxWorkingSetSize from Metal; memory used by other apps not included",
        )


# -- command-line tools -----------------------------------------------------------------------------
# memory.reserved (driver R510+) is memory the driver keeps for itself: CUDA never sees it, so the total an
# engine sizes against (cudaMemGetInfo, torch.cuda.mem_get_info) is memory.total - memory.reserved.
# Older nvidia-smi refuses the field ("is not a valid field to query"), so the query is retried without it.
NVIDIA_SMI_GPU_QUERY = "index,uuid,name,memory.total,memory.reserved,memory.used,memory.free,driver_version"
NVIDIA_SMI_GPU_QUERY_OLD = "index,uuid,name,memory.total,memory.used,memory.free,driver_version"
NVIDIA_SMI_APPS_QUERY = "gpu_uuid,pid,process_name,used_memory"


class NvidiaSmiBackend:
    name = "nvidia-smi"

    def __init__(self, run: Runner = run_tool, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self._run, self._timeout = run, timeout

    def probe(self) -> list[ProbedDevice]:
        try:
            gpus = self._query_gpus(NVIDIA_SMI_GPU_QUERY)
        except ProbeUnavailable:
            gpus = self._query_gpus(NVIDIA_SMI_GPU_QUERY_OLD)
        devices = parse_nvidia_smi_gpus(gpus)
        try:
            apps = self._run(
                ["nvidia-smi", f"--query-compute-apps={NVIDIA_SMI_APPS_QUERY}", "--format=csv,nounits"],
                self._timeout,
            )
            attach_processes(devices, parse_nvidia_smi_apps(apps))
        except (ProbeUnavailable, ValueError):
            pass  # the process list is a bonus; memory figures are the answer
        return devices


    def _query_gpus(self, query: str) -> str:
        return self._run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,nounits"], self._timeout)


class RocmSmiBackend:
    name = "rocm-smi"

    def __init__(self, run: Runner = run_tool, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self._run, self._timeout = run, timeout

    def probe(self) -> list[ProbedDevice]:
        out = self._run(["rocm-smi", "--showmeminfo", "vram", "--showproductname", "--json"], self._timeout)
        return parse_rocm_smi_json(out)


class AmdSmiBackend:
    name = "amd-smi"

    def __init__(self, run: Runner = run_tool, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self._run, self._timeout = run, timeout

    def probe(self) -> list[ProbedDevice]:
        metric = self._run(["amd-smi", "metric", "--mem-usage", "--json"], self._timeout)
        try:
            names = parse_amd_smi_names(self._run(["amd-smi", "static", "--asic", "--json"], self._timeout))
        except ProbeUnavailable:
            names = {}
        return parse_amd_smi_metric(metric, names)


class MacBackend:
    """Apple Silicon: system RAM, the GPU working-set limit, and what other apps hold (vm_stat)."""

    name = "macOS"

    def __init__(self, run: Runner = run_tool, platform: str | None = None, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self._run, self._platform, self._timeout = run, platform or sys.platform, timeout

    def _maybe(self, argv: list[str]) -> str:
        try:
            return self._run(argv, self._timeout)
        except ProbeUnavailable:
            return ""

    def probe(self) -> list[ProbedDevice]:
        if self._platform != "darwin":
            raise ProbeUnavailable(f"not macOS ({self._platform})")
        memsize = self._run(["sysctl", "-n", "hw.memsize"], self._timeout)
        chip = self._maybe(["sysctl", "-n", "machdep.cpu.brand_string"])
        if chip and not chip.strip().startswith("Apple"):
            raise ProbeUnavailable(f"not Apple Silicon ({chip.strip()[:60]})")
        wired = self._maybe(["sysctl", "-n", "iogpu.wired_limit_mb"])
        vm_stat = self._maybe(["vm_stat"])
        return [parse_macos(memsize, wired, vm_stat, chip)]


def default_backends(run: Runner = run_tool, timeout: float = DEFAULT_TIMEOUT_S) -> list[Backend]:
    return [
        NvmlBackend(),
        TorchBackend(),
        NvidiaSmiBackend(run, timeout),
        RocmSmiBackend(run, timeout),
        AmdSmiBackend(run, timeout),
        MacBackend(run, timeout=timeout),
    ]
