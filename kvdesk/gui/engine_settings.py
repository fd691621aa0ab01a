"""EngineSettingsPanel: the engine (generic / llama.cpp / vLLM / Ollama) and the settings it uses.

Only the rows the chosen engine reads are shown. Edits go to ``PlanModel.update_engine``.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QSignalBlocker
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QSpinBox,
    QWidget,
)

from kvdesk.core.plan import ENGINE_NAMES, EngineSettings
from kvdesk.gui.plan_model import PlanModel

ENGINE_LABELS = {"generic": "Generic (textbook)", "llama.cpp": "llama.cpp", "vllm": "vLLM", "ollama": "Ollama"}
ENGINE_TIPS = {
    "generic": "The textbook formula 2 × layers × kv_heads × head_dim × ctx × batch × bytes, plus a fixed overhead.",
    "llama.cpp": "llama.cpp / llama-server: K and V per layer, padded cells, compute buffers, --fit margin.",
    "vllm": "vLLM: budget = total memory × gpu_memory_utilization; KV paged in blocks.",
    "ollama": "Ollama: llama.cpp underneath, KV multiplied by OLLAMA_NUM_PARALLEL.",
}
TRISTATE = (("auto", None), ("on", True), ("off", False))
MIB = 1 << 20
GIB = 1 << 30

# field -> engines that read it
ROWS: dict[str, tuple[str, ...]] = {
    "flash_attn": ("llama.cpp", "ollama"),
    "ubatch": ("llama.cpp", "ollama"),
    "batch_tokens": ("llama.cpp",),
    "kv_unified": ("llama.cpp",),
    "swa_full": ("llama.cpp",),
    "fit_margin_bytes": ("llama.cpp",),
    "rs_seq": ("llama.cpp",),
    "gpu_memory_utilization": ("vllm",),
    "tp": ("vllm",),
    "pp": ("vllm",),
    "block_size": ("vllm",),
    "kv_cache_memory": ("vllm",),
    "max_num_batched_tokens": ("vllm",),
    "enforce_eager": ("vllm",),
    "overhead_bytes": ("generic",),
}


def _spin(lo: int, hi: int, tip: str, special: str = "", suffix: str = "") -> QSpinBox:
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setToolTip(tip)
    box.setKeyboardTracking(False)
    if special:
        box.setSpecialValueText(special)
    if suffix:
        box.setSuffix(suffix)
    return box


def _tristate(tip: str) -> QComboBox:
    box = QComboBox()
    for text, value in TRISTATE:
        box.addItem(text, value)
    box.setToolTip(tip)
    return box


class EngineSettingsPanel(QWidget):
    def __init__(self, model: PlanModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.engine = QComboBox()
        for name in ENGINE_NAMES:
            self.engine.addItem(ENGINE_LABELS.get(name, name), name)
            self.engine.setItemData(self.engine.count() - 1, ENGINE_TIPS.get(name, ""), 3)  # ToolTipRole
        self.engine.setToolTip("Which inference engine will run the model: each allocates memory its own way.")
        self.flash_attn = _tristate("Flash attention (-fa). A quantized V cache needs it; 'auto' = engine default.")
        self.ubatch = _spin(1, 1 << 20, "Physical batch (-ub): tokens processed per step; sizes compute buffers.")
        self.batch_tokens = _spin(1, 1 << 20, "Logical batch (-b): most tokens submitted per decode call.")
        self.kv_unified = _tristate("--kv-unified: one KV buffer shared by all parallel sequences.")
        self.swa_full = QCheckBox("full-size sliding-window cache")
        self.swa_full.setToolTip("--swa-full: keep the whole context for sliding-window layers (more memory).")
        self.fit_margin = _spin(-1, 1 << 20, "Memory llama.cpp leaves free per device (--fit margin); "
                                "'default' = the engine's 1 GiB.", special="default", suffix=" MiB")
        self.rs_seq = _spin(0, 1024, "Speculative decoding with MTP / EAGLE-3 drafts (--spec-type draft-mtp …): "
                            "llama.cpp keeps --spec-draft-n-max extra copies of each recurrent (Mamba / delta-net) "
                            "state to roll back rejected drafts. 'none' = no drafts.", special="none")
        self.gpu_util = QDoubleSpinBox()
        self.gpu_util.setRange(0.05, 1.0)
        self.gpu_util.setSingleStep(0.05)
        self.gpu_util.setDecimals(2)
        self.gpu_util.setKeyboardTracking(False)
        self.gpu_util.setToolTip("--gpu-memory-utilization: share of TOTAL GPU memory vLLM may use (not of free).")
        self.tp = _spin(1, 1024, "--tensor-parallel-size: GPUs each layer is split across (KV heads divided by it).")
        self.pp = _spin(1, 1024, "--pipeline-parallel-size: consecutive layer groups on different GPUs.")
        self.block_size = _spin(1, 4096, "--block-size: tokens per KV page (vLLM allocates whole blocks).")
        self.kv_cache_memory = _spin(0, 1 << 20, "--kv-cache-memory per GPU; 'auto' = from utilization.",
                                     special="auto", suffix=" MiB")
        self.max_batched = _spin(0, 1 << 24, "--max-num-batched-tokens: sizes the activation peak; 'auto' = default.",
                                 special="auto")
        self.enforce_eager = QCheckBox("no CUDA graphs (--enforce-eager)")
        self.enforce_eager.setToolTip("--enforce-eager: skip CUDA graph capture, saving its memory.")
        self.overhead = _spin(-1, 1 << 20, "Fixed runtime overhead per GPU (CUDA context, allocator); "
                              "'default' = 522 MiB measured from a real vLLM log.", special="default", suffix=" MiB")
        self.form = QFormLayout(self)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.form.addRow("Engine", self.engine)
        self._rows: dict[str, QWidget] = {
            "flash_attn": self.flash_attn, "ubatch": self.ubatch, "batch_tokens": self.batch_tokens,
            "kv_unified": self.kv_unified, "swa_full": self.swa_full, "fit_margin_bytes": self.fit_margin,
            "rs_seq": self.rs_seq, "gpu_memory_utilization": self.gpu_util, "tp": self.tp, "pp": self.pp,
            "block_size": self.block_size,
            "kv_cache_memory": self.kv_cache_memory, "max_num_batched_tokens": self.max_batched,
            "enforce_eager": self.enforce_eager, "overhead_bytes": self.overhead,
        }
        labels = {
            "flash_attn": "Flash attention", "ubatch": "ubatch", "batch_tokens": "batch (-b)",
            "kv_unified": "KV unified", "swa_full": "", "fit_margin_bytes": "Fit margin",
            "rs_seq": "Draft states",
            "gpu_memory_utilization": "GPU memory util.", "tp": "Tensor parallel", "pp": "Pipeline parallel",
            "block_size": "Block size", "kv_cache_memory": "KV cache memory", "max_num_batched_tokens":
            "Max batched tokens", "enforce_eager": "", "overhead_bytes": "Overhead / GPU",
        }
        for key, widget in self._rows.items():
            self.form.addRow(labels[key], widget)
        self._shown = ""
        self._connect()
        model.changed.connect(self.refresh)
        model.rejected.connect(self.refresh)
        self.refresh()

    def _connect(self) -> None:
        m = self.model
        self.engine.activated.connect(lambda _i: m.update_engine(name=self.engine.currentData()))
        self.flash_attn.activated.connect(lambda _i: m.update_engine(flash_attn=self.flash_attn.currentData()))
        self.kv_unified.activated.connect(lambda _i: m.update_engine(kv_unified=self.kv_unified.currentData()))
        self.swa_full.toggled.connect(lambda on: m.update_engine(swa_full=on))
        self.enforce_eager.toggled.connect(lambda on: m.update_engine(enforce_eager=on))
        self.gpu_util.valueChanged.connect(lambda v: m.update_engine(gpu_memory_utilization=round(v, 4)))
        simple: dict[str, QSpinBox] = {"ubatch": self.ubatch, "batch_tokens": self.batch_tokens, "tp": self.tp,
                                       "pp": self.pp, "block_size": self.block_size,
                                       "rs_seq": self.rs_seq}
        for key, box in simple.items():
            box.valueChanged.connect(self._setter(key))
        self.fit_margin.valueChanged.connect(lambda v: m.update_engine(fit_margin_bytes=None if v < 0 else v * MIB))
        self.overhead.valueChanged.connect(lambda v: m.update_engine(overhead_bytes=None if v < 0 else v * MIB))
        self.kv_cache_memory.valueChanged.connect(lambda v: m.update_engine(kv_cache_memory=v * MIB or None))
        self.max_batched.valueChanged.connect(lambda v: m.update_engine(max_num_batched_tokens=v or None))

    def _setter(self, key: str) -> Callable[[int], object]:
        return lambda value: self.model.update_engine(**{key: value})

    def refresh(self) -> None:
        e: EngineSettings = self.model.plan.engine
        widgets = [self.engine, *self._rows.values()]
        blockers = [QSignalBlocker(w) for w in widgets]
        self.engine.setCurrentIndex(max(0, self.engine.findData(e.name)))
        self.flash_attn.setCurrentIndex(max(0, self.flash_attn.findData(e.flash_attn)))
        self.kv_unified.setCurrentIndex(max(0, self.kv_unified.findData(e.kv_unified)))
        self.swa_full.setChecked(e.swa_full)
        self.enforce_eager.setChecked(e.enforce_eager)
        self.gpu_util.setValue(e.gpu_memory_utilization)
        self.ubatch.setValue(e.ubatch)
        self.batch_tokens.setValue(e.batch_tokens)
        self.tp.setValue(e.tp)
        self.pp.setValue(e.pp)
        self.block_size.setValue(e.block_size)
        self.rs_seq.setValue(e.rs_seq)
        self.fit_margin.setValue(-1 if e.fit_margin_bytes is None else e.fit_margin_bytes // MIB)
        self.overhead.setValue(-1 if e.overhead_bytes is None else e.overhead_bytes // MIB)
        self.kv_cache_memory.setValue((e.kv_cache_memory or 0) // MIB)
        self.max_batched.setValue(e.max_num_batched_tokens or 0)
        del blockers
        recurrent = any(g.kind == "recurrent" for g in self.model.plan.model.layers)
        shown = f"{e.name}/{recurrent}"
        if shown != self._shown:
            self._shown = shown
            for key, widget in self._rows.items():
                # draft states copy recurrent states: the row means nothing for a model without them
                visible = e.name in ROWS[key] and (key != "rs_seq" or recurrent)
                self.form.setRowVisible(widget, visible)


if __name__ == "__main__":
    from kvdesk.gui.preview import preview

    preview(EngineSettingsPanel)
