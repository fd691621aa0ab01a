"""Light / dark / system themes: the Qt palette, the stylesheet and the chart colours.

Chart colours are picked to stay distinguishable in both themes and for common colour-vision
deficiencies (Okabe–Ito hues): weights blue, KV orange, overhead purple, spill vermilion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

ThemeName = Literal["light", "dark", "system"]
THEMES: tuple[ThemeName, ...] = ("light", "dark", "system")


@dataclass(frozen=True)
class ChartColors:
    background: str
    foreground: str
    grid: str
    weights: str
    k_cache: str
    v_cache: str
    overhead: str
    free: str
    spill: str
    budget: str
    curves: tuple[str, ...]
    fits: str
    tight: str
    spills: str


LIGHT = ChartColors(
    background="#ffffff",
    foreground="#202124",
    grid="#d0d4da",
    weights="#0072B2",
    k_cache="#E69F00",
    v_cache="#F5C04A",
    overhead="#8E6BB8",
    free="#E6ECF2",
    spill="#D55E00",
    budget="#202124",
    curves=("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#8E6BB8"),
    fits="#1B7F3B",
    tight="#A86A00",
    spills="#B3261E",
)

DARK = ChartColors(
    background="#1e1f22",
    foreground="#e8eaed",
    grid="#3c4043",
    weights="#4DA3E0",
    k_cache="#F0A830",
    v_cache="#F7CD6B",
    overhead="#B39DDB",
    free="#2F3338",
    spill="#FF7A45",
    budget="#e8eaed",
    curves=("#4DA3E0", "#F0A830", "#3CC79A", "#E08CC0", "#8FD3FF", "#FF7A45", "#B39DDB"),
    fits="#3CC76A",
    tight="#F2B138",
    spills="#FF6B5E",
)


def _dark_palette() -> QPalette:
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#25272b",
        QPalette.ColorRole.WindowText: "#e8eaed",
        QPalette.ColorRole.Base: "#1e1f22",
        QPalette.ColorRole.AlternateBase: "#2b2d31",
        QPalette.ColorRole.ToolTipBase: "#2b2d31",
        QPalette.ColorRole.ToolTipText: "#e8eaed",
        QPalette.ColorRole.PlaceholderText: "#9aa0a6",
        QPalette.ColorRole.Text: "#e8eaed",
        QPalette.ColorRole.Button: "#2f3136",
        QPalette.ColorRole.ButtonText: "#e8eaed",
        QPalette.ColorRole.BrightText: "#ff6b5e",
        QPalette.ColorRole.Highlight: "#3d7dd8",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#8ab4f8",
        QPalette.ColorRole.Mid: "#3c4043",
        QPalette.ColorRole.Dark: "#17181a",
        QPalette.ColorRole.Light: "#3c4043",
    }
    for role, color in roles.items():
        p.setColor(role, QColor(color))
    disabled = QColor("#7f8388")
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    return p


def system_is_dark() -> bool:
    hints = QGuiApplication.styleHints()
    return bool(hints.colorScheme() == Qt.ColorScheme.Dark)


class ThemeManager(QObject):
    """Applies a theme to the application and tells charts which colours to use."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name: ThemeName = "system"
        self._light_palette: QPalette | None = None

    @property
    def dark(self) -> bool:
        return self.name == "dark" or (self.name == "system" and system_is_dark())

    @property
    def colors(self) -> ChartColors:
        return DARK if self.dark else LIGHT

    def apply(self, name: str) -> None:
        """Style the app for theme ``name``; ``changed`` fires only when the colours really change (a window
        built under the default colours and then given the same theme is not redrawn for nothing)."""
        was_dark = self.dark
        self.name = name if name in THEMES else "system"
        app = QApplication.instance()
        if isinstance(app, QApplication):
            if self._light_palette is None:
                if app.style().name().lower() != "fusion":  # already Fusion on most Linux desktops: no restyle
                    app.setStyle("Fusion")
                self._light_palette = QPalette(app.palette())
            app.setPalette(_dark_palette() if self.dark else self._light_palette)
            app.setStyleSheet(stylesheet(self.dark))
        if self.dark != was_dark:
            self.changed.emit()


_THEME_MANAGER: ThemeManager | None = None


def theme_manager() -> ThemeManager:
    global _THEME_MANAGER
    if _THEME_MANAGER is None:
        _THEME_MANAGER = ThemeManager()
    return _THEME_MANAGER


def current_colors() -> ChartColors:
    return theme_manager().colors


def stylesheet(dark: bool) -> str:
    """The app stylesheet (resources/styles/{light,dark}.qss) or '' when not shipped."""
    try:
        from kvdesk.core.resources import resources_dir

        path = resources_dir() / "styles" / ("dark.qss" if dark else "light.qss")
        return path.read_text(encoding="utf-8") if path.exists() else ""
    except (FileNotFoundError, OSError):
        return ""
