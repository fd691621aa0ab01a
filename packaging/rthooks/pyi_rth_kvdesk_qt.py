"""PyInstaller runtime hook of the kvdesk bundle, in place of PyInstaller's own ``pyi_rth_pyside6``
(packaging/kvdesk.spec drops that one; see ``DROPPED_RUNTIME_HOOKS`` in packaging/bundle_filters.py).

PyInstaller's hook imports ``PySide6.QtCore`` at start to add a ``qt.conf`` when the binding has none, so
every start loaded Qt and shiboken first: ``kvdesk --version`` and ``kvdesk list models`` paid for a Qt
they never use. PySide6's pip wheels write their own ``qt.conf`` when QtCore is imported (Prefix = the
package's ``Qt/`` folder), so that import is not needed. What remains of the hook is the plugin path; its
other settings serve parts the bundle leaves out (QML import path; PATH / DYLD_LIBRARY_PATH for the
OpenSSL of QtNetwork).
"""

import os
import sys

os.environ["QT_PLUGIN_PATH"] = os.path.join(
    sys._MEIPASS, "PySide6", *(() if sys.platform == "win32" else ("Qt",)), "plugins"
)
