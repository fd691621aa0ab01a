"""PlanForm: the left-hand form — model, GPU, context, concurrency, KV dtype, weights, engine.

Thin: every edit goes into the PlanModel; ``refresh`` re-reads the plan under QSignalBlocker.
"""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from kvdesk.core.dtypes import KV_TYPES, WEIGHT_BITS
from kvdesk.core.plan import MAX_BATCH, ModelOrigin, Plan
from kvdesk.core.units import format_tokens
from kvdesk.gui.catalog_entries import gpu_entries, model_entries
from kvdesk.gui.engine_settings import EngineSettingsPanel
from kvdesk.gui.plan_model import PlanModel
from kvdesk.gui.search_picker import SearchPicker
from kvdesk.gui.token_spinbox import TokenSpinBox

KV_CHOICES = ["auto", *KV_TYPES]
KV_TIP = (
    "Storage type of the KV cache. 'auto' = the model's dtype (bf16/f16). q8_0 ≈ half, q4_0 ≈ a quarter "
    "of f16; a quantized V cache needs flash attention in llama.cpp."
)


def _kv_combo(tip: str) -> QComboBox:
    box = QComboBox()
    for name in KV_CHOICES:
        box.addItem(name, name)
        if name in KV_TYPES:
            box.setItemData(box.count() - 1, KV_TYPES[name].description, Qt.ItemDataRole.ToolTipRole)
    box.setToolTip(tip)
    return box


