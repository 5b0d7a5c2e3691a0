"""One edit slider of the diffusion image editor: its name (renamable), strength, the measured
quality in plain words beside it (details in the tooltip), "measure again" and "remove".

Signals only; the editor view forwards them to its session.  Dragging sends ``moved(value,
dragging=True)`` (draft previews), letting go or a click / key step sends ``dragging=False``
(full quality)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QLineEdit, QSlider, QToolButton, QWidget

#: slider units per 1.0 of strength
TICKS = 100
#: the strength range every edit slider offers
LIMIT = 2.0

KIND_TIPS = {
    "pair": "A prompt pair: FROM is turned into TO where the image shows it.",
    "concept": "A concept added (positive) or removed (negative).",
    "direction": "A direction found in the model without training (PCA) or loaded from a file; rename it "
                 "once you see what it does.",
}


class EditSliderRow(QFrame):
    #: the strength moved: (strength, still dragging)
    moved = Signal(float, bool)
    renamed = Signal(str)
    measureRequested = Signal()
    removeRequested = Signal()

    def __init__(self, label: str, kind: str, strength: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("editSlider")
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 4, 0, 6)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(2)
        self.name = QLineEdit(label, self)
        self.name.setToolTip(KIND_TIPS.get(kind, "") + " Click to rename.")
        self.value = QLabel(self)
        self.value.setMinimumWidth(44)
        self.value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.measure_button = QToolButton(self)
        self.measure_button.setText("↻")
        self.measure_button.setToolTip("Measure this slider's quality on your image again")
        self.remove_button = QToolButton(self)
        self.remove_button.setText("✕")
        self.remove_button.setToolTip("Remove this edit")
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(int(-LIMIT * TICKS), int(LIMIT * TICKS))
        self.slider.setPageStep(TICKS // 4)
        self.slider.setValue(int(round(strength * TICKS)))
        self.quality = QLabel(self)
        self.quality.setObjectName("hint")
        self.quality.setWordWrap(True)
        grid.addWidget(self.name, 0, 0)
        grid.addWidget(self.value, 0, 1)
        grid.addWidget(self.measure_button, 0, 2)
        grid.addWidget(self.remove_button, 0, 3)
        grid.addWidget(self.slider, 1, 0, 1, 4)
        grid.addWidget(self.quality, 2, 0, 1, 4)
        grid.setColumnStretch(0, 1)
        self._show_value(self.slider.value())
        self.slider.valueChanged.connect(self._changed)
        self.slider.sliderReleased.connect(lambda: self.moved.emit(self.strength, False))
        self.name.editingFinished.connect(lambda: self.renamed.emit(self.name.text()))
        self.measure_button.clicked.connect(self.measureRequested)
        self.remove_button.clicked.connect(self.removeRequested)

    @property
    def strength(self) -> float:
        return self.slider.value() / TICKS

    def _show_value(self, value: int) -> None:
        self.value.setText(f"{value / TICKS:+.2f}" if value else "0")

    def _changed(self, value: int) -> None:
        self._show_value(value)
        self.moved.emit(value / TICKS, self.slider.isSliderDown())

    def show_quality(self, line: str, tip: str, measuring: bool) -> None:
        self.quality.setText(line or ("measuring on your image…" if measuring else ""))
        self.quality.setToolTip(tip)
