"""Probe parsers on recorded outputs of nvidia-smi, rocm-smi, amd-smi and macOS tools (tests/data/probe)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvdesk.core.probe.parsers import (
    ProbeParseError,
    attach_processes,
    parse_amd_smi_metric,
    parse_amd_smi_names,
    parse_macos,
    parse_nvidia_smi_apps,
    parse_nvidia_smi_gpus,
    parse_rocm_smi_json,
    parse_vm_stat_used,
)

MIB, GIB = 1 << 20, 1 << 30
PROBE = Path(__file__).resolve().parents[1] / "data" / "probe"


def read(name: str) -> str:
    return (PROBE / name).read_text(encoding="utf-8")


def test_nvidia_smi_header_form_without_free_or_index() -> None:
    (dev,) = parse_nvidia_smi_gpus(read("nvidia_smi_rtx5060ti_header.csv"))
    assert dev.name == "NVIDIA GeForce RTX 5060 Ti"
    assert dev.total_bytes == 16311 * MIB and dev.used_bytes == 1 * MIB
    assert dev.free_bytes == 16310 * MIB  # derived: total - used
    assert dev.driver_version == "580.178.04" and dev.index == 0
    assert parse_nvidia_smi_apps(read("nvidia_smi_rtx5060ti_apps_empty.csv")) == []


def test_nvidia_smi_windows_processes_without_sizes() -> None:
    (dev,) = parse_nvidia_smi_gpus(read("nvidia_smi_rtxpro6000_windows.csv"))
    assert (dev.total_bytes, dev.used_bytes, dev.free_bytes) == (97887 * MIB, 71977 * MIB, 24622 * MIB)
    procs = parse_nvidia_smi_apps(read("nvidia_smi_rtxpro6000_windows_apps.csv"))
    assert [(p.pid, p.used_bytes) for _, p in procs] == [(3032, None), (13800, None)]
    attach_processes([dev], procs)  # one device, no uuid column: the processes are its own
    assert dev.processes[0].label() == "dwm.exe (pid 3032, size n/a)"


def test_nvidia_smi_values_with_units_and_many_gpus() -> None:
    (h100,) = parse_nvidia_smi_gpus(read("nvidia_smi_h100_units.csv"))
    assert h100.total_bytes == 81559 * MIB and h100.used_bytes == 18560 * MIB
    p100 = parse_nvidia_smi_gpus(read("nvidia_smi_p100x4.csv"))
    assert [d.index for d in p100] == [0, 1, 2, 3]
    assert [d.used_bytes // MIB for d in p100] == [1628, 3256, 1628, 3256]
    assert all(d.total_bytes == 16280 * MIB and d.driver_version == "418.87.01" for d in p100)


def test_nvidia_smi_noheader_with_explicit_columns() -> None:
    cols = [
        "power.limit",
        "power.min_limit",
        "power.max_limit",
        "memory.total",
        "vbios_version",
        "driver_version",
        "name",
        "gpu_uuid",
        "power.draw",
        "temperature.gpu",
        "temperature.memory",
        "clocks.current.graphics",
        "clocks.sm",
        "clocks.mem",
        "utilization.gpu",
        "utilization.memory",
        "fan.speed",
        "pcie.link.width.current",
        "pstate",
    ]
    (dev,) = parse_nvidia_smi_gpus(read("nvidia_smi_2080_noheader.csv"), cols)
    assert dev.name == "GeForce RTX 2080" and dev.total_bytes == 7979 * MIB
    assert dev.uuid == "GPU-22b2c6ac-2d49-4863-197c-9c469071178a" and dev.used_bytes == 0


def test_processes_go_to_the_device_with_their_uuid() -> None:
    gpus = "index, uuid, name, memory.total [MiB], memory.used [MiB], memory.free [MiB], driver_version\n" + (
        "0, GPU-a, A, 100, 10, 90, 1\n1, GPU-b, B, 100, 60, 40, 1\n"
    )
    apps = "gpu_uuid, pid, process_name, used_gpu_memory [MiB]\nGPU-b, 42, python, 50\nGPU-x, 7, ghost, 1\n"
    devices = parse_nvidia_smi_gpus(gpus)
    attach_processes(devices, parse_nvidia_smi_apps(apps))
    assert devices[0].processes == [] and [p.pid for p in devices[1].processes] == [42]
    assert devices[1].processes[0].used_bytes == 50 * MIB


@pytest.mark.parametrize(
    "text",
    ["", "index, memory.total [MiB]\n0, lots\n", "index, name\n0\n", "pid, process_name\nabc, x\n"],
)
def test_nvidia_smi_garbage_is_a_parse_error(text: str) -> None:
    with pytest.raises(ProbeParseError):
        parse_nvidia_smi_gpus(text) if "pid" not in text else parse_nvidia_smi_apps(text)


def test_rocm_smi_json() -> None:
    (dev,) = parse_rocm_smi_json(read("rocm_smi_rx7900xt.json"))
    assert dev.name == "Radeon RX 7900 XT" and dev.vendor == "amd"
    assert dev.total_bytes == 21458059264 and dev.used_bytes == 27856896
    assert dev.free_bytes == 21458059264 - 27856896


def test_rocm_smi_banner_and_garbage() -> None:
    assert len(parse_rocm_smi_json("WARNING: something\n" + read("rocm_smi_rx7900xt.json"))) == 1
    with pytest.raises(ProbeParseError):
        parse_rocm_smi_json("not json at all")
    assert parse_rocm_smi_json('{"card0": {"VRAM Total Memory (B)": "N/A"}, "system": {}}') == []


def test_amd_smi_gpu_data_wrapper_and_names() -> None:
    names = parse_amd_smi_names(read("amd_smi_rx7800xt_static.json"))
    assert names == {0: "AMD Radeon RX 7800 XT"}
    (dev,) = parse_amd_smi_metric(read("amd_smi_rx7800xt_metric.json"), names)
    assert dev.name == "AMD Radeon RX 7800 XT"
    assert dev.total_bytes == 16368 * MIB and dev.used_bytes == 14569 * MIB  # amd-smi "MB" is MiB
    assert dev.free_bytes == (16368 - 14569) * MIB


def test_amd_smi_list_form_without_memory_has_no_device() -> None:
    assert parse_amd_smi_metric(read("amd_smi_w7700_usage_only.json")) == []
    assert parse_amd_smi_names("garbage") == {}
    with pytest.raises(ProbeParseError):
        parse_amd_smi_metric('{"unexpected": 1}')


def test_amd_smi_na_and_bare_numbers() -> None:
    mem = '{"total_vram": 8192, "used_vram": "N/A", "free_vram": {"value": 6144, "unit": "MB"}}'
    text = '[{"gpu": 1, "mem_usage": ' + mem + "}]"
    (dev,) = parse_amd_smi_metric(text)
    assert dev.index == 1 and dev.total_bytes == 8192 * MIB and dev.used_bytes == 2048 * MIB


def test_macos_default_working_set_and_vm_stat() -> None:
    dev = parse_macos(read("macos_hw_memsize_16g.txt"), read("macos_iogpu_wired_limit_0.txt"))
    assert dev.total_bytes == 16 * GIB and dev.unified_memory
    # 11453.25 MB printed by ggml_metal_init on a 16 GiB M1 Pro = 2/3 of RAM
    assert abs(dev.budget_bytes / 1e6 - 11453.25) < 0.01  # type: ignore[operator]
    used = parse_vm_stat_used(read("macos_vm_stat.txt"))
    assert used == (892341 + 456789 + 123456) * 16384  # active + wired + compressor pages
    # the guide's vm_stat came from a larger Mac: paired with 32 GiB it leaves the rest free
    big = parse_macos(str(32 * GIB), "0", read("macos_vm_stat.txt"))
    assert big.used_bytes == used and big.free_bytes == 32 * GIB - used and big.budget_bytes == int(32 * GIB * 2 / 3)


def test_macos_wired_limit_overrides_default_and_bad_memsize_errors() -> None:
    dev = parse_macos("68719476736", "57344")
    assert dev.budget_bytes == 57344 * MIB and "iogpu.wired_limit_mb" in dev.note
    assert dev.used_bytes == 0 and "unknown" in dev.note
    with pytest.raises(ProbeParseError):
        parse_macos("sysctl: unknown oid 'hw.memsize'")
    assert parse_vm_stat_used("command not found") is None


# -- fuzz: any text gives devices or a ProbeParseError, never another exception ------------------------

_CSVISH = st.text(
    alphabet=st.sampled_from(list("index,name memory.total [MiB]used free0123456789.N/A\n ")), max_size=300
)
_JSONISH = st.text(
    alphabet=st.sampled_from(list('{}[]":,card0 VRAM Total Memory (B)gpu_data mem_usage value unit MB 0123456789')),
    max_size=300,
)


@settings(max_examples=150, deadline=None)
@given(_CSVISH)
def test_fuzz_nvidia_smi(text: str) -> None:
    for fn in (parse_nvidia_smi_gpus, parse_nvidia_smi_apps):
        with contextlib.suppress(ProbeParseError):
            fn(text)


@settings(max_examples=150, deadline=None)
@given(_JSONISH)
def test_fuzz_rocm_amd_json(text: str) -> None:
    for fn in (parse_rocm_smi_json, parse_amd_smi_metric, parse_amd_smi_names):
        with contextlib.suppress(ProbeParseError):
            fn(text)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200), st.text(max_size=50), st.text(max_size=400))
def test_fuzz_macos(memsize: str, wired: str, vm_stat: str) -> None:
    with contextlib.suppress(ProbeParseError):
        parse_macos(memsize, wired, vm_stat)
