"""PlanModel: the one object every widget shares — the current Plan, its Breakdown, one recompute path.

Widgets write user edits through ``set_plan`` / ``update_workload`` / ``update_engine``; every change
recomputes once and emits ``changed``. A bad value never replaces the plan: ``error`` says why.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from kvdesk.core.breakdown import Breakdown
from kvdesk.core.calculator import calculate
from kvdesk.core.errors import describe_validation_error
from kvdesk.core.plan import Plan


class PlanModel(QObject):
    changed = Signal()
    error_changed = Signal(str)

    def __init__(self, plan: Plan, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._plan = plan
        self._breakdown = calculate(plan)
        self.error = ""

    @property
    def plan(self) -> Plan:
        return self._plan

    @property
    def breakdown(self) -> Breakdown:
        return self._breakdown

    def set_plan(self, plan: Plan) -> bool:
        """Adopt ``plan`` if it computes; otherwise keep the current one and report the error."""
        try:
            breakdown = calculate(plan)
        except (ValueError, KeyError) as exc:
            self.error = describe_validation_error(exc)
            self.error_changed.emit(self.error)
            return False
        self._plan, self._breakdown = plan, breakdown
        if self.error:
            self.error = ""
            self.error_changed.emit("")
        self.changed.emit()
        return True

    def update_workload(self, **changes: object) -> bool:
        try:
            return self.set_plan(self._plan.with_workload(**changes))
        except ValueError as exc:
            self.error = describe_validation_error(exc)
            self.error_changed.emit(self.error)
            return False

    def update_engine(self, **changes: object) -> bool:
        try:
            return self.set_plan(self._plan.with_engine(**changes))
        except ValueError as exc:
            self.error = describe_validation_error(exc)
            self.error_changed.emit(self.error)
            return False
