"""One editor widget per :class:`~studio.plugin_api.ParamType`, for :class:`ParamForm`.

Every editor is a QWidget with ``value()``, ``set_value(value)`` and a ``changed`` signal, so
the form (and a panel's custom editors, such as the LoRA list) treat them alike.  Optional
numbers get an "auto" entry below their minimum that means ``None``.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QRegularExpression, QSize, Qt, Signal
from PySide6.QtGui import QPixmap, QRegularExpressionValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.plugin_api import Param, ParamType
from studio.qt.icons import icon
from studio.qt.imaging import IMAGE_FILTER, load_thumbnail

_INT_LIMIT = 2**31 - 1
#: what an optional number's lowest entry reads; it means "None: let the model decide"
AUTO_TEXT = "auto"

class IntEditor(QSpinBox):
    """A spin box over the spec's range; an optional INT gets an "auto" entry (None) below it."""

    changed = Signal()

    def __init__(self, param: Param):
        super().__init__()
        self.optional = param.optional
        step = int(param.step) if param.step else 1
        low = int(param.minimum) if param.minimum is not None else -_INT_LIMIT + 1
        high = int(min(param.maximum, _INT_LIMIT)) if param.maximum is not None else _INT_LIMIT
        if self.optional:
            low -= step
            self.setSpecialValueText(AUTO_TEXT)
        self.setRange(low, high)
        self.setSingleStep(step)
        self.setAccelerated(True)
        self.valueChanged.connect(self.changed)

    def value(self) -> int | None:  # type: ignore[override]  # None is the "auto" entry
        if self.optional and super().value() == self.minimum():
            return None
        return super().value()

    def set_value(self, value: Any) -> None:
        self.setValue(self.minimum() if value is None and self.optional else int(value))


class FloatEditor(QDoubleSpinBox):
    """A spin box over the spec's range; an optional FLOAT gets an "auto" entry (None) below it."""

    changed = Signal()

    def __init__(self, param: Param):
        super().__init__()
        self.optional = param.optional
        step = float(param.step) if param.step else 0.1
        decimals = max(1, min(4, len(f"{step:g}".partition(".")[2]) or 1))
        if param.default is not None:
            decimals = max(decimals, min(4, len(f"{float(param.default):g}".partition(".")[2])))
        self.setDecimals(decimals)
        low = float(param.minimum) if param.minimum is not None else -1e9
        high = float(param.maximum) if param.maximum is not None else 1e9
        if self.optional:
            low -= step
            self.setSpecialValueText(AUTO_TEXT)
        self.setRange(low, high)
        self.setSingleStep(step)
        self.valueChanged.connect(self.changed)

    def value(self) -> float | None:  # type: ignore[override]  # None is the "auto" entry
        if self.optional and super().value() == self.minimum():
            return None
        return super().value()

    def set_value(self, value: Any) -> None:
        self.setValue(self.minimum() if value is None and self.optional else float(value))


class LineEditor(QLineEdit):
    changed = Signal()

    def __init__(self, param: Param):
        super().__init__()
        self.textChanged.connect(self.changed)

    def value(self) -> str:
        return self.text()

    def set_value(self, value: Any) -> None:
        self.setText("" if value is None else str(value))


class TextEditor(QPlainTextEdit):
    changed = Signal()

    def __init__(self, param: Param):
        super().__init__()
        self.setTabChangesFocus(True)
        lines = 4 if "negative" not in param.name else 2
        height = self.fontMetrics().lineSpacing() * lines + 14
        self.setMinimumHeight(height)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self._height = height
        self.setPlaceholderText(param.help.split(".")[0] if param.help else "")
        self.textChanged.connect(self.changed)

    def sizeHint(self) -> QSize:
        return QSize(super().sizeHint().width(), self._height)

    def value(self) -> str:
        return self.toPlainText()

    def set_value(self, value: Any) -> None:
        self.setPlainText("" if value is None else str(value))


class BoolEditor(QCheckBox):
    changed = Signal()

    def __init__(self, param: Param):
        super().__init__()
        self.toggled.connect(self.changed)

    def value(self) -> bool:
        return self.isChecked()

    def set_value(self, value: Any) -> None:
        if isinstance(value, str):
            value = value.lower() in ("true", "1", "yes")
        self.setChecked(bool(value))


