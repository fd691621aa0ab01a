"""Help ▸ About and Help ▸ Formulas."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QMessageBox, QTextBrowser, QVBoxLayout, QWidget

from kvdesk import __version__

FORMULAS_HTML = """
<h3>How kvdesk computes memory</h3>
<p><b>KV cache (textbook)</b>: 2 × layers × kv_heads × head_dim × context × sequences × bytes per value.
K and V are sized separately when their widths differ (DeepSeek K 192 / V 128).</p>
<ul>
<li><b>Sliding-window layers</b> keep at most <i>window</i> tokens
(llama.cpp: about window × n_seq + ubatch cells).</li>
<li><b>MLA</b> (DeepSeek) caches the compressed latent: kv_lora_rank + rope_dim values per token.</li>
<li><b>Recurrent / state-space layers</b> hold a fixed state per sequence, independent of context.</li>
<li><b>Quantized KV</b> (ggml blocks): q8_0 = 34 B per 32 values, q4_0 = 18 B per 32; fp8 = 1 B per value.</li>
</ul>
<p><b>llama.cpp</b>: cells padded (256 with flash attention), compute buffers per device, and a margin
(--fit keeps 1 GiB free). <b>vLLM</b>: budget = total memory × gpu_memory_utilization − weights − activation
peak − CUDA graphs; KV paged in blocks of 16 tokens. <b>Ollama</b>: llama.cpp with KV × OLLAMA_NUM_PARALLEL.</p>
<p><b>Decode speed</b> is memory-bound: one token reads the (active) weights and the live KV once;
time ≈ bytes ÷ bandwidth. Bytes spilled to system RAM are read over PCIe, which is why a spill is slow.</p>
<p>The Explain tab shows the formula with your plan's numbers and every rule the engine applied, with its source.</p>
"""


def show_about(parent: QWidget | None) -> None:
    QMessageBox.about(
        parent,
        "About kvdesk",
        f"<b>kvdesk {__version__}</b><br/>A desktop VRAM planner for running LLMs on your own GPUs: "
        "weights, KV cache and overhead, per engine.<br/><br/>MIT licence. Works offline; never phones home.",
    )


class FormulasDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("kvdesk — formulas")
        text = QTextBrowser()
        text.setHtml(FORMULAS_HTML)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addWidget(buttons)
        self.resize(640, 520)


def show_formulas(parent: QWidget | None) -> None:
    FormulasDialog(parent).exec()
