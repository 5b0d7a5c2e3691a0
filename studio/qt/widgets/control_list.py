"""Control inputs (ControlNet) for the ``controls`` LIST parameter, and reference images for
``image_prompts``: one row each, with a preview of the processed control map.

``ControlList.value()`` is ``[{"kind", "image", "model", "weight", "start", "end"}, ...]`` (plus
``control_mode`` when one is set for a union ControlNet); ``ImagePromptList.value()`` is
``[{"image", "weight"}]``.  The map preview runs the same preprocessors the plugin runs on a 128-pixel
copy: the built-in ones (numpy / PIL, no torch) at once, a plugin's (it runs a model) on a worker thread.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.plugin_kit.control import providers
from studio.qt.icons import icon
from studio.qt.imaging import pil_to_qimage

PREVIEW = 72
IMAGES = "Images (*.png *.jpg *.jpeg *.webp *.bmp)"


def _spin(low: float, high: float, value: float, step: float, tip: str, parent: QWidget) -> QDoubleSpinBox:
    spin = QDoubleSpinBox(parent)
    spin.setRange(low, high)
    spin.setSingleStep(step)
    spin.setDecimals(2)
    spin.setValue(value)
    spin.setToolTip(tip)
    return spin


class _PathField(QWidget):
    changed = Signal()

    def __init__(self, placeholder: str, filter_text: str, folder: bool, parent: QWidget) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.edit = QLineEdit(self)
        self.edit.setPlaceholderText(placeholder)
        self.edit.textChanged.connect(self.changed)
        layout.addWidget(self.edit, 1)
        browse = QToolButton(self)
        browse.setText("…")
        browse.setToolTip("Browse")
        browse.clicked.connect(lambda: self._browse(filter_text, folder))
        layout.addWidget(browse)

    def _browse(self, filter_text: str, folder: bool) -> None:
        if folder:
            path = QFileDialog.getExistingDirectory(self, "Choose a ControlNet folder")
        else:
            path, _ = QFileDialog.getOpenFileName(self, "Choose a file", "", filter_text)
        if path:
            self.edit.setText(path)

    def text(self) -> str:
        return self.edit.text().strip()


class ControlRow(QWidget):
    removed = Signal(object)
    changed = Signal()
    #: a plugin preprocessor's map is ready (from its worker thread): (request number, image or None, why not)
    _mapped = Signal(int, object, str)

    def __init__(self, entry: dict[str, Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 4)
        self.kind = QComboBox(self)
        kinds = providers.kinds()  # the built-in preprocessors, then those installed plugins provide
        self.kind.addItems(list(kinds))
        for index, text in enumerate(kinds.values()):
            self.kind.setItemData(index, text, Qt.ItemDataRole.ToolTipRole)
        wanted = str(entry.get("kind", "scribble"))
        if wanted not in kinds:  # e.g. restored from an image made with a plugin that is not installed now
            self.kind.addItem(wanted)
            self.kind.setItemData(self.kind.count() - 1, providers.unknown_kind_sentence(wanted),
                                  Qt.ItemDataRole.ToolTipRole)
        self.kind.setCurrentText(wanted)
        self.image = _PathField("control image (your sketch, photo or map)", IMAGES, False, self)
        self.image.edit.setText(str(entry.get("image", "")))
        self.model = _PathField("ControlNet folder or .safetensors (empty: the built-in one, Shapes SD only)",
                                "ControlNet (*.safetensors)", True, self)
        self.model.edit.setText(str(entry.get("model", "")))
        self.weight = _spin(0.0, 2.0, float(entry.get("weight", 1.0)), 0.05, "Weight (0 = no effect)", self)
        self.start = _spin(0.0, 1.0, float(entry.get("start", 0.0)), 0.05, "Acts from this fraction of the steps", self)
        self.end = _spin(0.0, 1.0, float(entry.get("end", 1.0)), 0.05, "…until this fraction of the steps", self)
        self.mode = QSpinBox(self)
        self.mode.setRange(-1, 63)
        self.mode.setSpecialValueText("auto")
        self.mode.setValue(int(entry["control_mode"]) if entry.get("control_mode") not in (None, "") else -1)
        self.mode.setToolTip("Union ControlNets: the control mode (auto = from the preprocessor's map type); "
                             "plain ControlNets have none")
        self.preview = QLabel(self)
        self.preview.setFixedSize(PREVIEW, PREVIEW)
        self.preview.setToolTip("The processed control map (what the control model sees)")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        remove = QToolButton(self)
        remove.setIcon(icon("close"))
        remove.setAutoRaise(True)
        remove.setToolTip("Remove this control input")
        remove.clicked.connect(lambda: self.removed.emit(self))
        grid.addWidget(self.preview, 0, 0, 3, 1)
        grid.addWidget(self.kind, 0, 1)
        grid.addWidget(self.image, 0, 2, 1, 3)
        grid.addWidget(remove, 0, 5)
        grid.addWidget(self.model, 1, 1, 1, 4)
        numbers = QHBoxLayout()
        for label, spin in (("weight", self.weight), ("from", self.start), ("to", self.end), ("mode", self.mode)):
            numbers.addWidget(QLabel(label, self))
            numbers.addWidget(spin)
        numbers.addStretch(1)
        grid.addLayout(numbers, 2, 1, 1, 4)
        for signal in (self.kind.currentTextChanged, self.image.changed):
            signal.connect(self.refresh_preview)
        for signal in (self.kind.currentTextChanged, self.image.changed, self.model.changed, self.weight.valueChanged,
                       self.start.valueChanged, self.end.valueChanged, self.mode.valueChanged):
            signal.connect(self.changed)
        self._mapped.connect(self._show_map)
        self._request = 0
        self.refresh_preview()

    def refresh_preview(self) -> str:
        """Draw the processed map; returns "" or why there is none (also the tooltip).  A plugin's
        preprocessor runs on a worker thread: "running" until its map arrives."""
        self._request += 1
        path = self.image.text()
        if not path or not Path(path).is_file():
            self.preview.setPixmap(QPixmap())
            self.preview.setText("no image")
            return "no image"
        from PIL import Image

        kind = self.kind.currentText()
        try:
            with Image.open(path) as source:
                source.thumbnail((512, 512))
                source = source.convert("RGB")
        except OSError as exc:
            self.preview.setText("unreadable")
            return str(exc)
        if providers.needs_model(kind):
            self.preview.setPixmap(QPixmap())
            self.preview.setText("running…")
            request = self._request
            threading.Thread(target=self._run_plugin, args=(request, kind, source), daemon=True,
                             name="studio-control-preview").start()
            return "running"
        try:
            processed = providers.process(kind, source, (128, 128))
        except ValueError as exc:
            self.preview.setText("unreadable")
            return str(exc)
        self._show_map(self._request, processed, "")
        return ""

    def _run_plugin(self, request: int, kind: str, source: Any) -> None:
        try:
            self._mapped.emit(request, providers.process(kind, source, (128, 128)), "")
        except Exception as exc:  # noqa: BLE001 - a plugin's failure is shown, never raised into Qt
            self._mapped.emit(request, None, f"{type(exc).__name__}: {exc}")

    def _show_map(self, request: int, processed: Any, error: str) -> None:
        if request != self._request:  # the kind or image changed since: a newer preview is coming
            return
        if processed is None:
            self.preview.setText("failed")
            self.preview.setToolTip(error)
            return
        self.processed = processed
        pixmap = QPixmap.fromImage(pil_to_qimage(processed)).scaled(PREVIEW, PREVIEW,
                                                                  Qt.AspectRatioMode.KeepAspectRatio)
        self.preview.setPixmap(pixmap)
        self.preview.setToolTip("The processed control map (what the control model sees)")

    def value(self) -> dict[str, Any]:
        value = {"kind": self.kind.currentText(), "image": self.image.text(), "model": self.model.text(),
                 "weight": round(self.weight.value(), 4), "start": round(self.start.value(), 4),
                 "end": round(self.end.value(), 4)}
        if self.mode.value() >= 0:
            value["control_mode"] = self.mode.value()
        return value


class ControlList(QWidget):
    changed = Signal()
    full_width = True  # the form gives it the whole width
    ROW = ControlRow
    ADD = "Add control input…"
    EMPTY = "No control input (ControlNet) added."

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self._rows_layout = QVBoxLayout()
        layout.addLayout(self._rows_layout)
        self.empty_label = QLabel(self.EMPTY, self)
        self.empty_label.setObjectName("hint")
        layout.addWidget(self.empty_label)
        self.add_button = QPushButton(self.ADD, self)
        self.add_button.setIcon(icon("plus"))
        self.add_button.clicked.connect(lambda: self.add({}))
        layout.addWidget(self.add_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.rows: list[Any] = []

    def add(self, entry: dict[str, Any]) -> Any:
        row = self.ROW(entry, self)
        row.removed.connect(self.remove)
        row.changed.connect(self.changed)
        self.rows.append(row)
        self._rows_layout.addWidget(row)
        self.empty_label.hide()
        self.changed.emit()
        return row

    def remove(self, row: Any) -> None:
        if row in self.rows:
            self.rows.remove(row)
            self._rows_layout.removeWidget(row)
            row.hide()
            row.deleteLater()
            self.empty_label.setVisible(not self.rows)
            self.changed.emit()

    def value(self) -> list[dict[str, Any]]:
        return [row.value() for row in self.rows if row.value().get("image")]

    def set_value(self, value: Any) -> None:
        for row in list(self.rows):
            self.remove(row)
        for entry in value or []:
            if isinstance(entry, dict):
                self.add(entry)


class ImagePromptRow(QWidget):
    removed = Signal(object)
    changed = Signal()

    def __init__(self, entry: dict[str, Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.image = _PathField("reference image", IMAGES, False, self)
        self.image.edit.setText(str(entry.get("image", "")))
        self.weight = _spin(0.0, 2.0, float(entry.get("weight", 1.0)), 0.05, "Weight (0 = no effect)", self)
        remove = QToolButton(self)
        remove.setIcon(icon("close"))
        remove.setAutoRaise(True)
        remove.clicked.connect(lambda: self.removed.emit(self))
        layout.addWidget(self.image, 1)
        layout.addWidget(self.weight)
        layout.addWidget(remove)
        self.image.changed.connect(self.changed)
        self.weight.valueChanged.connect(self.changed)

    def value(self) -> dict[str, Any]:
        return {"image": self.image.text(), "weight": round(self.weight.value(), 4)}


class ImagePromptList(ControlList):
    ROW = ImagePromptRow
    ADD = "Add reference image…"
    EMPTY = "No image prompt (IP-Adapter) added."


__all__ = ["ControlList", "ControlRow", "ImagePromptList"]
