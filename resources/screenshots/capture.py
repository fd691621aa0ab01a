"""Regenerate the README screenshots: ``python resources/screenshots/capture.py`` (under Xvfb or a desktop).

Writes main-light.png (a plan that fits) and main-dark.png (two GPUs, spilling) next to this file, each
grabbed from the real main window at 1280×800 after its first paint.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def capture(theme: str, out: Path, gpus: int, context: int, batch: int) -> None:
    from PySide6.QtWidgets import QApplication

    from kvdesk.gui.main_window import MainWindow
    from kvdesk.gui.theme import theme_manager

    window = MainWindow()
    window.resize(1280, 800)
    window.show()
    theme_manager().apply(theme)
    window.model.update(gpu_count=gpus)
    window.model.update_workload(context=context, batch=batch, kv_dtype_k="q8_0", kv_dtype_v="q8_0")
    window.model.update_engine(flash_attn=True)
    for _ in range(50):
        QApplication.processEvents()
    window.grab().save(str(out), "PNG")
    window.model.mark_saved(out.with_suffix(".kvplan"))  # no unsaved-changes prompt on close
    window.close()
    print(f"{out}: {out.stat().st_size // 1024} KiB")


def main() -> int:
    tmp = tempfile.mkdtemp(prefix="kvdesk-shots-")
    os.environ.setdefault("KVDESK_CONFIG_DIR", f"{tmp}/config")
    os.environ.setdefault("KVDESK_DATA_DIR", f"{tmp}/data")
    from kvdesk.gui.app import make_app

    make_app()
    capture("light", HERE / "main-light.png", gpus=1, context=32768, batch=3)
    capture("dark", HERE / "main-dark.png", gpus=2, context=65536, batch=8)
    return 0


if __name__ == "__main__":
    sys.exit(main())
