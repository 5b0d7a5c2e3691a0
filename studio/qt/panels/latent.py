"""The Latent panel: move through a model's latent space one attribute at a time.

Left: the plugin and model, the base (seed or your own image), one slider per direction
(with "keep fixed" boxes for conditional editing), prompt pairs for diffusion pipelines, and
directions files (load / save / fit).  Right: the live preview, original vs reconstruction
with its PSNR, the walk strip with exports, and the measured edit quality.

Slider moves are coalesced by a short timer and sent as interactive jobs in one lane, so the
engine drops stale values and only the newest preview is drawn.  Everything runs on the
engine's worker thread; this panel only forwards to :class:`LatentSession`.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.jobs import JobState
from studio.core.sessions.latent import LatentSession, WalkSpec
from studio.plugin_api import ParamError
from studio.qt.imaging import IMAGE_FILTER, IMAGE_SUFFIXES, dropped_image_path, pil_to_qimage
from studio.qt.widgets.image_view import ImageView
from studio.qt.widgets.latent_sliders import DirectionSliders
from studio.qt.widgets.latent_strip import FrameStrip, scaled_pixmap
from studio.qt.widgets.message_bar import MessageBar

THROTTLE_MS = 15


class LatentPanel(QWidget):
    #: a preview reached the screen: (perf_counter seconds when it was drawn)
    previewShown = Signal(float)
    #: a job of this panel finished: (purpose)
    jobFinished = Signal(str)

    def __init__(self, context, bridge, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("latentPanel")
        self.context = context
        self.bridge = bridge
        self.session = LatentSession(context)
        self.setAcceptDrops(True)
        self._loaded_for: str | None = None
        self._pending_preview = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(THROTTLE_MS)
        self._timer.timeout.connect(self._send_preview)
        self.last_tick = 0.0  # perf_counter of the newest slider tick (for latency figures)
        self._build()
        self.bridge.stateChanged.connect(self._on_state)
        self.bridge.progress.connect(self._on_progress)
        self._fill_plugins()

    # ------------------------------------------------------------------------------- layout
    def _build(self) -> None:
        root = QHBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.setChildrenCollapsible(False)
        root.addWidget(split)

        scroll = QScrollArea(split)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(380)
        left = QFrame()
        left.setObjectName("controls")
        col = QVBoxLayout(left)
        col.setContentsMargins(12, 12, 12, 12)
        col.setSpacing(8)
        scroll.setWidget(left)

        form = QFormLayout()
        self.plugin_combo = QComboBox(left)
        self.plugin_combo.currentIndexChanged.connect(self._plugin_changed)
        form.addRow("Latent model type", self.plugin_combo)
        model_row = QHBoxLayout()
        self.model_combo = QComboBox(left)
        self.model_combo.setEditable(True)
        self.model_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.model_combo.lineEdit().setPlaceholderText("Model folder")
        model_row.addWidget(self.model_combo, 1)
        browse = QToolButton(left)
        browse.setText("…")
        browse.setToolTip("Choose a model folder")
        browse.clicked.connect(self._browse_model)
        model_row.addWidget(browse)
        self.load_button = QPushButton("Load", left)
        self.load_button.clicked.connect(self.load_model)
        model_row.addWidget(self.load_button)
        form.addRow("Model", model_row)
        col.addLayout(form)

        base = QGroupBox("Start from", left)
        base_row = QHBoxLayout(base)
        base_row.addWidget(QLabel("Seed", base))
        self.seed_spin = QSpinBox(base)
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.valueChanged.connect(self._seed_changed)
        base_row.addWidget(self.seed_spin)
        self.random_button = QPushButton("New sample", base)
        self.random_button.clicked.connect(self._random_seed)
        base_row.addWidget(self.random_button)
        self.open_button = QPushButton("Your image…", base)
        self.open_button.setToolTip("Encode your own image (or drop one on the panel)")
        self.open_button.clicked.connect(self._open_image)
        base_row.addWidget(self.open_button)
        col.addWidget(base)

        # diffusion-only controls
        self.diffusion_box = QGroupBox("Prompt and prompt-pair direction", left)
        dform = QFormLayout(self.diffusion_box)
        self.prompt_edit = QLineEdit(self.session.prompt, self.diffusion_box)
        self.prompt_edit.editingFinished.connect(self._prompt_changed)
        dform.addRow("Prompt", self.prompt_edit)
        self.steps_spin = QSpinBox(self.diffusion_box)
        self.steps_spin.setRange(1, 150)
        self.steps_spin.setValue(self.session.steps)
        self.steps_spin.valueChanged.connect(lambda v: setattr(self.session, "steps", int(v)))
        self.cfg_spin = QDoubleSpinBox(self.diffusion_box)
        self.cfg_spin.setRange(0.0, 30.0)
        self.cfg_spin.setSingleStep(0.5)
        self.cfg_spin.setValue(self.session.cfg_scale)
        self.cfg_spin.valueChanged.connect(lambda v: setattr(self.session, "cfg_scale", float(v)))
        sc = QHBoxLayout()
        sc.addWidget(self.steps_spin)
        sc.addWidget(QLabel("CFG", self.diffusion_box))
        sc.addWidget(self.cfg_spin)
        dform.addRow("Steps", sc)
        self.encode_combo = QComboBox(self.diffusion_box)
        self.encode_combo.addItems(["ddim-inversion", "img2img"])
        self.encode_combo.currentTextChanged.connect(lambda t: setattr(self.session, "encode_method", t))
        dform.addRow("Encode with", self.encode_combo)
        pair = QHBoxLayout()
        self.pair_from = QLineEdit("red", self.diffusion_box)
        self.pair_to = QLineEdit("blue", self.diffusion_box)
        pair.addWidget(self.pair_from)
        pair.addWidget(QLabel("→", self.diffusion_box))
        pair.addWidget(self.pair_to)
        dform.addRow("Pair", pair)
        self.strength_slider = QSlider(Qt.Orientation.Horizontal, self.diffusion_box)
        self.strength_slider.setObjectName("pairStrength")
        self.strength_slider.setRange(-200, 200)
        self.strength_slider.setValue(0)
        self.strength_label = QLabel("0", self.diffusion_box)
        self.strength_slider.valueChanged.connect(self._strength_changed)
        st = QHBoxLayout()
        st.addWidget(self.strength_slider, 1)
        st.addWidget(self.strength_label)
        dform.addRow("Strength", st)
        self.save_pair_button = QPushButton("Save pair direction…", self.diffusion_box)
        self.save_pair_button.clicked.connect(self._save_pair)
        dform.addRow(self.save_pair_button)
        col.addWidget(self.diffusion_box)

        sliders_box = QGroupBox("Directions", left)
        sl = QVBoxLayout(sliders_box)
        self.sliders = DirectionSliders(sliders_box)
        self.sliders.amountChanged.connect(self._amount_changed)
        self.sliders.keepChanged.connect(self._keep_changed)
        sl.addWidget(self.sliders)
        self.cosine_label = QLabel("", sliders_box)
        self.cosine_label.setObjectName("hint")
        self.cosine_label.setWordWrap(True)
        sl.addWidget(self.cosine_label)
        buttons = QHBoxLayout()
        self.reset_button = QPushButton("Reset", sliders_box)
        self.reset_button.clicked.connect(self.reset_sliders)
        buttons.addWidget(self.reset_button)
        self.load_dirs_button = QPushButton("Load…", sliders_box)
        self.load_dirs_button.setToolTip("Load directions from a .json or .safetensors file")
        self.load_dirs_button.clicked.connect(self._load_directions)
        buttons.addWidget(self.load_dirs_button)
        self.save_dirs_button = QPushButton("Save…", sliders_box)
        self.save_dirs_button.clicked.connect(self._save_directions)
        buttons.addWidget(self.save_dirs_button)
        self.fit_button = QPushButton("Find new…", sliders_box)
        fit_menu = QMenu(self.fit_button)
        fit_menu.addAction("From a Shapes factor (rendered, labelled scenes)…", self._fit_factor)
        fit_menu.addAction("Linear boundary from two folders (label 0 / label 1)…", self._fit_folders)
        fit_menu.addAction("PCA over a folder of images (GANSpace)…", self._fit_pca)
        self.fit_button.setMenu(fit_menu)
        buttons.addWidget(self.fit_button)
        sl.addLayout(buttons)
        col.addWidget(sliders_box, 1)
        col.addStretch(0)

        # right side ------------------------------------------------------------------
        right = QWidget(split)
        rc = QVBoxLayout(right)
        rc.setContentsMargins(8, 8, 8, 8)
        self.message = MessageBar(right)
        rc.addWidget(self.message)
        top = QHBoxLayout()
        self.preview_view = ImageView(right, placeholder="The edited image appears here")
        self.preview_view.setMinimumSize(320, 320)
        top.addWidget(self.preview_view, 3)
        pair_col = QVBoxLayout()
        self.original_label = QLabel("Original", right)
        self.original_label.setObjectName("hint")
        self.original_image = QLabel(right)
        self.original_image.setFixedSize(160, 160)
        self.original_image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.original_image.setFrameShape(QFrame.Shape.StyledPanel)
        self.recon_label = QLabel("Reconstruction", right)
        self.recon_label.setObjectName("hint")
        self.recon_image = QLabel(right)
        self.recon_image.setFixedSize(160, 160)
        self.recon_image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.recon_image.setFrameShape(QFrame.Shape.StyledPanel)
        self.psnr_label = QLabel("Drop an image to encode it", right)
        for w in (self.original_label, self.original_image, self.recon_label, self.recon_image, self.psnr_label):
            pair_col.addWidget(w)
        pair_col.addStretch(1)
        top.addLayout(pair_col, 1)
        rc.addLayout(top, 3)

        walk = QGroupBox("Walk from A to B", right)
        wl = QVBoxLayout(walk)
        wrow = QHBoxLayout()
        self.walk_from = QLineEdit(walk)
        self.walk_from.setPlaceholderText("A: seed, image path or prompt (empty: the current base)")
        self.walk_to = QLineEdit(walk)
        self.walk_to.setPlaceholderText("B: seed, image path or prompt")
        self.frames_spin = QSpinBox(walk)
        self.frames_spin.setRange(2, 240)
        self.frames_spin.setValue(8)
        self.walk_button = QPushButton("Walk", walk)
        self.walk_button.clicked.connect(self.start_walk)
        wrow.addWidget(self.walk_from, 2)
        wrow.addWidget(QLabel("→", walk))
        wrow.addWidget(self.walk_to, 2)
        wrow.addWidget(QLabel("Frames", walk))
        wrow.addWidget(self.frames_spin)
        wrow.addWidget(self.walk_button)
        wl.addLayout(wrow)
        self.strip = FrameStrip(walk)
        wl.addWidget(self.strip)
        erow = QHBoxLayout()
        self.walk_info = QLabel("", walk)
        self.walk_info.setObjectName("hint")
        erow.addWidget(self.walk_info, 1)
        self.export_buttons = {}
        for label, what in (("GIF…", "gif"), ("MP4…", "mp4"), ("Frames…", "frames")):
            b = QPushButton(f"Export {label}", walk)
            b.setEnabled(False)
            b.clicked.connect(lambda _=False, w=what: self._export(w))
            self.export_buttons[what] = b
            erow.addWidget(b)
        wl.addLayout(erow)
        rc.addWidget(walk)

        quality = QGroupBox("Edit quality (read back with the Shapes scorer)", right)
        ql = QVBoxLayout(quality)
        qrow = QHBoxLayout()
        self.quality_button = QPushButton("Measure slider quality", quality)
        self.quality_button.clicked.connect(self.measure_quality)
        qrow.addWidget(self.quality_button)
        self.status_label = QLabel("", quality)
        self.status_label.setObjectName("hint")
        qrow.addWidget(self.status_label, 1)
        ql.addLayout(qrow)
        self.quality_table = QTableWidget(0, 5, quality)
        self.quality_table.setHorizontalHeaderLabels(["Direction", "Moves", "Selectivity", "Monotonicity", "Verdict"])
        self.quality_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.quality_table.setMaximumHeight(200)
        ql.addWidget(self.quality_table)
        self.quality_box = quality
        rc.addWidget(quality, 1)
        split.setStretchFactor(1, 1)

    # ------------------------------------------------------------------------------- model
    def _fill_plugins(self) -> None:
        self.plugin_combo.blockSignals(True)
        self.plugin_combo.clear()
        for p in self.session.plugins():
            self.plugin_combo.addItem(p.label, p.id)
        if self.session.plugin is not None:
            self.plugin_combo.setCurrentIndex(max(0, self.plugin_combo.findData(self.session.plugin.id)))
        self.plugin_combo.blockSignals(False)
        self._fill_models()
        if self.session.plugin is None:
            self.message.show_message("No latent plugin is installed; see Help → Plugins.", "warning")
            for w in (self.load_button, self.walk_button, self.quality_button, self.open_button):
                w.setEnabled(False)

    def _fill_models(self) -> None:
        self.model_combo.clear()
        for m in self.session.models():
            self.model_combo.addItem(m.label, m.source)
        self.model_combo.setEditText(self.session.model)
        diffusion = self.session.is_diffusion
        self.diffusion_box.setVisible(diffusion)
        self.quality_box.setVisible(not diffusion)
        self.walk_from.setPlaceholderText("A: prompt (empty: the prompt above)" if diffusion else
                                          "A: seed or image path (empty: the current base)")
        self.walk_to.setPlaceholderText("B: prompt or seed:N" if diffusion else "B: seed or image path")

    def _plugin_changed(self, index: int) -> None:
        plugin_id = self.plugin_combo.itemData(index)
        if plugin_id:
            self.session.set_plugin(plugin_id)
            self._loaded_for = None
            self._fill_models()
            self._clear_views()
            if self.isVisible():
                self.load_model()

    def _browse_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a model folder")
        if folder:
            self.model_combo.setEditText(folder)
            self.load_model()

    def _current_model_text(self) -> str:
        text = self.model_combo.currentText().strip()
        index = self.model_combo.findText(text)
        if index >= 0 and self.model_combo.itemData(index):
            return str(self.model_combo.itemData(index))
        return text

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        # Load lazily: opening the studio must not load the heavy libraries for a tab nobody looked at.
        if self._loaded_for is None and (self._current_model_text() or self.session.model):
            QTimer.singleShot(0, self.load_model)

    def load_model(self) -> None:
        self.session.set_model(self._current_model_text() or self.session.model)
        self._loaded_for = self.session.model
        self._clear_views()
        self._run(self.session.load_info, "Loading the model…")

    def _clear_views(self) -> None:
        self.sliders.set_directions([])
        self.preview_view.clear()
        self.original_image.clear()
        self.recon_image.clear()
        self.psnr_label.setText("Drop an image to encode it")
        self.strip.clear()
        self.quality_table.setRowCount(0)
        self.cosine_label.setText("")

    def _run(self, action, status: str = ""):
        try:
            job = action()
        except ParamError as exc:
            self.message.show_message(str(exc), "error")
            return None
        if status:
            self.status_label.setText(status)
        return job

    # ------------------------------------------------------------------------------- base
    def _seed_changed(self, value: int) -> None:
        self.session.new_sample(int(value))
        self.original_image.clear()
        self.recon_image.clear()
        self.psnr_label.setText("Drop an image to encode it")
        self.request_preview()

    def _random_seed(self) -> None:
        import secrets

        self.seed_spin.setValue(secrets.randbelow(2**31 - 1))

    def _open_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Encode an image", "", IMAGE_FILTER)
        if path:
            self.encode_image(path)

    def encode_image(self, path: str) -> None:
        self._run(lambda: self.session.encode(path), f"Encoding {Path(path).name}…")

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if dropped_image_path(event):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        path = dropped_image_path(event)
        if path:
            event.acceptProposedAction()
            self.encode_image(path)

    def _prompt_changed(self) -> None:
        self.session.prompt = self.prompt_edit.text()
        self.request_preview()

    # ------------------------------------------------------------------------------- sliders
    def _amount_changed(self, name: str, amount: float) -> None:
        self.session.set_amount(name, amount)
        self._update_cosines()
        self.request_preview()

    def _keep_changed(self, name: str, kept: bool) -> None:
        self.session.set_keep(name, kept)
        self._update_cosines()
        self.request_preview()

    def _strength_changed(self, value: int) -> None:
        strength = value / 100.0
        self.strength_label.setText(f"{strength:+.2f}" if value else "0")
        a, b = self.pair_from.text().strip(), self.pair_to.text().strip()
        self.session.pairs = [[a, b, strength]] if a and b and value else []
        self.request_preview()

    def reset_sliders(self) -> None:
        self.session.reset_amounts()
        self.sliders.reset()
        self.strength_slider.blockSignals(True)
        self.strength_slider.setValue(0)
        self.strength_slider.blockSignals(False)
        self.strength_label.setText("0")
        self.session.pairs = []
        self._update_cosines()
        self.request_preview()

    def request_preview(self) -> None:
        """Throttle: ticks within THROTTLE_MS collapse into one job; the engine keeps only the
        newest queued one."""
        if not self.session.directions and not self.session.is_diffusion:
            return
        if self._loaded_for is None:
            return
        self.last_tick = time.perf_counter()
        if not self._timer.isActive():
            self._timer.start()

    def _send_preview(self) -> None:
        self._run(self.session.preview)

    def _update_cosines(self) -> None:
        rows = self.session.cosine_rows()
        if not rows:
            self.cosine_label.setText("Tick 'keep' on attributes to hold them fixed while you edit others."
                                      if self.session.directions and self.session.directions[0].vector is not None
                                      else "")
            return
        lines = [f"{a} vs kept {k}: cos {before:+.2f} → {after:+.3f} after projection"
                 for a, k, before, after in rows]
        self.cosine_label.setText("\n".join(lines))

    # ------------------------------------------------------------------------------- walks
    def _walk_spec(self) -> WalkSpec:
        spec = WalkSpec(frames=int(self.frames_spin.value()))
        for side, edit in (("from", self.walk_from), ("to", self.walk_to)):
            text = edit.text().strip()
            if not text:
                continue
            seed_text = text[5:] if text.lower().startswith("seed:") else text
            if seed_text.isdigit():
                setattr(spec, f"{side}_seed", int(seed_text))
            elif not self.session.is_diffusion:
                setattr(spec, f"{side}_image", text)
            else:
                setattr(spec, f"{side}_prompt", text)
        return spec

    def start_walk(self) -> None:
        self.strip.clear()
        self._run(lambda: self.session.walk(self._walk_spec()), "Walking…")

    def _export(self, what: str) -> None:
        if what == "frames":
            target = QFileDialog.getExistingDirectory(self, "Export the frames into")
        else:
            target, _ = QFileDialog.getSaveFileName(self, f"Export the walk as {what.upper()}", f"walk.{what}",
                                                    f"{what.upper()} (*.{what})")
        if target:
            self.export_walk(target)

    def export_walk(self, target: str) -> None:
        try:
            paths = self.session.walk_export(target)
        except ParamError as exc:
            self.message.show_message(str(exc), "error")
            return
        self.message.show_message(f"Exported {len(paths)} file(s) to {Path(paths[0]).parent}", "info")

    # ------------------------------------------------------------------------------- directions
    def _load_directions(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load directions", str(self.session.directions_dir()),
                                              "Directions (*.json *.safetensors)")
        if path:
            self._run(lambda: self.session.add_direction_file(path), "Loading directions…")

    def _save_directions(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save directions", str(self.session.directions_dir() /
                                                                           "directions.json"),
                                              "JSON (*.json);;safetensors (*.safetensors)")
        if path:
            try:
                saved = self.session.save_directions(path)
            except ParamError as exc:
                self.message.show_message(str(exc), "error")
                return
            self.message.show_message(f"Saved {saved.name}", "info")

    def _save_pair(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the prompt-pair direction",
                                              str(self.session.directions_dir() / "pair.json"),
                                              "JSON (*.json);;safetensors (*.safetensors)")
        if not path:
            return
        a, b = self.pair_from.text().strip(), self.pair_to.text().strip()
        pairs = [[a, b, 1.0]]

        def submit():
            request = {**self.session.edit_request(), "pairs": pairs, "save_direction": path}
            return self.session._submit("pair", "edit", request)
        self._run(submit, "Saving the direction…")

    def _fit_factor(self) -> None:
        factor, ok = QInputDialog.getItem(self, "Learn a direction", "Shapes factor",
                                          ["triangle", "circle", "square", "background", "x", "y", "size", "hue"],
                                          0, False)
        if ok:
            self._run(lambda: self.session.fit("boundary", f"learned-{factor}", factor=factor), "Fitting…")

    def _fit_folders(self) -> None:
        neg = QFileDialog.getExistingDirectory(self, "Folder of label-0 images")
        pos = QFileDialog.getExistingDirectory(self, "Folder of label-1 images") if neg else ""
        if not pos:
            return
        examples = [[str(p), 0] for p in sorted(Path(neg).iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
        examples += [[str(p), 1] for p in sorted(Path(pos).iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
        self._run(lambda: self.session.fit("boundary", Path(pos).name, examples=examples), "Fitting…")

    def _fit_pca(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of images")
        if folder:
            examples = [[str(p), 0] for p in sorted(Path(folder).iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
            self._run(lambda: self.session.fit("pca", Path(folder).name, examples=examples), "Fitting…")

    # ------------------------------------------------------------------------------- quality
    def measure_quality(self, bases: int = 6, sweep: int = 9) -> None:
        self._run(lambda: self.session.measure_quality(bases, sweep), "Measuring edit quality…")

    def _show_quality(self) -> None:
        q = self.session.state.quality
        self.quality_table.setRowCount(len(q))
        for i, (name, row) in enumerate(q.items()):
            mono = row.get("monotonicity")
            cells = [name, str(row.get("target", "?")), f"{row.get('selectivity', 0):.2f}",
                     "n/a" if mono is None else f"{mono:+.2f}", row.get("grade", "")]
            for j, text in enumerate(cells):
                self.quality_table.setItem(i, j, QTableWidgetItem(text))
        self.sliders.set_quality(q)

    # ------------------------------------------------------------------------------- events
    def _on_progress(self, job, event) -> None:
        purpose = self.session.purpose(job)
        if purpose in ("walk", "quality"):
            self.status_label.setText(f"{purpose}: {event.step}/{event.total} {event.message}".strip())

    def _on_state(self, job, event) -> None:
        if not event.state.finished or self.session.purpose(job) is None:
            return
        purpose = self.session.handle(job)
        if job.state is JobState.CANCELLED:
            return
        if job.state is JobState.FAILED:
            self.message.show_message(self.session.state.error or "The job failed.", "error")
            self.status_label.setText("")
            self.jobFinished.emit(purpose)
            return
        self.status_label.setText("")
        state = self.session.state
        if purpose == "info":
            self.sliders.set_directions(self.session.directions, self.session.amounts, self.session.keep)
            self.quality_button.setEnabled(bool(state.info.get("quality_available")))
            self._update_cosines()
            self.request_preview() if self.session.directions else self._send_preview()
        elif purpose in ("preview", "pair"):
            if state.preview is not None and purpose == "preview":
                self.preview_view.set_image(pil_to_qimage(state.preview))
                self.previewShown.emit(time.perf_counter())
            if purpose == "pair":
                saved = job.result.info.get("saved_direction") if job.result else None
                if saved:
                    self.message.show_message(f"Saved the direction to {saved}", "info")
        elif purpose == "encode":
            if state.original is not None:
                self.original_image.setPixmap(scaled_pixmap(state.original, 160))
            if state.reconstruction is not None:
                self.recon_image.setPixmap(scaled_pixmap(state.reconstruction, 160))
                self.preview_view.set_image(pil_to_qimage(state.reconstruction))
            if state.psnr is not None:
                self.psnr_label.setText(f"Reconstruction PSNR {state.psnr:.2f} dB")
            self.request_preview()
        elif purpose == "walk":
            self.strip.set_frames(state.walk_frames)
            s = state.walk_smoothness
            if s:
                self.walk_info.setText(f"{len(state.walk_frames)} frames · largest step {s.get('max_step', 0):.1f} "
                                       f"= {s.get('jump_ratio', 1):.2f}× the mean")
            for b in self.export_buttons.values():
                b.setEnabled(bool(state.walk_frames))
        elif purpose == "quality":
            self._show_quality()
        elif purpose == "fit":
            fitted = state.fitted
            if fitted is not None:
                self.session.keep_fitted()
                score = fitted.directions[0].score
                self.message.show_message(f"Found {len(fitted)} direction(s)"
                                          + (f" (score {score:.2f})" if score is not None else "")
                                          + "; added to the sliders.", "info")
                self._run(self.session.load_info)
        self.jobFinished.emit(purpose)

    def shutdown(self) -> None:
        self._timer.stop()
