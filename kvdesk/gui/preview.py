"""Run one panel alone for previewing: ``python -m kvdesk.gui.<panel>`` calls ``preview(PanelClass)``."""

from __future__ import annotations

import sys
from collections.abc import Callable

from PySide6.QtWidgets import QWidget

from kvdesk.gui.plan_model import PlanModel


def preview_model() -> PlanModel:
    from kvdesk.core.defaults import default_plan

    return PlanModel(default_plan())


def preview(factory: Callable[[PlanModel], QWidget], smoke: bool | None = None) -> int:
    """Show ``factory(model)`` in its own window; ``--smoke`` (or KVDESK_PREVIEW_SMOKE) exits after one paint."""
    import os

    from PySide6.QtCore import QTimer

    from kvdesk.gui.app import make_app
    from kvdesk.gui.theme import theme_manager

    app = make_app()
    theme = os.environ.get("KVDESK_THEME", "system")
    theme_manager().apply(theme)
    model = preview_model()
    widget = factory(model)
    widget.setWindowTitle(f"kvdesk preview — {type(widget).__name__}")
    widget.resize(900, 600)
    widget.show()
    if smoke is None:
        smoke = "--smoke" in sys.argv or bool(os.environ.get("KVDESK_PREVIEW_SMOKE"))
    if smoke:
        QTimer.singleShot(200, app.quit)
    code = app.exec()
    if not smoke:
        sys.exit(code)
    return code
