"""Qt widgets of kvdesk (PySide6 + pyqtgraph). Thin: each widget gets its model in the constructor.

The core (numpy, pydantic, the plan models, the catalogue, the default engine) is imported here, before any
module of this package imports PySide6: once PySide6 is loaded, shiboken's ``__feature__`` import hook reads
the source of every module imported after it (``inspect.getsource``) to see whether it mentions PySide6.
Modules already loaded are never read. ``_skip_feature_source_scan`` then spares pyqtgraph's ~150 modules
the same read: kvdesk never uses ``from __feature__ import …`` (snake_case / true_property), so the answer
is never needed. Measured in benchmarks/startup.py.
"""

import sys

import kvdesk.core.autosave
import kvdesk.core.calculator
import kvdesk.core.catalog
import kvdesk.core.defaults
import kvdesk.core.engines.llamacpp  # the default plan's engine: its first calculate() happens at start
import kvdesk.core.limits
import kvdesk.core.units
import kvdesk.core.verdict  # noqa: F401


def _skip_feature_source_scan() -> None:
    """Tell shiboken's feature hook that modules imported from now on do not use ``__feature__``.

    ``shibokensupport/feature.py`` (PySide6 ≥ 6.4, PYSIDE-2029) marks each newly imported module 0 ("uses
    PySide6, switch features for it") or -1 ("ignore") by reading its whole source file. With no feature ever
    selected, both marks behave the same. Any failure leaves PySide6's own behaviour in place.
    """
    import PySide6.QtCore  # noqa: F401  (loads shibokensupport)

    feature = sys.modules.get("shibokensupport.feature")
    if feature is not None and callable(getattr(feature, "_mod_uses_pyside", None)):
        setattr(feature, "_mod_uses_pyside", lambda module: False)  # noqa: B010


_skip_feature_source_scan()
