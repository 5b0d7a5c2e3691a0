"""Edit your own image on a diffusion model: the view over :class:`DiffusionEditSession`, shown as
the Latent panel's "Edit your own image" mode.

Left column: open (or drop) an image and say what it shows, the inversion's progress, one row per
edit (renamable name, strength, the measured quality in plain words beside it -- details in the
tooltip), a line to add an edit ("red->blue", "+glasses", "-glasses"), "Find directions" (PCA in
the model's bottleneck or in prompt variations, no training) and saving (the edited PNG with its
recipe, the named directions).  Right: original | reconstruction (with its PSNR) | edited, side
by side.  Layout and bindings only: every decision is the session's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio.core.sessions.diffusion_edit import DiffusionEditSession
from studio.plugin_api import ParamError
from studio.qt.imaging import IMAGE_FILTER, dropped_image_path
from studio.qt.widgets.edit_slider_row import EditSliderRow
from studio.qt.widgets.image_view import ImageView

TILES = (("original", "Your image"), ("reconstruction", "Reconstruction"), ("edited", "Edited"))


class DiffusionEditView(QWidget):
    def __init__(self, session: DiffusionEditSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("diffusionEditView")
        self.session = session
        self.setAcceptDrops(True)
        self.rows: list[EditSliderRow] = []
        root = QHBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.setChildrenCollapsible(False)
        root.addWidget(split)
        split.addWidget(self._build_controls())
        split.addWidget(self._build_tiles())
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([400, 940])
        self.splitter = split
        session.changed.connect(self._on_changed)
        session.message.connect(lambda level, text: self.status.setText(text))
        self._rebuild_rows()

    # -- layout ------------------------------------------------------------------------------
    def _build_controls(self) -> QWidget:
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(380)
        column = QFrame()
        column.setObjectName("controls")
        col = QVBoxLayout(column)
        col.setContentsMargins(12, 12, 12, 12)
        col.setSpacing(8)
        scroll.setWidget(column)

        col.addWidget(self._section("1 · Your image"))
        opener = QHBoxLayout()
        self.open_button = QPushButton("Open image…", column)
        self.open_button.setObjectName("primary")
        opener.addWidget(self.open_button)
        drop_hint = QLabel("or drop one anywhere here", column)
        drop_hint.setObjectName("hint")
        opener.addWidget(drop_hint, 1)
        col.addLayout(opener)
        self.prompt = QLineEdit(column)
        self.prompt.setPlaceholderText("What it shows (optional), e.g. a red circle on a black background")
        self.prompt.setToolTip("Helps edits find what they are about; the image comes back without it too. "
                               "Changing it inverts the image again.")
        col.addWidget(self.prompt)
        self.progress = QProgressBar(column)
        self.progress.setFormat("inverting your image… %p%")
        self.progress.setVisible(False)
        col.addWidget(self.progress)

        col.addWidget(self._section("2 · Edits"))
        adder = QHBoxLayout()
        self.new_edit = QLineEdit(column)
        self.new_edit.setPlaceholderText("red->blue, +glasses, -glasses")
        self.new_edit.setToolTip("FROM->TO changes one thing into another; +thing adds it, -thing removes it")
        self.add_button = QPushButton("Add", column)
        adder.addWidget(self.new_edit, 1)
        adder.addWidget(self.add_button)
        col.addLayout(adder)
        self.find_button = QPushButton("Find directions in the model", column)
        self.find_button.setToolTip("Directions the model already has, found without training (PCA), offered as "
                                    "PC 1, PC 2, … sliders you can rename and save")
        menu = QMenu(self.find_button)
        menu.addAction("In its bottleneck, over sampled images (h-space)",
                       lambda: self._guard(lambda: self.session.discover("h-space")))
        menu.addAction("In prompt variations (text embeddings)",
                       lambda: self._guard(lambda: self.session.discover("text")))
        self.find_button.setMenu(menu)
        col.addWidget(self.find_button)
        self.empty = QLabel("No edits yet: type one above, or find directions the model already has.", column)
        self.empty.setObjectName("hint")
        self.empty.setWordWrap(True)
        col.addWidget(self.empty)
        self.rows_box = QVBoxLayout()
        self.rows_box.setSpacing(2)
        col.addLayout(self.rows_box)
        shaping = QHBoxLayout()
        shaping.addWidget(QLabel("Outline", column))
        self.layout_choice = QComboBox(column)
        for label, value in (("auto: per edit", "auto"), ("keep the outline", "keep"), ("free to reshape", "reshape")):
            self.layout_choice.addItem(label, value)
        self.layout_choice.setToolTip(
            "How the word edits may change outlines. Keep: colour, texture, background change, outlines stay. "
            "Reshape: the edited object is redrawn in its box (a circle becomes a square). Auto guesses per "
            "edit from the change the model predicts; the status line says what each edit got.")
        self.layout_choice.currentIndexChanged.connect(self._layout_changed)
        shaping.addWidget(self.layout_choice, 1)
        col.addLayout(shaping)
        self.zoom_check = QCheckBox("Zoom in on the object", column)
        self.zoom_check.setChecked(True)
        self.zoom_check.setToolTip(
            "Word edits are made on a crop around the edited object, enlarged to the model's working size, "
            "then blended back: a model draws shapes best at the sizes it learned. The status line says "
            "how far it zoomed.")
        self.zoom_check.toggled.connect(self._zoom_changed)
        col.addWidget(self.zoom_check)
        quality_hint = QLabel("Beside each slider: how cleanly it edits your image, measured in the background "
                              "(hover for what the figures mean).", column)
        quality_hint.setObjectName("hint")
        quality_hint.setWordWrap(True)
        col.addWidget(quality_hint)
        col.addStretch(1)

        col.addWidget(self._section("3 · Save"))
        saves = QHBoxLayout()
        self.save_button = QPushButton("Save PNG…", column)
        self.save_button.setToolTip("The edited image; its metadata holds the edit recipe, so the edit can be "
                                    "replayed (studio latent edit --recipe)")
        self.save_dirs_button = QPushButton("Save directions…", column)
        self.save_dirs_button.setToolTip("The found directions under the names you gave them, as a directions file")
        saves.addWidget(self.save_button)
        saves.addWidget(self.save_dirs_button)
        col.addLayout(saves)

        self.open_button.clicked.connect(self._open)
        self.add_button.clicked.connect(self._add)
        self.new_edit.returnPressed.connect(self._add)
        self.save_button.clicked.connect(self._save)
        self.save_dirs_button.clicked.connect(self._save_directions)
        self.prompt.editingFinished.connect(self._prompt_changed)
        return scroll

    def _build_tiles(self) -> QWidget:
        right = QWidget(self)
        rc = QVBoxLayout(right)
        rc.setContentsMargins(8, 8, 8, 8)
        tiles = QHBoxLayout()
        self.views: dict[str, ImageView] = {}
        self.captions: dict[str, QLabel] = {}
        for key, title in TILES:
            column = QVBoxLayout()
            view = ImageView(right, placeholder="Drop an image here" if key == "original" else "")
            view.setMinimumSize(200, 200)
            caption = QLabel(title, right)
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            caption.setWordWrap(True)
            column.addWidget(view, 1)
            column.addWidget(caption)
            tiles.addLayout(column, 1)
            self.views[key], self.captions[key] = view, caption
        rc.addLayout(tiles, 1)
        self.status = QLabel("Open or drop an image to start.", right)
        self.status.setWordWrap(True)
        rc.addWidget(self.status)
        return right

    @staticmethod
    def _section(text: str) -> QLabel:
        label = QLabel(text)
        label.setObjectName("sectionLabel")
        return label

    # -- commands -------------------------------------------------------------------------
    def _guard(self, action: Callable[[], Any]) -> Any:
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

    def _prompt_changed(self) -> None:
        if self.prompt.text() != self.session.prompt:
            self.session.prompt = self.prompt.text()
            if self.session.image_path:  # the inversion and the masks depend on the prompt
                self.open_image(self.session.image_path)

    def _open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Your image", "", IMAGE_FILTER)
        if path:
            self.open_image(path)

    def _add(self) -> None:
        if self._guard(lambda: self.session.add_edit(self.new_edit.text())) is not None:
            self.new_edit.clear()

    def _layout_changed(self, _index: int) -> None:
        self._guard(lambda: self.session.set_layout(str(self.layout_choice.currentData())))

    def _zoom_changed(self, on: bool) -> None:
        self._guard(lambda: self.session.set_zoom(on))

    def _save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the edited image", "edited.png", "PNG (*.png)")
        if path:
            saved = self._guard(lambda: self.session.save(path))
            if saved is not None:
                self.status.setText(f"Saved {saved} (the edit recipe is in its metadata)")

    def _save_directions(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the directions", "directions.json",
                                              "Directions (*.json *.safetensors)")
        if path:
            saved = self._guard(lambda: self.session.save_directions(path))
            if saved is not None:
                self.status.setText(f"Saved {saved}")

    def _moved(self, index: int, value: float, dragging: bool) -> None:
        """Draft previews while dragging, full quality on release (the newest value wins)."""
        self._guard(lambda: self.session.set_strength(index, value, dragging=dragging))

    # -- drag and drop ----------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if dropped_image_path(event):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt's name
        path = dropped_image_path(event)
        if path:
            event.acceptProposedAction()
            self.open_image(path)

    # -- session -> view --------------------------------------------------------------------
    def _on_changed(self, name: str) -> None:
        s = self.session
        if name == "image":
            for view in self.views.values():
                view.clear()
            self.captions["reconstruction"].setText("Reconstruction")
            self.captions["edited"].setText("Edited")
        elif name == "reconstruction":
            self.progress.setVisible(False)
            self.views["original"].set_image(s.original)
            self.views["reconstruction"].set_image(s.reconstruction)
            self.views["edited"].set_image(s.reconstruction)
            self.captions["reconstruction"].setText(
                "Reconstruction" + (f" — PSNR {s.psnr:.1f} dB" if s.psnr is not None else ""))
            self.captions["edited"].setText("Edited — no edit yet")
            self.status.setText("Ready: add an edit and move its slider.")
        elif name == "edited":
            self.views["edited"].set_image(s.edited)
            applied = (s.edited_artifact.parameters.get("edits") if s.edited_artifact else None) or []
            self.captions["edited"].setText("Edited — " + (", ".join(applied) or "no edit"))
            info = s.edited_info
            if info.get("seconds") is not None:
                got = "; ".join(info.get("layout") or [])  # e.g. "red->blue: keep"
                zoom = str(info.get("zoom") or "")  # e.g. "x1.33 on 8,8,56,56" or "whole picture"
                self.status.setText(f"{'Draft preview' if info.get('draft') else 'Full quality'} in "
                                    f"{float(info['seconds']):.2f} s." + (f" Outline: {got}." if got else "")
                                    + (f" Zoom: {zoom}." if zoom else ""))
        elif name == "sliders":
            self._rebuild_rows()
        elif name == "quality":
            self._show_quality()
        elif name == "progress" and s.clock.total and s.reconstruction is None:
            self.progress.setVisible(True)
            self.progress.setRange(0, s.clock.total)
            self.progress.setValue(s.clock.step)

    def _rebuild_rows(self) -> None:
        for row in self.rows:
            self.rows_box.removeWidget(row)
            row.hide()  # out of the layout now; Qt deletes it once back in its event loop
            row.deleteLater()
        self.rows = []
        for i, slider in enumerate(self.session.sliders):
            row = EditSliderRow(slider.label, slider.kind, slider.strength, self)
            row.moved.connect(lambda value, dragging, i=i: self._moved(i, value, dragging))
            row.renamed.connect(lambda text, i=i: self.session.rename(i, text))
            row.measureRequested.connect(lambda i=i: self._guard(lambda: self.session.measure(i)))
            row.removeRequested.connect(lambda i=i: self._guard(lambda: self.session.remove(i)))
            self.rows_box.addWidget(row)
            self.rows.append(row)
        self.empty.setVisible(not self.rows)
        self._show_quality()

    def _show_quality(self) -> None:
        for i, (row, slider) in enumerate(zip(self.rows, self.session.sliders, strict=False)):
            row.show_quality(slider.quality, slider.quality_tip, self.session.is_measuring(i))