class ChoiceEditor(QComboBox):
    changed = Signal()

    def __init__(self, param: Param):
        super().__init__()
        self._all = list(param.choices)
        self.addItems(self._all)
        self.currentIndexChanged.connect(self.changed)

    def value(self) -> str | None:
        return self.currentText() or None

    def set_value(self, value: Any) -> None:
        index = self.findText(str(value))
        if index < 0:
            raise ValueError(f"{value!r} is not offered")
        self.setCurrentIndex(index)

    def set_choices(self, choices: Sequence[str] | None) -> None:
        """Limit the list (e.g. to what the loaded model supports); None restores all."""
        current = self.currentText()
        self.blockSignals(True)
        self.clear()
        self.addItems(list(choices) if choices else self._all)
        index = self.findText(current)
        self.setCurrentIndex(index if index >= 0 else 0)
        self.blockSignals(False)
        if self.currentText() != current:
            self.changed.emit()


class SeedEditor(QWidget):
    """Blank (or -1) = a random seed each run; the dice button clears back to random."""

    changed = Signal()

    def __init__(self, param: Param | None = None):
        super().__init__()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        self.line = QLineEdit(self)
        self.line.setPlaceholderText("random")
        self.line.setValidator(QRegularExpressionValidator(QRegularExpression(r"^(-1|\d{0,10})$"), self.line))
        self.line.setClearButtonEnabled(True)
        self.line.textChanged.connect(self.changed)
        layout.addWidget(self.line, 1)
        self.dice = QToolButton(self)
        self.dice.setIcon(icon("dice"))
        self.dice.setToolTip("Random seed for every run (clears the field)")
        self.dice.clicked.connect(self.line.clear)
        layout.addWidget(self.dice)
        self.reuse = QToolButton(self)
        self.reuse.setIcon(icon("recycle"))
        self.reuse.setToolTip("Reuse the last seed")
        self.reuse.setEnabled(False)
        self.reuse.clicked.connect(self._reuse)
        layout.addWidget(self.reuse)
        self.last_seed: int | None = None
        self.setFocusProxy(self.line)

    def value(self) -> int | None:
        text = self.line.text().strip()
        if not text or text == "-1":
            return None
        return int(text)

    def set_value(self, value: Any) -> None:
        if value is None or str(value).strip() in ("", "-1"):
            self.line.clear()
        else:
            self.line.setText(str(int(value)))

    def set_last_seed(self, seed: int | None) -> None:
        self.last_seed = seed
        self.reuse.setEnabled(seed is not None)
        self.reuse.setToolTip(f"Reuse the last seed ({seed})" if seed is not None else "Reuse the last seed")

    def _reuse(self) -> None:
        if self.last_seed is not None:
            self.set_value(self.last_seed)

    def randomize(self) -> None:
        self.set_value(random.randrange(2**32))


