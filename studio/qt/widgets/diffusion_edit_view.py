"""Edit your own image on a diffusion model: the view over :class:`DiffusionEditSession`.

Top: original | reconstruction (with its PSNR) | edited, side by side.  Below: one row per
edit (name you can rename, slider -2..2, "Measure" and the measured quality), a line to add an
edit ("red->blue", "+glasses", "-glasses"), "Find directions" (PCA, no training) and "Save PNG"
(the edit recipe goes into the file).  Drop an image anywhere on the view to start.  Layout and
bindings only: every decision is the session's.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from studio.core.sessions.diffusion_edit import DiffusionEditSession
from studio.plugin_api import ParamError
from studio.qt.widgets.image_view import ImageView

#: slider units per 1.0 of strength
TICKS = 100


class DiffusionEditView(QWidget):
    def __init__(self, session: DiffusionEditSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.setAcceptDrops(True)
        layout = QVBoxLayout(self)
        tiles = QHBoxLayout()
        self.views: dict[str, ImageView] = {}
        self.captions: dict[str, QLabel] = {}
        for key, title in (("original", "Your image"), ("reconstruction", "Reconstruction"), ("edited", "Edited")):
            column = QVBoxLayout()
            view = ImageView(self, placeholder="Drop an image here" if key == "original" else "")
            view.setMinimumSize(160, 160)
            caption = QLabel(title)
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            column.addWidget(view, 1)
            column.addWidget(caption)
            tiles.addLayout(column, 1)
            self.views[key], self.captions[key] = view, caption
        layout.addLayout(tiles, 3)
        row = QHBoxLayout()
        self.open_button = QPushButton("Open image…")
        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("What the image shows (optional), e.g. a red circle on a black background")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.setVisible(False)
        row.addWidget(self.open_button)
        row.addWidget(self.prompt, 1)
        row.addWidget(self.progress)
        layout.addLayout(row)
        adder = QHBoxLayout()
        self.new_edit = QLineEdit()
        self.new_edit.setPlaceholderText("Add an edit: red->blue, +glasses, -glasses")
        self.add_button = QPushButton("Add")
        self.find_button = QPushButton("Find directions")
        self.find_button.setToolTip("Principal components of the model's bottleneck over sampled images: "
                                    "directions found without training, shown as PC 1, PC 2, ...")
        self.save_button = QPushButton("Save PNG…")
        for w in (self.new_edit, self.add_button, self.find_button, self.save_button):
            adder.addWidget(w, 1 if w is self.new_edit else 0)
        layout.addLayout(adder)
        self.rows = QWidget()
        self.grid = QGridLayout(self.rows)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.rows)
        layout.addWidget(scroll, 2)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self._release = QTimer(self, singleShot=True, interval=250)  # full quality once the drag rests
        self._release.timeout.connect(self._full_quality)
        self._last_index = -1
        self.open_button.clicked.connect(self._open)
        self.add_button.clicked.connect(self._add)
        self.new_edit.returnPressed.connect(self._add)
        self.find_button.clicked.connect(lambda: self._guard(lambda: self.session.discover()))
        self.save_button.clicked.connect(self._save)
        self.prompt.editingFinished.connect(lambda: setattr(self.session, "prompt", self.prompt.text()))
        session.changed.connect(self._on_changed)
        session.message.connect(lambda level, text: self.status.setText(text))
        self._rebuild_rows()

    # -- commands -------------------------------------------------------------------------
    def _guard(self, action) -> Any:
        try:
            return action()
        except ParamError as exc:
            self.status.setText(str(exc))
            return None

    def open_image(self, path: str) -> None:
        self.session.prompt = self.prompt.text()
        if self._guard(lambda: self.session.set_image(path)) is not None:
            self.progress.setVisible(True)
            self.progress.setRange(0, 0)
            self.status.setText("Inverting your image (once; edits after this are quick)…")

    def _open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Your image", "", "Images (*.png *.jpg *.jpeg *.webp *.bmp)")
        if path:
            self.open_image(path)

    def _add(self) -> None:
        if self._guard(lambda: self.session.add_edit(self.new_edit.text())) is not None:
            self.new_edit.clear()

    def _save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the edited image", "edited.png", "PNG (*.png)")
        if path:
            saved = self._guard(lambda: self.session.save(path))
            if saved is not None:
                self.status.setText(f"Saved {saved} (the edit recipe is in its metadata)")

    def _moved(self, index: int, value: int) -> None:
        self._last_index = index
        self._guard(lambda: self.session.set_strength(index, value / TICKS, dragging=True))
        self._release.start()

    def _full_quality(self) -> None:
        if 0 <= self._last_index < len(self.session.sliders):
            s = self.session.sliders[self._last_index]
            self._guard(lambda: self.session.set_strength(self._last_index, s.strength, dragging=False))

    # -- drag and drop ----------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt's name
        urls = event.mimeData().urls()
        if urls:
            self.open_image(urls[0].toLocalFile())

    # -- session -> view --------------------------------------------------------------------
    def _on_changed(self, name: str) -> None:
        s = self.session
        if name == "image":
            for key in self.views:
                self.views[key].clear()
        elif name == "reconstruction":
            self.progress.setVisible(False)
            self.views["original"].set_image(s.original)
            self.views["reconstruction"].set_image(s.reconstruction)
            self.captions["reconstruction"].setText(
                "Reconstruction" + (f" — PSNR {s.psnr:.1f} dB" if s.psnr is not None else ""))
            self.status.setText("Ready: move a slider to edit.")
        elif name == "edited":
            self.views["edited"].set_image(s.edited)
            applied = (s.edited_artifact.parameters.get("edits") if s.edited_artifact else None) or []
            self.captions["edited"].setText("Edited — " + (", ".join(applied) or "no edit"))
        elif name == "sliders":
            self._rebuild_rows()
        elif name == "progress" and s.clock.total:
            self.progress.setVisible(True)
            self.progress.setRange(0, s.clock.total)
            self.progress.setValue(s.clock.step)

    def _rebuild_rows(self) -> None:
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        for i, slider in enumerate(self.session.sliders):
            name = QLineEdit(slider.label)
            name.setToolTip("Rename this slider (discovered directions start as PC n)")
            name.editingFinished.connect(lambda i=i, w=name: self.session.rename(i, w.text()))
            bar = QSlider(Qt.Orientation.Horizontal)
            bar.setRange(-2 * TICKS, 2 * TICKS)
            bar.setValue(int(round(slider.strength * TICKS)))
            bar.valueChanged.connect(lambda v, i=i: self._moved(i, v))
            measure = QPushButton("Measure")
            measure.setEnabled(slider.kind == "pair")
            measure.setToolTip("Edit quality on held-out drawn scenes (built-in Shapes model's scorer)")
            measure.clicked.connect(lambda _=False, i=i: self._guard(lambda: self.session.measure(i)))
            quality = QLabel(slider.quality or "")
            quality.setWordWrap(True)
            self.grid.addWidget(name, i, 0)
            self.grid.addWidget(bar, i, 1)
            self.grid.addWidget(measure, i, 2)
            self.grid.addWidget(quality, i, 3)
        self.grid.setColumnStretch(1, 2)
        self.grid.setColumnStretch(3, 2)