class PlanForm(QWidget):
    import_requested = Signal(bool)  # True: a model folder, False: a config.json / GGUF file

    def __init__(self, model: PlanModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PlanForm")
        self.model = model
        self._build_model_box()
        self._build_hardware_box()
        self._build_workload_box()
        self._build_advanced_box()
        self.engine_panel = EngineSettingsPanel(model)
        engine_box = QGroupBox("Engine")
        QVBoxLayout(engine_box).addWidget(self.engine_panel)
        layout = QVBoxLayout(self)
        for w in (self.model_box, self.hardware_box, self.workload_box, self.advanced_toggle, self.advanced_box,
                  engine_box):
            layout.addWidget(w)
        layout.addStretch(1)
        self._connect()
        self.reload_catalogue()
        model.changed.connect(self.refresh)
        model.rejected.connect(self.refresh)
        self.refresh()

    # -- construction ---------------------------------------------------------------------------
    def _build_model_box(self) -> None:
        self.model_picker = SearchPicker()
        self.model_picker.setToolTip("The model to run. Type to search; grouped by family with parameters and size.")
        self.import_button = QToolButton()
        self.import_button.setText("Import…")
        self.import_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.import_button.setToolTip("Read a model from a Hugging Face config.json, a GGUF file or a model folder "
                                      "(the arrow offers the folder).")
        menu = QMenu(self.import_button)
        menu.addAction("config.json or GGUF file…").triggered.connect(lambda: self.import_requested.emit(False))
        menu.addAction("Model folder (config.json + safetensors)…").triggered.connect(
            lambda: self.import_requested.emit(True))
        self.import_button.setMenu(menu)
        self.model_info = QLabel()
        self.model_info.setWordWrap(True)
        self.model_info.setToolTip("Layers, KV heads and head size of the model as kvdesk reads them.")
        row = QHBoxLayout()
        row.addWidget(self.model_picker, 1)
        row.addWidget(self.import_button)
        self.model_box = QGroupBox("Model")
        box = QVBoxLayout(self.model_box)
        box.addLayout(row)
        box.addWidget(self.model_info)

    def _build_hardware_box(self) -> None:
        self.gpu_picker = SearchPicker()
        self.gpu_picker.setToolTip("The GPU (or Apple/AMD unified-memory chip). Type to search; grouped by vendor.")
        self.gpu_count = QSpinBox()
        self.gpu_count.setRange(1, 1024)
        self.gpu_count.setPrefix("× ")
        self.gpu_count.setKeyboardTracking(False)
        self.gpu_count.setToolTip("How many of these GPUs: weights and KV cache are split across them.")
        self.hardware_box = QGroupBox("Hardware")
        row = QHBoxLayout(self.hardware_box)
        row.addWidget(self.gpu_picker, 1)
        row.addWidget(self.gpu_count)

    def _build_workload_box(self) -> None:
        self.context = TokenSpinBox()
        self.context.setToolTip(
            "Context length of ONE sequence in tokens (prompt + output). Type 8192, 32k or 1M; "
            "the arrows step through powers of two."
        )
        self.native = QLabel()
        self.native.setToolTip("The longest context the model was trained for (max_position_embeddings).")
        self.batch = QSpinBox()
        self.batch.setRange(1, MAX_BATCH)
        self.batch.setKeyboardTracking(False)
        self.batch.setToolTip("Concurrent sequences (parallel slots, -np / --max-num-seqs): each has its own KV cache.")
        self.kv_dtype = _kv_combo(KV_TIP)
        self.weights = QComboBox()
        self.weights.setToolTip("How the weights are stored: bf16, fp8, a GGUF quant (Q4_K_M …), AWQ int4.")
        ctx_row = QHBoxLayout()
        ctx_row.addWidget(self.context, 1)
        ctx_row.addWidget(self.native)
        self.workload_box = QGroupBox("Workload")
        form = QFormLayout(self.workload_box)
        form.addRow("Context", ctx_row)
        form.addRow("Sequences", self.batch)
        form.addRow("KV cache", self.kv_dtype)
        form.addRow("Weights", self.weights)

    def _build_advanced_box(self) -> None:
        self.advanced_toggle = QToolButton()
        self.advanced_toggle.setText("Advanced")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_toggle.setAutoRaise(True)
        self.advanced_toggle.setToolTip("K and V cache types separately, KV-head override.")
        self.kv_k = _kv_combo("Storage type of the K (key) cache (llama.cpp -ctk).")
        self.kv_v = _kv_combo("Storage type of the V (value) cache (llama.cpp -ctv).")
        self.kv_heads = QSpinBox()
        self.kv_heads.setRange(1, 1 << 16)
        self.kv_heads.setKeyboardTracking(False)
        self.kv_heads.setToolTip("KV heads per layer (GQA groups). Defaults to the model's; change it to "
                                 "see what a different grouping would cost.")
        self.kv_heads_reset = QPushButton("Reset")
        self.kv_heads_reset.setToolTip("Go back to the model's own number of KV heads.")
        self.kv_heads_mark = QLabel()
        heads_row = QHBoxLayout()
        heads_row.addWidget(self.kv_heads, 1)
        heads_row.addWidget(self.kv_heads_mark)
        heads_row.addWidget(self.kv_heads_reset)
        self.advanced_box = QWidget()
        form = QFormLayout(self.advanced_box)
        form.setContentsMargins(12, 0, 0, 0)
        form.addRow("K cache", self.kv_k)
        form.addRow("V cache", self.kv_v)
        form.addRow("KV heads", heads_row)
        self.advanced_box.setVisible(False)

    def _connect(self) -> None:
        m = self.model
        self.model_picker.picked.connect(self._pick_model)
        self.gpu_picker.picked.connect(self._pick_gpu)
        self.import_button.clicked.connect(lambda: self.import_requested.emit(False))
        self.gpu_count.valueChanged.connect(lambda n: m.update(gpu_count=n))
        self.context.valueChanged.connect(lambda v: m.update_workload(context=v))
        self.batch.valueChanged.connect(lambda v: m.update_workload(batch=v))
        self.kv_dtype.activated.connect(lambda _i: self._set_kv(self.kv_dtype.currentData(), None))
        self.kv_k.activated.connect(lambda _i: m.update_workload(kv_dtype_k=self.kv_k.currentData()))
        self.kv_v.activated.connect(lambda _i: m.update_workload(kv_dtype_v=self.kv_v.currentData()))
        self.weights.activated.connect(lambda _i: m.update_workload(weights_format=self.weights.currentData()))
        self.kv_heads.valueChanged.connect(self._set_kv_heads)
        self.kv_heads_reset.clicked.connect(lambda: m.update_workload(kv_heads_override=None))
        self.advanced_toggle.toggled.connect(self._toggle_advanced)

    # -- edits ----------------------------------------------------------------------------------
    def reload_catalogue(self) -> None:
        self._models = {e.id: e for e in model_entries()}
        self._gpus = {g.id: g for g in gpu_entries()}
        self.model_picker.set_entries([e.picker for e in self._models.values()])
        self.gpu_picker.set_entries([g.picker for g in self._gpus.values()])

    def _pick_model(self, model_id: str) -> None:
        entry = self._models.get(model_id)
        if entry is None:
            return
        plan = self.model.plan
        fmt = plan.workload.weights_format
        keep_fmt = fmt if fmt and any(fmt.lower() == k.lower() for k in WEIGHT_BITS) else None
        new = plan.model_copy(update={"model": entry.spec, "origin": ModelOrigin(preset_id=model_id)})
        self.model.set_plan(new.with_workload(kv_heads_override=None, weights_format=keep_fmt))

    def _pick_gpu(self, gpu_id: str) -> None:
        entry = self._gpus.get(gpu_id)
        if entry is not None:
            self.model.set_plan(self.model.plan.model_copy(update={"gpu": entry.spec, "gpu_preset_id": gpu_id}))

    def _set_kv(self, k: str, v: str | None) -> None:
        self.model.update_workload(kv_dtype_k=k, kv_dtype_v=v or k)

    def _set_kv_heads(self, value: int) -> None:
        default = self.model.plan.model.default_kv_heads
        self.model.update_workload(kv_heads_override=None if value == default else value)

    def _toggle_advanced(self, on: bool) -> None:
        self.advanced_box.setVisible(on)
        self.advanced_toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)

    # -- refresh --------------------------------------------------------------------------------
    def refresh(self) -> None:
        plan: Plan = self.model.plan
        w = plan.workload
        widgets = [self.gpu_count, self.context, self.batch, self.kv_dtype, self.kv_k, self.kv_v, self.weights,
                   self.kv_heads]
        blockers = [QSignalBlocker(x) for x in widgets]
        self.model_picker.set_current(plan.origin.preset_id, plan.model.name)
        self.gpu_picker.set_current(plan.gpu_preset_id, plan.gpu.name)
        self.gpu_count.setValue(plan.gpu_count)
        self.context.setValue(w.context)
        self.batch.setValue(w.batch)
        same = w.kv_dtype_k == w.kv_dtype_v
        self.kv_dtype.setCurrentIndex(self.kv_dtype.findData(w.kv_dtype_k) if same else -1)
        self.kv_dtype.setPlaceholderText(f"K {w.kv_dtype_k} / V {w.kv_dtype_v}")
        self.kv_k.setCurrentIndex(self.kv_k.findData(w.kv_dtype_k))
        self.kv_v.setCurrentIndex(self.kv_v.findData(w.kv_dtype_v))
        self._refresh_weights(plan)
        self._refresh_kv_heads(plan)
        del blockers
        native = plan.model.native_context
        self.native.setText(f"native {format_tokens(native)}" if native else "")
        over = bool(native) and w.context > native
        if over != getattr(self, "_over", None):
            self._over = over
            self.native.setStyleSheet("color: #D55E00; font-weight: bold;" if over else "")
            self.native.setToolTip(
                "The model was trained for this context" + (" — the plan goes beyond it." if over else ".")
            )
        self._refresh_model_info(plan)

    def _refresh_weights(self, plan: Plan) -> None:
        names = [f.name for f in plan.model.weight_formats]
        names += [k for k in WEIGHT_BITS if k.lower() not in {n.lower() for n in names}]
        key = (plan.model.name, tuple(names))
        if key != getattr(self, "_weights_key", None):
            self._weights_key = key
            self.weights.clear()
            self.weights.addItem(f"auto ({plan.model.dtype})", None)
            for name in names:
                self.weights.addItem(name, name)
        current = plan.workload.weights_format
        index = 0 if not current else self.weights.findData(current)
        self.weights.setCurrentIndex(max(0, index))

    def _refresh_kv_heads(self, plan: Plan) -> None:
        override = plan.workload.kv_heads_override
        default = plan.model.default_kv_heads
        self.kv_heads.setValue(override or default or 1)
        self.kv_heads.setEnabled(default > 0)
        overridden = override is not None and override != default
        if overridden == getattr(self, "_overridden", None):
            return
        self._overridden = overridden
        font = self.kv_heads.font()
        font.setBold(overridden)
        self.kv_heads.setFont(font)
        self.kv_heads_mark.setText(f"override (model: {default})" if overridden else "")
        self.kv_heads_mark.setStyleSheet("color: #D55E00;" if overridden else "")
        self.kv_heads_reset.setEnabled(overridden)
        if overridden and not self.advanced_toggle.isChecked():
            self.advanced_toggle.setChecked(True)

    def _refresh_model_info(self, plan: Plan) -> None:
        m = plan.model
        params = m.params_total / 1e9
        active = f" ({m.params_active / 1e9:.1f}B active)" if m.is_moe and m.params_active else ""
        kinds = ", ".join(sorted(m.kinds()))
        self.model_info.setText(
            f"{params:.1f}B params{active} · {m.n_layers} layers · {m.default_kv_heads} KV heads · {kinds}"
        )


if __name__ == "__main__":
    from kvdesk.gui.preview import preview

    preview(PlanForm)
