"""Qt widgets of kvdesk (PySide6 + pyqtgraph). Thin: each widget gets its model in the constructor.

The core (numpy, pydantic, the plan models, the catalogue) is imported here, before any module of this
package imports PySide6: once PySide6 is loaded, shiboken's import hook inspects the source of every
module imported after it, which would add ~0.2 s to start-up for these.
"""

import kvdesk.core.calculator
import kvdesk.core.catalog
import kvdesk.core.defaults  # noqa: F401