class SampleSeedEditor(QWidget):
    """A seed that is always a number (never "random": e.g. a latent preview must not jump
    between slider ticks) with a button that draws a new one."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        self.spin = QSpinBox(self)
        self.spin.setRange(0, 2**31 - 1)
        self.spin.valueChanged.connect(self.changed)
        row.addWidget(self.spin, 1)
        self.new_button = QPushButton("New sample", self)
        self.new_button.setToolTip("Start from another random sample")
        self.new_button.clicked.connect(lambda: self.spin.setValue(secrets.randbelow(2**31 - 1)))
        row.addWidget(self.new_button)

    def value(self) -> int:
        return int(self.spin.value())

    def set_value(self, value: Any) -> None:
        self.spin.setValue(0 if value is None else int(value))


class SizeEditor(QWidget):
    changed = Signal()

    def __init__(self, param: Param):
        super().__init__()
        self.multiple = max(1, int(param.multiple_of or 1))
        maximum = int(param.maximum) if param.maximum else 8192
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        self.width_box, self.height_box = QSpinBox(self), QSpinBox(self)
        for box, tip in ((self.width_box, "Width"), (self.height_box, "Height")):
            box.setRange(self.multiple, maximum)
            box.setSingleStep(self.multiple)
            box.setAccelerated(True)
            box.setToolTip(f"{tip} in pixels (a multiple of {self.multiple})")
            box.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            box.valueChanged.connect(self.changed)
        times = QLabel("×", self)
        times.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.width_box, 1)
        layout.addWidget(times)
        layout.addWidget(self.height_box, 1)
        swap = QToolButton(self)
        swap.setIcon(icon("swap"))
        swap.setToolTip("Swap width and height")
        swap.clicked.connect(lambda: self.set_value((self.height_box.value(), self.width_box.value())))
        layout.addWidget(swap)

    def value(self) -> tuple[int, int]:
        return self.width_box.value(), self.height_box.value()

    def set_value(self, value: Any) -> None:
        if isinstance(value, str):
            value = value.lower().replace("×", "x").split("x")
        width, height = (int(v) for v in value)
        self.width_box.setValue(width)
        self.height_box.setValue(height)


class PathEditor(QWidget):
    """A path field with a browse button; image paths also show a small thumbnail."""

    changed = Signal()

    def __init__(self, param: Param | None = None, image: bool = True, file_filter: str = ""):
        super().__init__()
        self.image = image
        self.file_filter = file_filter or (IMAGE_FILTER if image else "All files (*)")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(4)
        row = QHBoxLayout()
        row.setSpacing(4)
        self.line = QLineEdit(self)
        self.line.setPlaceholderText("Choose an image…" if image else "Choose a file…")
        self.line.setClearButtonEnabled(True)
        self.line.textChanged.connect(self._on_text)
        row.addWidget(self.line, 1)
        self.browse = QToolButton(self)
        self.browse.setIcon(icon("folder"))
        self.browse.setToolTip("Browse…")
        self.browse.clicked.connect(self._browse)
        row.addWidget(self.browse)
        outer.addLayout(row)
        self.thumbnail = QLabel(self)
        self.thumbnail.setFixedHeight(72)
        self.thumbnail.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.thumbnail.hide()
        outer.addWidget(self.thumbnail)

    def value(self) -> str | None:
        text = self.line.text().strip()
        return text or None

    def set_value(self, value: Any) -> None:
        self.line.setText("" if value is None else str(value))

    def _browse(self) -> None:
        start = str(Path(self.line.text()).parent) if self.line.text() else ""
        path, _ = QFileDialog.getOpenFileName(self, "Choose a file", start, self.file_filter)
        if path:
            self.set_value(path)

    def _on_text(self) -> None:
        if self.image:
            path = self.value()
            image = load_thumbnail(path, 72) if path and Path(path).is_file() else None
            if image is not None and not image.isNull():
                self.thumbnail.setPixmap(QPixmap.fromImage(image))
                self.thumbnail.show()
            else:
                self.thumbnail.clear()
                self.thumbnail.hide()
        self.changed.emit()


class ValueHolder(QWidget):
    """Keeps a value the form has no editor for (e.g. a LIST without a custom editor)."""

    changed = Signal()

    def __init__(self, param: Param):
        super().__init__()
        self._value = param.default

    def value(self) -> Any:
        return self._value

    def set_value(self, value: Any) -> None:
        self._value = value
        self.changed.emit()


def make_editor(param: Param, file_filter: str = "") -> QWidget:
    """The editor for ``param``'s type; ``file_filter`` narrows a FILE_PATH browser (e.g. MIDI)."""
    t = param.type
    if t is ParamType.INT:
        return IntEditor(param)
    if t is ParamType.FLOAT:
        return FloatEditor(param)
    if t is ParamType.STR:
        return LineEditor(param)
    if t is ParamType.TEXT:
        return TextEditor(param)
    if t is ParamType.BOOL:
        return BoolEditor(param)
    if t is ParamType.CHOICE:
        return ChoiceEditor(param)
    if t is ParamType.SEED:
        return SeedEditor(param)
    if t is ParamType.SIZE:
        return SizeEditor(param)
    if t is ParamType.IMAGE_PATH:
        return PathEditor(param, image=True, file_filter=file_filter)
    if t is ParamType.FILE_PATH:
        return PathEditor(param, image=False, file_filter=file_filter)
    return ValueHolder(param)


