"""Probe backends with fake pynvml / torch modules and fake tool runners; the real no-GPU answer here."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from kvdesk.core.probe import ProbeReport, device_verdict, probe_devices
from kvdesk.core.probe.backends import (
    AmdSmiBackend,
    MacBackend,
    NvidiaSmiBackend,
    NvmlBackend,
    ProbeUnavailable,
    RocmSmiBackend,
    TorchBackend,
    cuda_version_text,
    run_tool,
)
from kvdesk.core.probe.models import GpuProcess, ProbedDevice

MIB, GIB = 1 << 20, 1 << 30
PROBE = Path(__file__).resolve().parents[1] / "data" / "probe"


# -- fakes ------------------------------------------------------------------------------------------
class FakeNVMLError(Exception):
    pass


class NVMLError_LibraryNotFound(FakeNVMLError):
    pass


def fake_pynvml(recording: str, init_error: type[Exception] | None = None) -> Any:
    """A pynvml stand-in answering from a recorded tests/data/probe/nvml_*.json."""
    data = json.loads((PROBE / recording).read_text(encoding="utf-8"))
    nv = types.SimpleNamespace(NVMLError=FakeNVMLError, shutdowns=0)

    def init() -> None:
        if init_error:
            raise init_error("NVML Shared Library Not Found")

    def value(key: str) -> Any:
        if data[key] is None:
            raise FakeNVMLError("Not Supported")
        return data[key]

    def procs(kind: str):  # type: ignore[no-untyped-def]
        return lambda h: [types.SimpleNamespace(pid=p["pid"], usedGpuMemory=p["used"]) for p in h[kind]]

    names = {p["pid"]: p["name"] for d in data["devices"] for p in d["compute"] + d["graphics"]}
    nv.nvmlInit = init
    nv.nvmlShutdown = lambda: setattr(nv, "shutdowns", nv.shutdowns + 1)
    nv.nvmlSystemGetDriverVersion = lambda: value("driver")
    nv.nvmlSystemGetCudaDriverVersion_v2 = lambda: value("cuda")
    nv.nvmlDeviceGetCount = lambda: len(data["devices"])
    nv.nvmlDeviceGetHandleByIndex = lambda i: data["devices"][i]
    nv.nvmlDeviceGetName = lambda h: h["name"].encode()  # old bindings return bytes
    nv.nvmlDeviceGetUUID = lambda h: h["uuid"]
    nv.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(total=h["total"], used=h["used"], free=h["free"])
    nv.nvmlDeviceGetComputeRunningProcesses = procs("compute")
    nv.nvmlDeviceGetGraphicsRunningProcesses = procs("graphics")
    nv.nvmlSystemGetProcessName = lambda pid: names[pid]
    return nv


def fake_runner(outputs: dict[str, str]):  # type: ignore[no-untyped-def]
    """Answers a command by the first output whose key is in the joined argv; else 'not found'."""
    calls: list[list[str]] = []

    def run(argv: Sequence[str], timeout: float) -> str:
        calls.append(list(argv))
        joined = " ".join(argv)
        for key, text in outputs.items():
            if key in joined:
                return text
        raise ProbeUnavailable("not found on PATH")

    run.calls = calls  # type: ignore[attr-defined]
    return run


def read(name: str) -> str:
    return (PROBE / name).read_text(encoding="utf-8")


# -- NVML -------------------------------------------------------------------------------------------
def test_real_pynvml_here_says_library_not_found() -> None:
    pytest.importorskip("pynvml")
    with pytest.raises(ProbeUnavailable, match="library not found"):
        NvmlBackend().probe()


def test_nvml_library_not_found_from_a_fake() -> None:
    nv = fake_pynvml("nvml_p100x4.json", init_error=NVMLError_LibraryNotFound)
    with pytest.raises(ProbeUnavailable, match="library not found"):
        NvmlBackend(nv).probe()


def test_nvml_devices_processes_and_versions() -> None:
    nv = fake_pynvml("nvml_rtxpro6000.json")
    (dev,) = NvmlBackend(nv).probe()
    assert dev.name == "NVIDIA RTX PRO 6000 Blackwell Workstation Edition" and dev.backend == "NVML"
    assert (dev.total_bytes, dev.used_bytes, dev.free_bytes) == (97887 * MIB, 71977 * MIB, 24622 * MIB)
    assert [(p.pid, p.used_bytes) for p in dev.processes] == [(3032, None), (13800, None)]
    assert dev.driver_version is None and dev.cuda_version is None  # "Not Supported" is not fatal
    assert nv.shutdowns == 1
    p100 = NvmlBackend(fake_pynvml("nvml_p100x4.json")).probe()
    assert [d.used_bytes // MIB for d in p100] == [1628, 3256, 1628, 3256]
    assert p100[0].driver_version == "418.87.01"


def test_cuda_version_text() -> None:
    assert cuda_version_text(12040) == "12.4" and cuda_version_text(13000) == "13.0"


# -- torch ------------------------------------------------------------------------------------------
def fake_torch(cuda: bool = True, mps: bool = False, hip: str | None = None) -> types.ModuleType:
    torch = types.ModuleType("torch")
    frees = {0: 20 * GIB, 1: 1 * GIB}
    torch.cuda = types.SimpleNamespace(  # type: ignore[attr-defined]
        is_available=lambda: cuda,
        device_count=lambda: 2,
        mem_get_info=lambda i: (frees[i], 24 * GIB),
        get_device_name=lambda i: "NVIDIA GeForce RTX 4090",
    )
    torch.version = types.SimpleNamespace(cuda="12.4", hip=hip)  # type: ignore[attr-defined]
    torch.backends = types.SimpleNamespace(mps=types.SimpleNamespace(is_available=lambda: mps))  # type: ignore[attr-defined]
    torch.mps = types.SimpleNamespace(  # type: ignore[attr-defined]
        recommended_max_memory=lambda: 11453251584, driver_allocated_memory=lambda: 2 * GIB
    )
    return torch


def test_torch_cuda_from_a_module_injected_into_sys_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", fake_torch())
    devices = TorchBackend().probe()
    assert [(d.free_bytes, d.used_bytes) for d in devices] == [(20 * GIB, 4 * GIB), (1 * GIB, 23 * GIB)]
    assert devices[0].cuda_version == "12.4" and devices[0].backend == "torch.cuda"


def test_torch_rocm_build_is_amd_and_mps_is_unified() -> None:
    assert TorchBackend(fake_torch(hip="6.2")).probe()[0].vendor == "amd"
    (mps,) = TorchBackend(fake_torch(cuda=False, mps=True)).probe()
    assert mps.unified_memory and mps.budget_bytes == 11453251584 and mps.available_bytes == 11453251584 - 2 * GIB
    with pytest.raises(ProbeUnavailable, match="no CUDA"):
        TorchBackend(fake_torch(cuda=False)).probe()


def test_torch_absent_here() -> None:
    if "torch" in sys.modules:
        pytest.skip("torch is imported in this process")
    with pytest.raises(ProbeUnavailable, match="not installed"):
        TorchBackend().probe()


# -- tools -----------------------------------------------------------------------------------------
def test_nvidia_smi_backend_uses_header_csv_and_attaches_processes() -> None:
    run = fake_runner(
        {
            "--query-gpu": read("nvidia_smi_rtxpro6000_windows.csv"),
            "--query-compute-apps": read("nvidia_smi_rtxpro6000_windows_apps.csv"),
        }
    )
    (dev,) = NvidiaSmiBackend(run).probe()
    assert dev.used_bytes == 71977 * MIB and len(dev.processes) == 2
    assert all("--format=csv,nounits" in c for c in run.calls)  # type: ignore[attr-defined]


def test_nvidia_smi_backend_survives_a_failing_process_query() -> None:
    (dev,) = NvidiaSmiBackend(fake_runner({"--query-gpu": read("nvidia_smi_h100_units.csv")})).probe()
    assert dev.total_bytes == 81559 * MIB and dev.processes == []


def test_rocm_and_amd_smi_backends() -> None:
    (rocm,) = RocmSmiBackend(fake_runner({"rocm-smi": read("rocm_smi_rx7900xt.json")})).probe()
    assert rocm.name == "Radeon RX 7900 XT"
    run = fake_runner({"metric": read("amd_smi_rx7800xt_metric.json"), "static": read("amd_smi_rx7800xt_static.json")})
    (amd,) = AmdSmiBackend(run).probe()
    assert amd.name == "AMD Radeon RX 7800 XT" and amd.backend == "amd-smi"


def test_mac_backend_only_on_darwin() -> None:
    with pytest.raises(ProbeUnavailable, match="not macOS"):
        MacBackend(fake_runner({}), platform="linux").probe()
    run = fake_runner(
        {"hw.memsize": read("macos_hw_memsize_16g.txt"), "iogpu": "0\n", "brand_string": "Apple M1 Pro\n"}
    )
    (dev,) = MacBackend(run, platform="darwin").probe()
    assert dev.name == "Apple M1 Pro" and dev.unified_memory and dev.total_bytes == 16 * GIB
    intel = fake_runner({"hw.memsize": "17179869184", "brand_string": "Intel(R) Core(TM) i9-9880H"})
    with pytest.raises(ProbeUnavailable, match="not Apple Silicon"):
        MacBackend(intel, platform="darwin").probe()


def test_run_tool_missing_timeout_and_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ProbeUnavailable, match="not found on PATH"):
        run_tool(["kvdesk-no-such-tool-xyz"])
    monkeypatch.setattr("shutil.which", lambda name: sys.executable)
    with pytest.raises(ProbeUnavailable, match="timed out"):
        run_tool(["python", "-c", "import time; time.sleep(5)"], timeout=0.3)
    with pytest.raises(ProbeUnavailable, match="exited with code 3: boom"):
        run_tool(["python", "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"])
    assert run_tool(["python", "-c", "print('ok')"]).strip() == "ok"


def test_run_tool_uses_no_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
        seen.update(kw, argv=argv)
        return subprocess.CompletedProcess(argv, 0, b"", b"")

    monkeypatch.setattr("shutil.which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(subprocess, "run", fake_run)
    run_tool(["nvidia-smi", "--query-gpu=name"], timeout=2)
    assert seen["argv"] == ["/usr/bin/nvidia-smi", "--query-gpu=name"]
    assert seen["timeout"] == 2 and not seen.get("shell", False)


# -- probe_devices ---------------------------------------------------------------------------------
class Boom:
    name = "buggy"

    def probe(self) -> list[ProbedDevice]:
        raise RuntimeError("driver exploded")


def test_no_gpu_here_is_an_answer_not_an_exception() -> None:
    report = probe_devices()
    assert isinstance(report, ProbeReport)
    if report.found:
        pytest.skip("this machine has a GPU")
    assert [a.backend for a in report.attempts] == ["NVML", "torch", "nvidia-smi", "rocm-smi", "amd-smi", "macOS"]
    assert report.summary().startswith("No GPU found.") and "NVML: library not found" in report.summary()


def test_first_answering_backend_wins_and_bugs_are_reported() -> None:
    smi = NvidiaSmiBackend(fake_runner({"--query-gpu": read("nvidia_smi_p100x4.csv")}))
    report = probe_devices([Boom(), smi, RocmSmiBackend(fake_runner({}))])
    assert report.backend == "nvidia-smi" and len(report.devices) == 4
    assert report.attempts[0].detail.startswith("failed (RuntimeError: driver exploded")
    assert report.attempts[2].detail == "not tried (nvidia-smi answered)"
    assert json.loads(json.dumps(report.to_json()))["devices"][1]["used_bytes"] == 3256 * MIB


# -- verdict ---------------------------------------------------------------------------------------
def dev(total: int, used: int, procs: list[GpuProcess] | None = None) -> ProbedDevice:
    return ProbedDevice(
        index=0, name="G", total_bytes=total, used_bytes=used, free_bytes=total - used, processes=procs or []
    )


def test_verdicts() -> None:
    holders = [
        GpuProcess(pid=1, name="/usr/bin/Xorg", used_bytes=300 * MIB),
        GpuProcess(pid=2, name="python", used_bytes=2800 * MIB),
    ]
    card = dev(24 * GIB, 3100 * MIB, holders)
    assert device_verdict(card, 20 * GIB).kind == "fits_now"
    idle = device_verdict(card, 22 * GIB)
    assert idle.kind == "fits_idle" and idle.held_bytes == 3100 * MIB
    assert idle.message == (
        "fits on an idle GPU, but 3.0 GiB is held by other processes (python (pid 2, 2.7 GiB), Xorg (pid 1, 300.0 MiB))"
    )
    no = device_verdict(card, 30 * GIB)
    assert no.kind == "no_fit" and "6.0 GiB short" in no.message
    assert device_verdict(card, 0).kind == "unused"


def test_unified_memory_verdict_uses_the_working_set_limit() -> None:
    mac = ProbedDevice(
        index=0,
        name="M",
        total_bytes=16 * GIB,
        used_bytes=2 * GIB,
        free_bytes=14 * GIB,
        budget_bytes=10 * GIB,
        unified_memory=True,
    )
    assert mac.available_bytes == 10 * GIB
    assert device_verdict(mac, 12 * GIB).kind == "no_fit"
    spec = mac.to_gpu_spec()
    assert spec.memory_bytes == 16 * GIB and spec.usable_bytes == 10 * GIB and spec.unified_memory


# -- CLI -------------------------------------------------------------------------------------------
def test_cli_probe_exits_0_and_lists_backends(capsys: pytest.CaptureFixture[str]) -> None:
    from kvdesk.cli import main

    assert main(["probe", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [a["backend"] for a in data["attempts"]][:3] == ["NVML", "torch", "nvidia-smi"]
    assert main(["probe"]) == 0
    text = capsys.readouterr().out
    assert "Backends tried:" in text and ("No GPU found." in text or "read by" in text)


def test_cli_probe_text_with_a_fake_report(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import kvdesk.commands.probe as cmd

    smi = NvidiaSmiBackend(
        fake_runner(
            {
                "--query-gpu": read("nvidia_smi_rtxpro6000_windows.csv"),
                "--query-compute-apps": read("nvidia_smi_rtxpro6000_windows_apps.csv"),
            }
        )
    )
    monkeypatch.setattr(cmd, "probe_devices", lambda: probe_devices([smi]))
    assert cmd.run(types.SimpleNamespace(json=False)) == 0
    out = capsys.readouterr().out
    assert "read by nvidia-smi" in out and "NVIDIA RTX PRO 6000" in out and "dwm.exe (pid 3032" in out
