"""Help → Plugins: every entry point with its kind and status ("ok" or "failed: reason")."""

from __future__ import annotations

from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from studio.core.registry import Registry


class PluginsDialog(QDialog):
    COLUMNS = ("Plugin", "Kind", "Provides", "Status")

    def __init__(self, registry: Registry, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Plugins")
        self.resize(760, 420)
        self.registry = registry
        layout = QVBoxLayout(self)
        ok = sum(1 for e in registry.entries if e.ok)
        summary = QLabel(f"{len(registry.entries)} plugin(s) found, {ok} working. "
                         "Plugins are installed as Python packages (entry point group “studio.plugins”).", self)
        summary.setWordWrap(True)
        layout.addWidget(summary)
        self.table = QTableWidget(len(registry.entries), len(self.COLUMNS), self)
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        for row, entry in enumerate(registry.entries):
            kind = entry.kind.value if entry.kind else "?"
            provides = entry.plugin.label if entry.plugin else entry.target
            cells = (entry.name, kind, provides, entry.status)
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(entry.detail or entry.target if not entry.ok else f"{entry.target}")
                if column == 3:
                    item.setForeground(QColor("#7bd88f") if entry.ok else QColor("#f28b82"))
                self.table.setItem(row, column, item)
        layout.addWidget(self.table, 2)
        self.detail = QPlainTextEdit(self)
        self.detail.setReadOnly(True)
        self.detail.setPlaceholderText("Select a failed plugin to see the full error.")
        self.detail.setMaximumHeight(140)
        layout.addWidget(self.detail, 1)
        self.table.currentCellChanged.connect(lambda row, *_: self._show_detail(row))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout.addWidget(buttons)
        failed = next((i for i, e in enumerate(registry.entries) if not e.ok), None)
        if failed is not None:
            self.table.selectRow(failed)
            self._show_detail(failed)

    def _show_detail(self, row: int) -> None:
        if 0 <= row < len(self.registry.entries):
            entry = self.registry.entries[row]
            self.detail.setPlainText(entry.detail if not entry.ok else _describe(entry))

    def row_texts(self) -> list[tuple[str, ...]]:
        return [tuple(self.table.item(r, c).text() for c in range(self.table.columnCount()))
                for r in range(self.table.rowCount())]


def _describe(entry) -> str:
    plugin = entry.plugin
    lines = [f"{plugin.label} ({plugin.id}), a {plugin.kind.value} plugin — ok", f"Entry point: {entry.target}"]
    try:
        modes = list(plugin.modes()) if hasattr(plugin, "modes") else []
        if modes:
            lines.append(f"Modes: {', '.join(modes)}")
        models = list(plugin.models())
        lines.append("Built-in models: " + (", ".join(m.label for m in models) if models else "none"))
        lines.append(f"Parameters: {', '.join(p.name for p in plugin.parameters())}")
    except Exception as exc:  # noqa: BLE001 - a description must not break the dialog
        lines.append(f"(could not describe it: {exc})")
    return "\n".join(lines)
