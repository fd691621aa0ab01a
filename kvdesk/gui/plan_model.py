"""PlanModel: the one object every widget shares — the current Plan, its Breakdown, one recompute path.

Widgets write user edits through ``set_plan`` / ``update_workload`` / ``update_engine``; every change
recomputes once and emits ``changed``. A bad value never replaces the plan: ``error`` says why.

It also keeps what a document needs: an undo/redo history of plans, the file the plan lives in and
whether it changed since it was opened or saved (``dirty``).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from kvdesk.core.breakdown import Breakdown
from kvdesk.core.calculator import calculate
from kvdesk.core.errors import KvdeskError, describe_validation_error
from kvdesk.core.plan import EngineSettings, Plan, Workload

_HISTORY = 200
# What a failed recompute may raise: bad values (InputError is a ValueError), an unknown engine
# (KeyError) or an engine profile that is not installed yet (ModuleNotFoundError).
_COMPUTE_ERRORS = (ValueError, KeyError, ImportError, KvdeskError, ArithmeticError)


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, ImportError):
        return f"engine not available in this build ({exc})"
    if isinstance(exc, KeyError):
        return str(exc.args[0]) if exc.args else "unknown key"
    return describe_validation_error(exc) if isinstance(exc, Exception) else str(exc)


def _fallback_breakdown(plan: Plan) -> Breakdown:
    """Numbers to show when the plan's engine cannot compute: the generic profile's."""
    return calculate(plan.with_engine(name="generic"))


class PlanModel(QObject):
    changed = Signal()
    error_changed = Signal(str)
    dirty_changed = Signal(bool)
    path_changed = Signal(str)
    history_changed = Signal()
    rejected = Signal(str)  # an edit was refused (the plan is unchanged): widgets show the plan again

    def __init__(self, plan: Plan, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.error = ""
        self._plan = plan
        try:
            self._breakdown = calculate(plan)
        except _COMPUTE_ERRORS as exc:
            self.error = describe_error(exc)
            self._breakdown = _fallback_breakdown(plan)
        self._undo: list[Plan] = []
        self._redo: list[Plan] = []
        self._clean: Plan | None = plan
        self._path: Path | None = None
        self._was_dirty = False

    # -- state ---------------------------------------------------------------------------------
    @property
    def plan(self) -> Plan:
        return self._plan

    @property
    def breakdown(self) -> Breakdown:
        return self._breakdown

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def dirty(self) -> bool:
        return self._plan != self._clean

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    # -- edits ---------------------------------------------------------------------------------
    def set_plan(self, plan: Plan) -> bool:
        """Adopt ``plan`` if it computes; otherwise keep the current one and report the error."""
        if plan == self._plan:
            self._set_error("")
            return True
        previous = self._plan
        if not self._adopt(plan):
            return False
        self._undo.append(previous)
        del self._undo[:-_HISTORY]
        self._redo.clear()
        self._after_change()
        return True

    def update_workload(self, **changes: object) -> bool:
        try:  # validated: Plan.with_workload (model_copy) would not check the values
            work = Workload.model_validate({**self._plan.workload.model_dump(), **changes})
            plan = self._plan.model_copy(update={"workload": work})
        except ValueError as exc:
            self._reject(describe_error(exc))
            return False
        return self.set_plan(plan)

    def update_engine(self, **changes: object) -> bool:
        try:
            engine = EngineSettings.model_validate({**self._plan.engine.model_dump(), **changes})
            plan = self._plan.model_copy(update={"engine": engine})
        except ValueError as exc:
            self._reject(describe_error(exc))
            return False
        return self.set_plan(plan)

    def update(self, **changes: object) -> bool:
        """Change top-level plan fields (model, gpu, gpu_count, origin …) in one step."""
        try:
            plan = Plan.model_validate({**dict(self._plan), **changes})
        except ValueError as exc:
            self._reject(describe_error(exc))
            return False
        return self.set_plan(plan)

    def undo(self) -> bool:
        return self._step(self._undo, self._redo)

    def redo(self) -> bool:
        return self._step(self._redo, self._undo)

    # -- documents -----------------------------------------------------------------------------
    def load(self, plan: Plan, path: str | Path | None = None) -> bool:
        """Replace the whole document (File ▸ New / Open): history cleared, clean, new path."""
        try:
            breakdown = calculate(plan)
            error = ""
        except _COMPUTE_ERRORS as exc:
            try:
                breakdown, error = _fallback_breakdown(plan), describe_error(exc)
            except _COMPUTE_ERRORS:
                self._reject(describe_error(exc))
                return False
        self._plan, self._breakdown = plan, breakdown
        self._undo.clear()
        self._redo.clear()
        self._clean = plan
        self._set_path(Path(path) if path else None)
        self._set_error(error)
        self._after_change()
        return True

    def mark_saved(self, path: str | Path) -> None:
        self._clean = self._plan
        self._set_path(Path(path))
        self._emit_dirty()

    # -- internals -----------------------------------------------------------------------------
    def _adopt(self, plan: Plan) -> bool:
        try:
            breakdown = calculate(plan)
        except _COMPUTE_ERRORS as exc:
            self._reject(describe_error(exc))
            return False
        self._plan, self._breakdown = plan, breakdown
        self._set_error("")
        return True

    def _step(self, source: list[Plan], target: list[Plan]) -> bool:
        while source:
            plan = source.pop()
            current = self._plan
            if self._adopt(plan):
                target.append(current)
                self._after_change()
                return True
        self.history_changed.emit()
        return False

    def _after_change(self) -> None:
        self.changed.emit()
        self.history_changed.emit()
        self._emit_dirty()

    def _emit_dirty(self) -> None:
        dirty = self.dirty
        if dirty != self._was_dirty:
            self._was_dirty = dirty
            self.dirty_changed.emit(dirty)

    def _reject(self, error: str) -> None:
        self._set_error(error)
        self.rejected.emit(error)

    def _set_error(self, error: str) -> None:
        if error != self.error:
            self.error = error
            self.error_changed.emit(error)

    def _set_path(self, path: Path | None) -> None:
        if path != self._path:
            self._path = path
            self.path_changed.emit(str(path) if path else "")
