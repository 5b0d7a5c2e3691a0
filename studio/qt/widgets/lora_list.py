"""LoRA files with a weight each, for the ``loras`` LIST parameter.

``value()`` is ``[{"path": ..., "weight": ...}, ...]``; ``set_value`` also accepts
``(path, weight)`` pairs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.qt.icons import icon


class _LoraRow(QWidget):
    removed = Signal(object)
    changed = Signal()

    def __init__(self, path: str, weight: float, parent=None):
        super().__init__(parent)
        self.path = path
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        name = QLabel(Path(path).stem, self)
        name.setToolTip(path)
        name.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        if not Path(path).is_file():
            name.setText(f"{Path(path).stem} (missing)")
            name.setStyleSheet("color: #e08a8a;")
        layout.addWidget(name, 1)
        self.weight = QDoubleSpinBox(self)
        self.weight.setRange(-4.0, 4.0)
        self.weight.setSingleStep(0.05)
        self.weight.setDecimals(2)
        self.weight.setValue(float(weight))
        self.weight.setToolTip("Weight (1 = full strength, 0 = off, negative inverts)")
        self.weight.valueChanged.connect(self.changed)
        layout.addWidget(self.weight)
        remove = QToolButton(self)
        remove.setIcon(icon("close"))
        remove.setAutoRaise(True)
        remove.setToolTip("Remove this LoRA")
        remove.clicked.connect(lambda: self.removed.emit(self))
        layout.addWidget(remove)


class LoraList(QWidget):
    changed = Signal()
    full_width = True  # the form gives it the whole width

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        self._rows_layout = QVBoxLayout()
        self._rows_layout.setSpacing(3)
        layout.addLayout(self._rows_layout)
        self.empty_label = QLabel("No LoRA added.", self)
        self.empty_label.setObjectName("hint")
        layout.addWidget(self.empty_label)
        self.add_button = QPushButton("Add LoRA…", self)
        self.add_button.setIcon(icon("plus"))
        self.add_button.setToolTip("Add one or more .safetensors LoRA files")
        self.add_button.clicked.connect(self._browse)
        layout.addWidget(self.add_button, 0, Qt.AlignmentFlag.AlignLeft)
        self._rows: list[_LoraRow] = []

    def _browse(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Add LoRA files", "", "LoRA (*.safetensors);;All files (*)")
        for path in paths:
            self.add(path)

    def add(self, path: str, weight: float = 1.0) -> None:
        if any(row.path == path for row in self._rows):
            return
        row = _LoraRow(str(path), weight, self)
        row.removed.connect(self.remove)
        row.changed.connect(self.changed)
        self._rows.append(row)
        self._rows_layout.addWidget(row)
        self.empty_label.hide()
        self.changed.emit()

    def remove(self, row: _LoraRow) -> None:
        if row in self._rows:
            self._rows.remove(row)
            self._rows_layout.removeWidget(row)
            row.hide()
            row.deleteLater()
            self.empty_label.setVisible(not self._rows)
            self.changed.emit()

    def value(self) -> list[dict[str, Any]]:
        return [{"path": row.path, "weight": round(row.weight.value(), 4)} for row in self._rows]

    def set_value(self, value: Any) -> None:
        for row in list(self._rows):
            self.remove(row)
        for entry in value or []:
            if isinstance(entry, dict):
                self.add(str(entry["path"]), float(entry.get("weight", 1.0)))
            else:
                path, weight = entry
                self.add(str(path), float(weight))
