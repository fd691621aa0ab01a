"""ProbeTab and LogCheckPanel with fake probe backends (no GPU needed), offscreen."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from kvdesk.core.defaults import default_plan
from kvdesk.core.probe import ProbeUnavailable
from kvdesk.core.probe.backends import NvidiaSmiBackend
from kvdesk.core.probe.models import GpuProcess, ProbedDevice
from kvdesk.gui.plan_model import PlanModel
from kvdesk.gui.probe_tab import ProbeTab

MIB, GIB = 1 << 20, 1 << 30
DATA = Path(__file__).resolve().parents[1] / "data"


class FakeBackend:
    def __init__(self, devices: list[ProbedDevice], name: str = "fake") -> None:
        self.name, self.devices, self.calls = name, devices, 0

    def probe(self) -> list[ProbedDevice]:
        self.calls += 1
        return [d.model_copy(deep=True) for d in self.devices]


class Missing:
    name = "NVML"

    def probe(self) -> list[ProbedDevice]:
        raise ProbeUnavailable("library not found (no NVIDIA driver installed)")


class Stuck:
    name = "stuck"

    def __init__(self) -> None:
        self.release = threading.Event()

    def probe(self) -> list[ProbedDevice]:
        self.release.wait(10)
        return []


def rtx4090(used_gib: float, procs: list[GpuProcess] | None = None) -> ProbedDevice:
    total = 24564 * MIB
    used = round(used_gib * GIB)
    return ProbedDevice(index=0, name="NVIDIA GeForce RTX 4090", vendor="nvidia", total_bytes=total,
                        used_bytes=used, free_bytes=total - used, processes=procs or [], backend="fake")  # fmt: skip


@pytest.fixture
def model() -> PlanModel:
    return PlanModel(default_plan().with_workload(context=8192, batch=1))


def make_tab(qtbot, model: PlanModel, backends, timeout_s: float = 10.0) -> ProbeTab:  # type: ignore[no-untyped-def]
    tab = ProbeTab(model, backends=backends, timeout_s=timeout_s, autostart=False)
    qtbot.addWidget(tab)
    tab.resize(900, 700)
    tab.show()
    return tab


def probe(qtbot, tab: ProbeTab) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(tab.probed, timeout=5000):
        tab.refresh()


def test_fits_now_idle_and_not_at_all(qtbot, model: PlanModel) -> None:  # type: ignore[no-untyped-def]
    procs = [GpuProcess(pid=7, name="/usr/bin/python3", used_bytes=round(3.1 * GIB))]
    tab = make_tab(qtbot, model, [FakeBackend([rtx4090(3.1, procs)])])
    probe(qtbot, tab)
    need = model.breakdown.per_device[0].total_bytes
    (card,) = tab.cards
    assert card.result is not None and card.result.need_bytes == need
    assert card.result.kind == "fits_now" and "fits now" in card.verdict.text()
    assert "read by fake" in tab.status.text()
    model.update_workload(context=24576, batch=2)  # more than free, less than the card
    assert card.result.kind == "fits_idle"
    assert "3.1 GiB is held by other processes (python3 (pid 7, 3.1 GiB))" in card.verdict.text()
    model.update_workload(context=65536, batch=4)
    assert card.result.kind == "no_fit" and "does not fit" in card.verdict.text()
    assert card.bar.need == model.breakdown.per_device[0].total_bytes


def test_plan_with_more_gpus_than_found_says_so(qtbot, model: PlanModel) -> None:  # type: ignore[no-untyped-def]
    model.set_plan(model.plan.model_copy(update={"gpu_count": 2}))
    tab = make_tab(qtbot, model, [FakeBackend([rtx4090(0.5)])])
    probe(qtbot, tab)
    assert tab.plan_note.isVisible() and "spreads over 2 GPUs but only 1 was found" in tab.plan_note.text()
    assert (
        tab.cards[0].result is not None and tab.cards[0].result.need_bytes == model.breakdown.per_device[0].total_bytes
    )
    model.set_plan(model.plan.model_copy(update={"gpu_count": 1}))
    assert not tab.plan_note.isVisible()


def test_no_gpu_lists_what_was_tried(qtbot, model: PlanModel) -> None:  # type: ignore[no-untyped-def]
    tab = make_tab(
        qtbot,
        model,
        [Missing(), NvidiaSmiBackend(lambda argv, t: (_ for _ in ()).throw(ProbeUnavailable("not found on PATH")))],
    )
    probe(qtbot, tab)
    assert tab.cards == [] and tab.status.text().startswith("No GPU found")
    assert "NVML: library not found" in tab.empty.text() and "nvidia-smi: not found on PATH" in tab.empty.text()
    assert tab.empty.isVisible()


def test_real_backends_here_never_raise(qtbot, model: PlanModel) -> None:  # type: ignore[no-untyped-def]
    tab = make_tab(qtbot, model, None)
    probe(qtbot, tab)
    assert tab.report is not None and tab.refresh_button.isEnabled()


def test_use_this_gpu_sets_exact_memory(qtbot, model: PlanModel) -> None:  # type: ignore[no-untyped-def]
    smi = (DATA / "probe" / "nvidia_smi_p100x4.csv").read_text()
    tab = make_tab(qtbot, model, [NvidiaSmiBackend(lambda argv, t: smi if "--query-gpu" in " ".join(argv) else "")])
    probe(qtbot, tab)
    assert len(tab.cards) == 4
    old_bw = model.plan.gpu.bandwidth_bytes_per_s
    qtbot.mouseClick(tab.cards[1].use_button, qtbot_left())
    gpu = model.plan.gpu
    assert gpu.name == "Tesla P100-PCIE-16GB" and gpu.memory_bytes == 16280 * MIB
    assert model.plan.gpu_preset_id is None and gpu.bandwidth_bytes_per_s == old_bw  # not in the catalogue
    assert model.breakdown.budget_bytes == 16280 * MIB


def test_use_this_gpu_takes_catalogue_bandwidth(qtbot, model: PlanModel) -> None:  # type: ignore[no-untyped-def]
    from kvdesk.core.catalog import find_gpu

    tab = make_tab(qtbot, model, [FakeBackend([rtx4090(1.0)])])
    probe(qtbot, tab)
    model.set_plan(model.plan.model_copy(update={"gpu": find_gpu("h100-sxm-80gb").to_spec()}))
    assert tab.use_device(tab.cards[0].device)
    assert model.plan.gpu.bandwidth_bytes_per_s == find_gpu("rtx-4090").bandwidth_bytes_per_s
    assert model.plan.gpu.memory_bytes == 24564 * MIB


def test_probe_runs_off_the_ui_thread_with_a_timeout(qtbot, model: PlanModel) -> None:  # type: ignore[no-untyped-def]
    stuck = Stuck()
    tab = make_tab(qtbot, model, [stuck], timeout_s=0.3)
    tab.refresh()
    assert tab.status.text() == "Probing…" and not tab.refresh_button.isEnabled()  # returned at once
    qtbot.waitUntil(lambda: "did not answer within 0.3 s" in tab.status.text(), timeout=3000)
    assert tab.refresh_button.isEnabled() and tab.report is None
    stuck.release.set()  # the late answer is dropped
    tab.pool.waitForDone(5000)
    qtbot.wait(50)
    assert tab.report is None


def test_auto_refresh_timer(qtbot, model: PlanModel) -> None:  # type: ignore[no-untyped-def]
    fake = FakeBackend([rtx4090(1.0)])
    tab = make_tab(qtbot, model, [fake])
    tab.interval.setValue(2)
    tab.auto_check.setChecked(True)
    assert tab.auto_timer.isActive() and tab.auto_timer.interval() == 2000
    with qtbot.waitSignal(tab.probed, timeout=5000):
        tab.auto_timer.timeout.emit()
    assert fake.calls == 1
    tab.auto_check.setChecked(False)
    assert not tab.auto_timer.isActive()


def qtbot_left():  # type: ignore[no-untyped-def]
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton
