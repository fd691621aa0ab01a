"""SearchPicker: an editable combo box grouped under headers (family / vendor), filtered as you type."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QComboBox, QCompleter, QLineEdit, QWidget

ID_ROLE = Qt.ItemDataRole.UserRole + 1


@dataclass(frozen=True)
class PickerEntry:
    id: str
    text: str
    group: str
    tooltip: str = ""


class SearchPicker(QComboBox):
    """Emits ``picked(id)`` when the user chooses an entry (click, or type and press Enter)."""

    picked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setEditable(True)
        self.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.setMaxVisibleItems(20)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(18)
        self._items = QStandardItemModel(self)
        self.setModel(self._items)
        self._search = QStandardItemModel(self)
        completer = QCompleter(self._search, self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        completer.activated[str].connect(self._completed)  # type: ignore[index]
        self.setCompleter(completer)
        self._by_text: dict[str, str] = {}
        self._current_id = ""
        self._fallback = ""
        self.activated.connect(self._activated)
        line = self._line()
        line.setPlaceholderText("type to search…")
        line.editingFinished.connect(self._editing_finished)

    def _line(self) -> QLineEdit:
        line = self.lineEdit()
        assert line is not None  # editable combo box
        return line

    def set_entries(self, entries: list[PickerEntry]) -> None:
        """Fill the list: one bold, unselectable header per group, entries below it."""
        self.blockSignals(True)
        self._items.clear()
        self._search.clear()
        self._by_text.clear()
        header_font = QFont(self.font())
        header_font.setBold(True)
        groups: dict[str, list[PickerEntry]] = {}
        for e in entries:
            groups.setdefault(e.group or "Other", []).append(e)
        for group, members in groups.items():
            header = QStandardItem(group)
            header.setFlags(Qt.ItemFlag.NoItemFlags)
            header.setFont(header_font)
            self._items.appendRow(header)
            for e in members:
                item = QStandardItem("   " + e.text)
                item.setData(e.id, ID_ROLE)
                item.setToolTip(e.tooltip or e.text)
                self._items.appendRow(item)
                self._search.appendRow(QStandardItem(e.text))
                self._by_text[e.text] = e.id
        self.blockSignals(False)
        current, self._current_id = self._current_id, "\0"
        self.set_current(current, self._fallback)

    def set_current(self, entry_id: str | None, fallback_text: str = "") -> None:
        """Show ``entry_id`` (or ``fallback_text`` when the plan's item is not in the list)."""
        if (entry_id or "") == self._current_id and fallback_text == self._fallback and not self._line().isModified():
            return
        self._current_id = entry_id or ""
        self._fallback = fallback_text
        index = self.findData(entry_id, ID_ROLE) if entry_id else -1
        self.blockSignals(True)
        if index >= 0:
            self.setCurrentIndex(index)
            self.setEditText(self.itemText(index).strip())
        else:
            self.setCurrentIndex(-1)
            self.setEditText(fallback_text)
        self._line().setCursorPosition(0)
        self._line().setModified(False)
        self.blockSignals(False)

    def current_id(self) -> str:
        return self._current_id

    def ids(self) -> list[str]:
        return [str(self._items.item(r).data(ID_ROLE)) for r in range(self._items.rowCount())
                if self._items.item(r).data(ID_ROLE)]

    def pick(self, entry_id: str) -> None:
        """Choose ``entry_id`` as a user would (tests, drag & drop)."""
        index = self.findData(entry_id, ID_ROLE)
        if index < 0:
            raise KeyError(entry_id)
        self.setCurrentIndex(index)
        self._activated(index)

    def _activated(self, index: int) -> None:
        entry_id = self.itemData(index, ID_ROLE)
        if entry_id:
            self._choose(str(entry_id))
        else:
            self.set_current(self._current_id, self._fallback)

    def _completed(self, text: str) -> None:
        entry_id = self._by_text.get(text)
        if entry_id:
            self._choose(entry_id)

    def _editing_finished(self) -> None:
        completer = self.completer()
        popup = completer.popup() if completer is not None else None
        if popup is not None and popup.isVisible():
            return  # focus moved to the suggestions; the choice comes from the completer
        text = self.currentText().strip()
        entry_id = self._by_text.get(text)
        if entry_id and entry_id != self._current_id:
            self._choose(entry_id)
        else:
            self.set_current(self._current_id, self._fallback)

    def _choose(self, entry_id: str) -> None:
        changed = entry_id != self._current_id
        self.set_current(entry_id)
        if changed:
            self.picked.emit(entry_id)
