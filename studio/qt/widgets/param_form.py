"""A form built from a plugin's :class:`~studio.plugin_api.Param` specs.

One editor per parameter type: spin boxes with the spec's range, line / multi-line text,
combo boxes, check boxes, a seed field (blank = random) with a dice button, a W×H pair
stepping by ``multiple_of``, and file pickers.  Parameters outside the current mode are
hidden, ``advanced`` ones are folded away, ``help`` becomes the tooltip.  A ParamError is
shown in a message bar next to the form (and the field it names is outlined), never in a
dialog.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QRegularExpression, QSize, Qt, Signal
from PySide6.QtGui import QPixmap, QRegularExpressionValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.plugin_api import Param, ParamError, ParamType
from studio.qt.icons import icon
from studio.qt.imaging import IMAGE_FILTER, load_thumbnail
from studio.qt.widgets.message_bar import MessageBar

_INT_LIMIT = 2**31 - 1


def _repolish(widget: QWidget) -> None:
    widget.style().unpolish(widget)
    widget.style().polish(widget)


# --------------------------------------------------------------------------- editors
# Every editor is a QWidget with ``value()``, ``set_value(value)`` and a ``changed`` signal.


class _IntEditor(QSpinBox):
    changed = Signal()

    def __init__(self, param: Param):
        super().__init__()
        self.setRange(int(param.minimum) if param.minimum is not None else -_INT_LIMIT,
                      int(param.maximum) if param.maximum is not None else _INT_LIMIT)
        self.setSingleStep(int(param.step) if param.step else 1)
        self.setAccelerated(True)
        self.valueChanged.connect(self.changed)

    def set_value(self, value: Any) -> None:
        self.setValue(int(value))


class _FloatEditor(QDoubleSpinBox):
    changed = Signal()

    def __init__(self, param: Param):
        super().__init__()
        step = float(param.step) if param.step else 0.1
        decimals = max(1, min(4, len(f"{step:g}".partition(".")[2]) or 1))
        if param.default is not None:
            decimals = max(decimals, min(4, len(f"{float(param.default):g}".partition(".")[2])))
        self.setDecimals(decimals)
        self.setRange(float(param.minimum) if param.minimum is not None else -1e9,
                      float(param.maximum) if param.maximum is not None else 1e9)
        self.setSingleStep(step)
        self.valueChanged.connect(self.changed)

    def set_value(self, value: Any) -> None:
        self.setValue(float(value))


class _LineEditor(QLineEdit):
    changed = Signal()

    def __init__(self, param: Param):
        super().__init__()
        self.textChanged.connect(self.changed)

    def value(self) -> str:
        return self.text()

    def set_value(self, value: Any) -> None:
        self.setText("" if value is None else str(value))


class _TextEditor(QPlainTextEdit):
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


class _BoolEditor(QCheckBox):
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


class _ChoiceEditor(QComboBox):
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


class _ValueHolder(QWidget):
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


def make_editor(param: Param) -> QWidget:
    t = param.type
    if t is ParamType.INT:
        return _IntEditor(param)
    if t is ParamType.FLOAT:
        return _FloatEditor(param)
    if t is ParamType.STR:
        return _LineEditor(param)
    if t is ParamType.TEXT:
        return _TextEditor(param)
    if t is ParamType.BOOL:
        return _BoolEditor(param)
    if t is ParamType.CHOICE:
        return _ChoiceEditor(param)
    if t is ParamType.SEED:
        return SeedEditor(param)
    if t is ParamType.SIZE:
        return SizeEditor(param)
    if t is ParamType.IMAGE_PATH:
        return PathEditor(param, image=True)
    if t is ParamType.FILE_PATH:
        return PathEditor(param, image=False)
    return _ValueHolder(param)


# --------------------------------------------------------------------------- the form


class _Row:
    def __init__(self, param: Param, editor: QWidget, label: QLabel | None, container: QWidget | None,
                 layout: QFormLayout):
        self.param, self.editor, self.label, self.container, self.layout = param, editor, label, container, layout

    @property
    def field(self) -> QWidget:
        return self.container or self.editor

    def set_visible(self, visible: bool) -> None:
        self.layout.setRowVisible(self.field, visible)


class ParamForm(QWidget):
    """Editors for ``params``.  ``custom`` maps a parameter name to a ready editor widget
    (with value/set_value/changed) used instead of the generic one; ``exclude`` names are
    left out of the form (the owner supplies their values)."""

    changed = Signal()

    def __init__(self, params: Iterable[Param], parent: QWidget | None = None, *,
                 custom: Mapping[str, QWidget] | None = None, exclude: Iterable[str] = (),
                 message_bar: MessageBar | None = None):
        super().__init__(parent)
        self.params = [p for p in params if p.name not in set(exclude)]
        self.mode: str | None = None
        self._rows: dict[str, _Row] = {}
        custom = dict(custom or {})

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(6)
        self.basic_layout = self._new_form_layout()
        outer.addLayout(self.basic_layout)

        self.advanced_toggle = QToolButton(self)
        self.advanced_toggle.setText("Advanced")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_toggle.setAutoRaise(True)
        self.advanced_toggle.setObjectName("foldButton")
        self.advanced_toggle.toggled.connect(self._toggle_advanced)
        outer.addWidget(self.advanced_toggle)
        self.advanced_box = QWidget(self)
        self.advanced_layout = self._new_form_layout(self.advanced_box)
        self.advanced_box.hide()
        outer.addWidget(self.advanced_box)

        for param in self.params:
            editor = custom.pop(param.name, None) or make_editor(param)
            layout = self.advanced_layout if param.advanced else self.basic_layout
            self._add_row(param, editor, layout)

        self._align_labels()
        self.message = message_bar
        if self.message is None:
            self.message = MessageBar(self)
            outer.addWidget(self.message)
        self.set_defaults()
        self.set_mode(None)

    def _align_labels(self) -> None:
        """Basic and advanced rows live in two form layouts; give their labels one width."""
        labels = [row.label for row in self._rows.values()
                  if row.label is not None and row.container is None]
        if labels:
            width = max(label.sizeHint().width() for label in labels)
            for label in labels:
                label.setMinimumWidth(width)
                label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    @staticmethod
    def _new_form_layout(parent: QWidget | None = None) -> QFormLayout:
        layout = QFormLayout(parent) if parent else QFormLayout()
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        layout.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        layout.setHorizontalSpacing(10)
        layout.setVerticalSpacing(7)
        return layout

    def _add_row(self, param: Param, editor: QWidget, layout: QFormLayout) -> None:
        editor.setObjectName(f"param_{param.name}")
        tip = param.help or ""
        if param.type is ParamType.SIZE and param.multiple_of > 1:
            tip = (tip + " " if tip else "") + f"Multiples of {param.multiple_of}."
        if tip:
            editor.setToolTip(tip)
        label = QLabel(param.label, self)
        if tip:
            label.setToolTip(tip)
        container = None
        if isinstance(editor, _ValueHolder):
            label = None
            layout.addRow(editor)
            editor.hide()
        elif param.type is ParamType.TEXT or getattr(editor, "full_width", False):
            # Prompts (and wide custom editors) get the whole width, the label above.
            container = QWidget(self)
            box = QVBoxLayout(container)
            box.setContentsMargins(0, 0, 0, 0)
            box.setSpacing(3)
            label.setObjectName("sectionLabel")
            box.addWidget(label)
            box.addWidget(editor)
            layout.addRow(container)
        elif param.type is ParamType.BOOL:
            editor.setText(param.label)
            label.deleteLater()
            label = None
            layout.addRow("", editor)
        else:
            label.setBuddy(editor)
            layout.addRow(label, editor)
        self._rows[param.name] = _Row(param, editor, label, container, layout)
        editor.changed.connect(lambda name=param.name: self._on_changed(name))

    # -- mode and folding -------------------------------------------------------------------
    def set_mode(self, mode: str | None) -> None:
        self.mode = mode
        any_advanced = False
        for row in self._rows.values():
            visible = self.applies(row.param)
            if isinstance(row.editor, _ValueHolder):
                visible = False
            row.set_visible(visible)
            any_advanced |= visible and row.param.advanced
        self.advanced_toggle.setVisible(any_advanced)

    def applies(self, param: Param) -> bool:
        return not param.modes or self.mode in param.modes

    def _toggle_advanced(self, open_: bool) -> None:
        self.advanced_box.setVisible(open_)
        self.advanced_toggle.setArrowType(Qt.ArrowType.DownArrow if open_ else Qt.ArrowType.RightArrow)

    def show_advanced(self, open_: bool = True) -> None:
        self.advanced_toggle.setChecked(open_)

    # -- values ----------------------------------------------------------------------------------
    def editor(self, name: str) -> QWidget:
        return self._rows[name].editor

    def has(self, name: str) -> bool:
        return name in self._rows

    def is_shown(self, name: str) -> bool:
        """Whether ``name`` applies in the current mode (folded advanced rows count as shown)."""
        row = self._rows.get(name)
        return bool(row) and self.applies(row.param) and not isinstance(row.editor, _ValueHolder)

    def values(self) -> dict[str, Any]:
        """Every parameter's current value (also those hidden by the mode)."""
        return {name: row.editor.value() for name, row in self._rows.items()}

    def set_defaults(self) -> None:
        for _name, row in self._rows.items():
            if row.param.default is not None or row.param.type in (ParamType.SEED, ParamType.IMAGE_PATH,
                                                                    ParamType.FILE_PATH):
                try:
                    row.editor.set_value(row.param.default)
                except (TypeError, ValueError):
                    pass

    def set_values(self, values: Mapping[str, Any]) -> list[str]:
        """Set what the form has editors for; returns notes on what was not applied as given."""
        notes = []
        for name, value in values.items():
            row = self._rows.get(name)
            if row is None:
                notes.append(f"{name} (not a setting of this model)")
                continue
            try:
                row.editor.set_value(value)
            except (TypeError, ValueError) as exc:
                notes.append(f"{row.param.label} {value!r} ({exc})" if str(exc) else f"{row.param.label} {value!r}")
                continue
            actual = row.editor.value()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and isinstance(actual, (int, float)) \
                    and row.param.type in (ParamType.INT, ParamType.FLOAT) and abs(actual - value) > 1e-9:
                notes.append(f"{row.param.label} {value:g} is out of range; set to {actual:g}")
        return notes

    def set_choices(self, name: str, choices: Sequence[str] | None) -> None:
        row = self._rows.get(name)
        if row is not None and isinstance(row.editor, _ChoiceEditor):
            row.editor.set_choices(choices)

    # -- errors -------------------------------------------------------------------------------
    def show_error(self, error: ParamError | str) -> None:
        """Show ``error`` in the message bar and outline the field it is about."""
        text = str(error)
        self.clear_error()
        self.message.show_message(text, "error")
        for row in sorted(self._rows.values(), key=lambda r: -len(r.param.label)):
            if text.startswith(row.param.label) or text.startswith(row.param.name):
                self._mark(row, True)
                if row.param.advanced:
                    self.show_advanced(True)
                break

    def invalid_fields(self) -> list[str]:
        return [name for name, row in self._rows.items() if row.editor.property("invalid")]

    @staticmethod
    def _mark(row: _Row, invalid: bool) -> None:
        for widget in (row.editor, row.label):
            if widget is not None and bool(widget.property("invalid")) != invalid:
                widget.setProperty("invalid", invalid)
                _repolish(widget)

    def clear_error(self) -> None:
        for row in self._rows.values():
            self._mark(row, False)
        if self.message.kind == "error":
            self.message.dismiss()

    def _on_changed(self, name: str) -> None:
        self._mark(self._rows[name], False)
        self.changed.emit()
