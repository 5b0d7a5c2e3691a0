"""The Latent panel's two result boxes: the walk from A to B (its two ends, the frame strip and
the exports) and the measured edit quality.  They show what the session holds; their buttons
are wired by the panel to session commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.qt.widgets.latent_strip import FrameStrip


class WalkBox(QGroupBox):
    """A → B (a seed, an image path or a prompt each), the number of frames, the strip, exports."""

    def __init__(self, parent: QWidget | None, on_export: Callable[[str], None]):
        super().__init__("Walk from A to B", parent)
        column = QVBoxLayout(self)
        ends = QHBoxLayout()
        self.walk_from = QLineEdit(self)
        self.walk_to = QLineEdit(self)
        self.frames_spin = QSpinBox(self)
        self.frames_spin.setRange(2, 240)
        self.frames_spin.setValue(8)
        self.walk_button = QPushButton("Walk", self)
        ends.addWidget(self.walk_from, 2)
        ends.addWidget(QLabel("→", self))
        ends.addWidget(self.walk_to, 2)
        ends.addWidget(QLabel("Frames", self))
        ends.addWidget(self.frames_spin)
        ends.addWidget(self.walk_button)
        column.addLayout(ends)
        self.strip = FrameStrip(self)
        column.addWidget(self.strip)
        exports = QHBoxLayout()
        self.walk_info = QLabel("", self)
        self.walk_info.setObjectName("hint")
        exports.addWidget(self.walk_info, 1)
        self.export_buttons: dict[str, QPushButton] = {}
        for label, what in (("GIF…", "gif"), ("MP4…", "mp4"), ("Frames…", "frames")):
            button = QPushButton(f"Export {label}", self)
            button.setEnabled(False)
            button.clicked.connect(lambda _=False, w=what: on_export(w))
            self.export_buttons[what] = button
            exports.addWidget(button)
        column.addLayout(exports)

    def set_placeholders(self, start: str, end: str) -> None:
        self.walk_from.setPlaceholderText(start)
        self.walk_to.setPlaceholderText(end)

    def show_walk(self, frames: list[Any], smoothness: dict[str, Any]) -> None:
        self.strip.set_frames(frames)
        if smoothness:
            self.walk_info.setText(f"{len(frames)} frames · largest step {smoothness.get('max_step', 0):.1f} "
                                   f"= {smoothness.get('jump_ratio', 1):.2f}× the mean")
        for button in self.export_buttons.values():
            button.setEnabled(bool(frames))


class QualityBox(QGroupBox):
    """Per direction: what it moves, its selectivity and monotonicity, and a verdict."""

    def __init__(self, parent: QWidget | None):
        super().__init__("Edit quality (read back with the Shapes scorer)", parent)
        column = QVBoxLayout(self)
        self.quality_button = QPushButton("Measure slider quality", self)
        column.addWidget(self.quality_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.quality_table = QTableWidget(0, 5, self)
        self.quality_table.setHorizontalHeaderLabels(["Direction", "Moves", "Selectivity", "Monotonicity", "Verdict"])
        self.quality_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.quality_table.setMaximumHeight(200)
        column.addWidget(self.quality_table)

    def show_quality(self, quality: dict[str, Any]) -> None:
        self.quality_table.setRowCount(len(quality))
        for i, (name, row) in enumerate(quality.items()):
            mono = row.get("monotonicity")
            cells = [name, str(row.get("target", "?")), f"{row.get('selectivity', 0):.2f}",
                     "n/a" if mono is None else f"{mono:+.2f}", row.get("grade", "")]
            for j, text in enumerate(cells):
                self.quality_table.setItem(i, j, QTableWidgetItem(text))
