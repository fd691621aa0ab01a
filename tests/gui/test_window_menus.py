"""Every menu action, drag & drop, the unsaved-changes prompt, bad files, remembered geometry."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QApplication, QMessageBox

from kvdesk.core.calculator import calculate
from kvdesk.core.planfile import load_plan
from kvdesk.core.report import summary_text
from tests.gui.conftest import Dialogs, generic_plan

DATA = Path(__file__).resolve().parents[1] / "data"
Button = QMessageBox.StandardButton


def trigger(window: Any, key: str) -> None:
    window.actions_.actions[key].trigger()


def edit(window: Any) -> None:
    """Any change a user makes: the plan becomes unsaved."""
    window.form.batch.setValue(window.model.plan.workload.batch + 1)
    assert window.model.dirty


# -- File ---------------------------------------------------------------------------------------
def test_save_as_then_open_round_trips(window: Any, dialogs: Dialogs, tmp_path: Path) -> None:
    window.form.context.setValue(16384)
    dialogs.save_path = str(tmp_path / "mine")  # no suffix: .kvplan is added
    trigger(window, "save_as")
    saved = tmp_path / "mine.kvplan"
    assert saved.exists() and not window.model.dirty
    assert window.windowTitle() == "mine.kvplan[*] — kvdesk" and not window.isWindowModified()
    assert load_plan(saved).plan == window.model.plan
    edit(window)
    assert window.isWindowModified()
    trigger(window, "save")  # has a path now: no dialog
    assert load_plan(saved).plan == window.model.plan and not window.model.dirty
    expected = window.model.plan
    trigger(window, "new")
    assert window.model.plan != expected and window.model.path is None
    dialogs.open_path = str(saved)
    trigger(window, "open")
    assert window.model.plan == expected and window.model.path == saved
    assert not window.model.can_undo  # a new document starts a new history


def test_open_recent_lists_saved_files(window: Any, dialogs: Dialogs, tmp_path: Path) -> None:
    dialogs.save_path = str(tmp_path / "a.kvplan")
    trigger(window, "save_as")
    menu = window.actions_.recent_menu
    assert menu.isEnabled()
    first = menu.actions()[0]
    assert first.text() == "&1 a.kvplan"
    trigger(window, "new")
    first.trigger()
    assert window.model.path == (tmp_path / "a.kvplan").resolve() or window.model.path == tmp_path / "a.kvplan"


def test_open_bad_file_keeps_plan_and_says_why(window: Any, dialogs: Dialogs, tmp_path: Path) -> None:
    before = window.model.plan
    bad = tmp_path / "broken.kvplan"
    bad.write_text('{"format_version": 1, "plan": {"model": ', encoding="utf-8")
    dialogs.open_path = str(bad)
    trigger(window, "open")
    assert window.model.plan == before
    kind, _title, text = dialogs.shown[-1]
    assert kind == "warning" and "broken.kvplan" in text and "unchanged" in text


def test_open_missing_file_says_so(window: Any, dialogs: Dialogs, tmp_path: Path) -> None:
    assert not window.open_path(tmp_path / "gone.kvplan")
    assert "no such file" in dialogs.shown[-1][2]


def test_failed_save_tells_the_user(window: Any, dialogs: Dialogs, tmp_path: Path) -> None:
    dialogs.save_path = str(tmp_path / "no-such-dir" / "deeper" / "x.kvplan")
    (tmp_path / "no-such-dir").write_text("a file, not a folder", encoding="utf-8")
    edit(window)
    trigger(window, "save_as")
    assert dialogs.kinds()[-1] == "warning" and "not saved" in dialogs.shown[-1][2]
    assert window.model.dirty


@pytest.mark.parametrize("target", ["llama.cpp", "vllm", "ollama", "markdown", "csv"])
def test_export_menu_writes_the_core_export(window: Any, dialogs: Dialogs, tmp_path: Path, target: str) -> None:
    from kvdesk.core.export import ExportError, export_plan

    window.model.update_engine(name="llama.cpp" if target in ("llama.cpp", "markdown", "csv") else target)
    out = tmp_path / f"out-{target}.txt"
    dialogs.save_path = str(out)
    try:
        expected = export_plan(window.model.plan, target)
    except ExportError as exc:  # the engine cannot realise this plan: the user is told why
        trigger(window, f"export_{target}")
        assert not out.exists() and str(exc) in dialogs.shown[-1][2]
        return
    trigger(window, f"export_{target}")
    assert out.read_text(encoding="utf-8") == expected


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_export_chart_image(window: Any, dialogs: Dialogs, tmp_path: Path, fmt: str) -> None:
    dialogs.save_path = str(tmp_path / f"chart.{fmt}")
    trigger(window, f"export_{fmt}")
    data = (tmp_path / f"chart.{fmt}").read_bytes()
    if fmt == "png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert b"<svg" in data[:2000] and b"</svg>" in data


def test_quit_with_unsaved_changes_asks(window: Any, dialogs: Dialogs) -> None:
    edit(window)
    dialogs.question_answer = Button.Cancel
    trigger(window, "quit")
    assert window.isVisible() and dialogs.kinds() == ["question"]
    dialogs.question_answer = Button.Discard
    trigger(window, "quit")
    assert not window.isVisible()


def test_unsaved_prompt_save_writes_then_closes(window: Any, dialogs: Dialogs, tmp_path: Path) -> None:
    edit(window)
    dialogs.question_answer = Button.Save
    dialogs.save_path = str(tmp_path / "kept.kvplan")
    assert window.close()
    assert load_plan(tmp_path / "kept.kvplan").plan == window.model.plan


def test_unsaved_prompt_cancel_on_new_keeps_plan(window: Any, dialogs: Dialogs) -> None:
    edit(window)
    before = window.model.plan
    dialogs.question_answer = Button.Cancel
    trigger(window, "new")
    assert window.model.plan == before and window.model.dirty


def test_clean_plan_closes_without_asking(window: Any, dialogs: Dialogs) -> None:
    assert window.close()
    assert dialogs.shown == []


# -- Edit / View / Help -------------------------------------------------------------------------
def test_undo_redo(window: Any) -> None:
    assert not window.actions_.actions["undo"].isEnabled()
    window.form.context.setValue(16384)
    window.form.batch.setValue(3)
    trigger(window, "undo")
    assert (window.model.plan.workload.context, window.model.plan.workload.batch) == (16384, 1)
    assert window.form.batch.value() == 1
    trigger(window, "undo")
    assert window.model.plan.workload.context == 8192 and not window.model.dirty
    assert not window.actions_.actions["undo"].isEnabled() and window.actions_.actions["redo"].isEnabled()
    trigger(window, "redo")
    assert window.model.plan.workload.context == 16384 and window.form.context.value() == 16384


def test_standard_shortcuts(window: Any) -> None:
    a = window.actions_.actions
    expected = {"new": QKeySequence.StandardKey.New, "open": QKeySequence.StandardKey.Open,
                "save": QKeySequence.StandardKey.Save, "undo": QKeySequence.StandardKey.Undo,
                "redo": QKeySequence.StandardKey.Redo, "quit": QKeySequence.StandardKey.Quit}
    for key, std in expected.items():
        if QKeySequence.keyBindings(std):
            assert a[key].shortcut() == QKeySequence(std), key


def test_copy_summary(window: Any) -> None:
    trigger(window, "copy_summary")
    assert QGuiApplication.clipboard().text() == summary_text(window.model.plan, calculate(window.model.plan))


def test_theme_switch_recolours_chart(window: Any) -> None:
    from kvdesk.gui.documents import app_settings
    from kvdesk.gui.theme import DARK, LIGHT, theme_manager

    trigger(window, "theme_dark")
    assert theme_manager().dark and app_settings().value("theme") == "dark"
    assert window.chart.plot.backgroundBrush().color().name() == DARK.background
    assert QApplication.palette().window().color().lightness() < 80
    trigger(window, "theme_light")
    assert not theme_manager().dark
    assert window.chart.plot.backgroundBrush().color().name() == LIGHT.background


def test_help_about_and_formulas(window: Any, dialogs: Dialogs, monkeypatch: pytest.MonkeyPatch) -> None:
    from kvdesk.gui.help_dialogs import FormulasDialog

    shown: list[str] = []
    monkeypatch.setattr(FormulasDialog, "exec", lambda self: shown.append(self.windowTitle()) or 0)
    trigger(window, "about")
    assert dialogs.kinds() == ["about"] and "kvdesk" in dialogs.shown[0][2]
    trigger(window, "formulas")
    assert shown == ["kvdesk — formulas"]


# -- drag & drop, import --------------------------------------------------------------------------
def drop(window: Any, path: Path) -> tuple[bool, bool]:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, event)
    return enter.isAccepted(), event.isAccepted()


def test_drop_kvplan_opens_it(window: Any, dialogs: Dialogs, tmp_path: Path) -> None:
    from kvdesk.core.planfile import save_plan

    plan = generic_plan(context=12345, batch=3)
    save_plan(tmp_path / "dropped.kvplan", plan)
    assert drop(window, tmp_path / "dropped.kvplan") == (True, True)
    assert window.model.plan == plan and window.model.path == tmp_path / "dropped.kvplan"
    assert window.windowTitle().startswith("dropped.kvplan")


def test_drop_config_json_imports_the_model(window: Any, dialogs: Dialogs, tmp_path: Path) -> None:
    from kvdesk.core.importers.hf_config import import_hf_config

    folder = tmp_path / "gemma"
    folder.mkdir()
    shutil.copy(DATA / "configs" / "gemma-2-9b-it.json", folder / "config.json")
    expected = import_hf_config(folder / "config.json").model
    context = window.model.plan.workload.context
    assert drop(window, folder / "config.json") == (True, True)
    assert window.model.plan.model == expected
    assert window.model.plan.workload.context == context and window.model.dirty
    assert window.form.model_picker.currentText() == expected.name


def test_import_menu_file_and_folder(window: Any, dialogs: Dialogs, tmp_path: Path) -> None:
    from kvdesk.core.importers.hf_config import import_hf_config

    folder = tmp_path / "llama70"
    folder.mkdir()
    shutil.copy(DATA / "configs" / "llama-3.1-70b-instruct.json", folder / "config.json")
    dialogs.folder_path = str(folder)
    trigger(window, "import_folder")
    assert window.model.plan.model == import_hf_config(folder).model
    dialogs.open_path = str(DATA / "configs" / "gemma-2-2b-it.json")
    trigger(window, "import")
    assert window.model.plan.model == import_hf_config(DATA / "configs" / "gemma-2-2b-it.json").model
    assert window.model.can_undo
    trigger(window, "undo")
    assert window.model.plan.model == import_hf_config(folder).model


def test_import_button_offers_file_and_folder(window: Any, dialogs: Dialogs, tmp_path: Path) -> None:
    dialogs.open_path = str(DATA / "configs" / "gemma-2-2b-it.json")
    window.form.import_button.click()
    assert window.model.plan.model.name != generic_plan().model.name
    labels = [a.text() for a in window.form.import_button.menu().actions()]
    assert labels == ["config.json or GGUF file…", "Model folder (config.json + safetensors)…"]


def test_drop_other_files_is_refused(window: Any, dialogs: Dialogs, tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("hello", encoding="utf-8")
    before = window.model.plan
    accepted, _ = drop(window, other)
    assert not accepted and window.model.plan == before


def test_drop_bad_gguf_warns_and_keeps_plan(window: Any, dialogs: Dialogs, tmp_path: Path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"NOTGGUF" + bytes(100))
    before = window.model.plan
    drop(window, bad)
    assert window.model.plan == before
    assert dialogs.kinds() == ["warning"] and "model.gguf" in dialogs.shown[0][2]


# -- window state ---------------------------------------------------------------------------------
def test_geometry_is_remembered(qtbot: Any, window: Any, dialogs: Dialogs) -> None:
    from kvdesk.gui.main_window import MainWindow

    sizes = []
    current = window
    for w, h in ((700, 480), (760, 540)):  # inside the offscreen screen: restoreGeometry keeps it on screen
        current.resize(w, h)
        sizes.append((current.width(), current.height()))
        current.close()
        current = MainWindow(generic_plan())
        qtbot.addWidget(current)
        assert (current.width(), current.height()) == sizes[-1]
    assert sizes[0] != sizes[1]
