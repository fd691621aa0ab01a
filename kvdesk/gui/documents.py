"""DocumentController: File ▸ New / Open / Open Recent / Save / Save As / Export, model import, unsaved prompt.

Opening a bad file shows what is wrong and keeps the current plan. The plan-file, importer and
export modules are imported only when used.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from kvdesk.core.errors import KvdeskError
from kvdesk.core.settings import config_dir
from kvdesk.gui.plan_model import PlanModel, describe_error

PLAN_FILTER = "kvdesk plans (*.kvplan);;All files (*)"
OPEN_FILTER = "Plans and models (*.kvplan *.json *.gguf);;kvdesk plans (*.kvplan);;" \
              "Hugging Face config (*.json);;GGUF models (*.gguf);;All files (*)"
MAX_RECENT = 8
EXPORTS: dict[str, tuple[str, str]] = {  # target -> (menu label, file filter)
    "llama.cpp": ("llama.cpp command…", "Shell script (*.sh);;Text (*.txt)"),
    "vllm": ("vLLM command…", "Shell script (*.sh);;Text (*.txt)"),
    "ollama": ("Ollama Modelfile…", "Modelfile (Modelfile *.Modelfile);;Text (*.txt)"),
    "markdown": ("Markdown report…", "Markdown (*.md)"),
    "csv": ("CSV breakdown…", "CSV (*.csv)"),
}
_LOAD_ERRORS = (KvdeskError, ValueError, KeyError, OSError, ImportError, TypeError, RecursionError)


def app_settings() -> QSettings:
    """The app's QSettings, stored as an INI file in kvdesk's config dir (tests redirect it)."""
    return QSettings(str(config_dir() / "kvdesk-gui.ini"), QSettings.Format.IniFormat)


def kind_of(path: Path) -> str:
    """'plan', 'hf' (config.json or a folder holding one) or 'gguf'."""
    if path.is_dir() or (path.suffix.lower() == ".json" and path.name != "plan.json"):
        return "hf"
    if path.suffix.lower() == ".gguf":
        return "gguf"
    return "plan"


class DocumentController(QObject):
    recent_changed = Signal()
    message = Signal(str)  # status-bar text

    def __init__(self, model: PlanModel, window: QWidget) -> None:
        super().__init__(window)
        self.model = model
        self.window = window

    # -- dialogs (tests patch QFileDialog / QMessageBox) ------------------------------------------
    def _warn(self, title: str, text: str) -> None:
        QMessageBox.warning(self.window, title, text)

    def _start_dir(self) -> str:
        path = self.model.path
        return str(path.parent) if path else str(Path.home())

    # -- File menu ------------------------------------------------------------------------------
    def new(self) -> bool:
        if not self.maybe_discard():
            return False
        from kvdesk.core.defaults import default_plan

        self.model.load(default_plan())
        self.message.emit("New plan")
        return True

    def open_dialog(self) -> bool:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open plan or model", self._start_dir(), OPEN_FILTER)
        return bool(path) and self.open_path(path)

    def open_path(self, path: str | Path) -> bool:
        """Open a .kvplan, or import a config.json / GGUF / model folder into the current plan."""
        target = Path(path)
        if not target.exists():
            self._warn("Cannot open", f"{target}: no such file or folder.")
            self._forget_recent(target)
            return False
        kind = kind_of(target)
        if kind == "plan":
            return self._open_plan(target)
        return self.import_model(target)

    def _open_plan(self, path: Path) -> bool:
        if not self.maybe_discard():
            return False
        try:
            from kvdesk.core.planfile import load_plan

            loaded = load_plan(path)
        except _LOAD_ERRORS as exc:
            self._warn("Cannot open plan", f"{path.name} could not be opened:\n\n{describe_error(exc)}\n\n"
                       "The current plan is unchanged.")
            return False
        if not self.model.load(loaded.plan, path):
            self._warn("Cannot open plan", f"{path.name}: {self.model.error}")
            return False
        self.add_recent(path)
        messages = list(getattr(loaded, "messages", []) or [])
        if messages:
            QMessageBox.information(self.window, "Plan opened", "\n".join(messages))
        self.message.emit(f"Opened {path.name}")
        return True

    def save(self) -> bool:
        if self.model.path is None or self.model.path.suffix.lower() != ".kvplan":
            return self.save_as()
        return self._save_to(self.model.path)

    def save_as(self) -> bool:
        suggested = self.model.path or Path(self._start_dir()) / f"{_slug(self.model.plan.model.name)}.kvplan"
        path, _ = QFileDialog.getSaveFileName(self.window, "Save plan", str(suggested.with_suffix(".kvplan")),
                                              PLAN_FILTER)
        if not path:
            return False
        target = Path(path)
        if not target.suffix:
            target = target.with_suffix(".kvplan")
        return self._save_to(target)

    def _save_to(self, path: Path) -> bool:
        try:
            from kvdesk.core.planfile import save_plan

            save_plan(path, self.model.plan)
        except _LOAD_ERRORS as exc:
            self._warn("Save failed", f"{path.name} was not saved:\n\n{describe_error(exc)}")
            return False
        self.model.mark_saved(path)
        self.add_recent(path)
        self.message.emit(f"Saved {path.name}")
        return True

    def maybe_discard(self) -> bool:
        """True when it is fine to replace/close the plan (saved, discarded, or nothing to lose)."""
        if not self.model.dirty:
            return True
        name = self.model.path.name if self.model.path else "This plan"
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(
            self.window, "Unsaved changes", f"{name} has unsaved changes. Save them first?",
            buttons.Save | buttons.Discard | buttons.Cancel, buttons.Save,
        )
        if answer == buttons.Save:
            return self.save()
        return bool(answer == buttons.Discard)

    # -- import ---------------------------------------------------------------------------------
    def import_dialog(self, folder: bool = False) -> bool:
        if folder:
            path = QFileDialog.getExistingDirectory(self.window, "Import model folder", self._start_dir())
        else:
            path, _ = QFileDialog.getOpenFileName(
                self.window, "Import model", self._start_dir(),
                "Model config or GGUF (config.json *.json *.gguf);;All files (*)",
            )
        return bool(path) and self.import_model(Path(path))

    def import_model(self, path: Path) -> bool:
        try:
            if kind_of(path) == "gguf":
                from kvdesk.core.importers.gguf import import_gguf

                result = import_gguf(path)
            else:
                from kvdesk.core.importers.hf_config import import_hf_config

                result = import_hf_config(path)
        except _LOAD_ERRORS as exc:
            self._warn("Cannot import model", f"{path.name} could not be read as a model:\n\n"
                       f"{describe_error(exc)}\n\nThe current plan is unchanged.")
            return False
        plan = self.model.plan.model_copy(update={"model": result.model, "origin": result.origin})
        if not self.model.set_plan(plan.with_workload(kv_heads_override=None, weights_format=None)):
            self._warn("Cannot import model", f"{path.name}: {self.model.error}")
            return False
        self.message.emit(f"Imported {result.model.name}" + (f" — {result.notes[0]}" if result.notes else ""))
        return True

    # -- export ---------------------------------------------------------------------------------
    def export(self, target: str) -> bool:
        label, filt = EXPORTS[target]
        try:
            from kvdesk.core.export import export_plan

            text = export_plan(self.model.plan, target)
        except _LOAD_ERRORS as exc:
            self._warn("Export failed", f"{label.rstrip('…')}: {describe_error(exc)}")
            return False
        base = Path(self._start_dir()) / _slug(self.model.plan.model.name)
        path, _ = QFileDialog.getSaveFileName(self.window, f"Export {label.rstrip('…')}", str(base), filt)
        if not path:
            return False
        return self._write_text(Path(path), text)

    def _write_text(self, path: Path, text: str) -> bool:
        try:
            from kvdesk.core.atomic import atomic_write_text

            atomic_write_text(path, text)
        except OSError as exc:
            self._warn("Export failed", f"{path.name} was not written: {exc}")
            return False
        self.message.emit(f"Exported {path.name}")
        return True

    # -- recent files ---------------------------------------------------------------------------
    def recent(self) -> list[Path]:
        value = app_settings().value("recent", [])
        items = [value] if isinstance(value, str) else list(value) if isinstance(value, list | tuple) else []
        return [Path(str(p)) for p in items if p][:MAX_RECENT]

    def add_recent(self, path: Path) -> None:
        items = [path.resolve(), *[p for p in self.recent() if p != path.resolve()]]
        app_settings().setValue("recent", [str(p) for p in items[:MAX_RECENT]])
        self.recent_changed.emit()

    def _forget_recent(self, path: Path) -> None:
        items = [p for p in self.recent() if p != path and p != path.resolve()]
        app_settings().setValue("recent", [str(p) for p in items])
        self.recent_changed.emit()

    def clear_recent(self) -> None:
        app_settings().setValue("recent", [])
        self.recent_changed.emit()


def _slug(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "-" for c in name.strip())
    return "-".join(p for p in keep.split("-") if p)[:80] or "plan"
