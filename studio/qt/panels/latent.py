"""The Latent panel: layout and bindings over :class:`~studio.core.sessions.latent.LatentSession`.

Top: the plugin and model, and for diffusion models the switch between the panel's two modes
(:mod:`latent_modes`): *Explore* (below) and *Edit your own image* (the diffusion image editor).
Explore, left: the base (a seed, or your own image; for diffusion pipelines the
prompt and its settings — a form built from the plugin's specs), one slider per direction
(with "keep fixed" boxes for conditional editing), prompt pairs for diffusion pipelines, and
directions files (load / save / find new).  Right: the live preview, original vs
reconstruction with its PSNR, the walk strip with exports, and the measured edit quality.

The session owns every value and result and announces them (``changed``); this file lays the
widgets out, binds them and forwards clicks.  Slider moves are coalesced by a short timer (a
view concern) into interactive jobs in one lane, so only the newest preview is drawn.
Engine events reach the session through the bridge (wired by the main window).
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QScrollArea,
    QSlider,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.sessions.latent import LatentSession, WalkSpec
from studio.plugin_api import ParamType
from studio.qt.imaging import IMAGE_FILTER, dropped_image_path, pil_to_qimage
from studio.qt.panels.latent_dialogs import LatentDialogs
from studio.qt.panels.latent_modes import PANEL_MODES, LatentModes
from studio.qt.panels.latent_results import QualityBox, WalkBox
from studio.qt.widgets.binding import connect_while_alive
from studio.qt.widgets.image_view import ImageView
from studio.qt.widgets.latent_sliders import DirectionSliders
from studio.qt.widgets.latent_strip import scaled_pixmap
from studio.qt.widgets.message_bar import MessageBar
from studio.qt.widgets.param_editors import SampleSeedEditor
from studio.qt.widgets.param_form import ParamForm
from studio.qt.widgets.run_status import RunStatus

THROTTLE_MS = 15
TYPING_MS = 700  # a prompt being typed: preview once the typing pauses, not per key
#: the plugin parameters the form shows (those a plugin lacks are left out)
FORM_FIELDS = ("seed", "prompt", "negative_prompt", "steps", "cfg_scale", "encode_method", "img2img_strength")


class LatentPanel(LatentDialogs, LatentModes, QWidget):
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
        self._texts: dict[str, Any] = {}
        self._previewed: dict[str, Any] = {}  # the edit request of the newest preview sent
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._send_preview)
        self.last_tick = 0.0  # perf_counter of the newest slider tick (for latency figures)
        self.form: ParamForm | None = None
        self._build()
        self._bind()

    # ------------------------------------------------------------------------------- layout
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        root.setSpacing(0)
        root.addWidget(self._build_top())
        self.pages = QStackedWidget(self)
        root.addWidget(self.pages, 1)
        split = QSplitter(Qt.Orientation.Horizontal, self.pages)
        split.setChildrenCollapsible(False)
        self.pages.addWidget(split)
        self.splitter = split

        column_holder = QWidget(split)
        outer = QVBoxLayout(column_holder)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea(column_holder)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(400)
        left = QFrame()
        left.setObjectName("controls")
        col = QVBoxLayout(left)
        col.setContentsMargins(12, 12, 12, 12)
        col.setSpacing(8)
        scroll.setWidget(left)
        outer.addWidget(scroll, 1)
        self.run_status = RunStatus(column_holder, interrupt=False, cancel=True)
        self.run_status.setContentsMargins(12, 0, 12, 8)
        outer.addWidget(self.run_status)

        self.base_box = QGroupBox("Start from", left)
        self.base_layout = QVBoxLayout(self.base_box)
        self.open_button = QPushButton("Your image…", self.base_box)
        self.open_button.setToolTip("Encode your own image (or drop one on the panel)")
        self.base_layout.addWidget(self.open_button)
        col.addWidget(self.base_box)

        self.diffusion_box = QGroupBox("Prompt-pair direction", left)
        dform = QFormLayout(self.diffusion_box)
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
        self.strength_label = QLabel("0", self.diffusion_box)
        strength = QHBoxLayout()
        strength.addWidget(self.strength_slider, 1)
        strength.addWidget(self.strength_label)
        dform.addRow("Strength", strength)
        self.save_pair_button = QPushButton("Save pair direction…", self.diffusion_box)
        dform.addRow(self.save_pair_button)
        self.image_editor_button = QPushButton("Edit your own image…", self.diffusion_box)
        self.image_editor_button.setToolTip("Original, reconstruction and edit side by side: several edits "
                                            "at once, each kept to what it is about")
        dform.addRow(self.image_editor_button)
        col.addWidget(self.diffusion_box)

        sliders_box = QGroupBox("Directions", left)
        sl = QVBoxLayout(sliders_box)
        self.sliders = DirectionSliders(sliders_box)
        sl.addWidget(self.sliders)
        self.cosine_label = QLabel("", sliders_box)
        self.cosine_label.setObjectName("hint")
        self.cosine_label.setWordWrap(True)
        sl.addWidget(self.cosine_label)
        buttons = QGridLayout()  # two by two: four buttons in one row are cut off at the default size
        self.reset_button = QPushButton("Reset", sliders_box)
        self.load_dirs_button = QPushButton("Load…", sliders_box)
        self.load_dirs_button.setToolTip("Load directions from a .json or .safetensors file")
        self.save_dirs_button = QPushButton("Save…", sliders_box)
        self.fit_button = QPushButton("Find new…", sliders_box)
        fit_menu = QMenu(self.fit_button)
        fit_menu.addAction("From a Shapes factor (rendered, labelled scenes)…", self.fit_factor_dialog)
        fit_menu.addAction("Linear boundary from two folders (label 0 / label 1)…", self.fit_folders_dialog)
        fit_menu.addAction("PCA over a folder of images (GANSpace)…", self.fit_pca_dialog)
        self.fit_button.setMenu(fit_menu)
        for i, button in enumerate((self.reset_button, self.fit_button, self.load_dirs_button,
                                    self.save_dirs_button)):
            buttons.addWidget(button, i // 2, i % 2)
        sl.addLayout(buttons)
        col.addWidget(sliders_box, 1)

        right = QWidget(split)
        rc = QVBoxLayout(right)
        rc.setContentsMargins(8, 8, 8, 8)
        self.message = MessageBar(right)
        rc.addWidget(self.message)
        top_row = QHBoxLayout()
        self.preview_view = ImageView(right, placeholder="The edited image appears here")
        self.preview_view.setMinimumSize(320, 320)
        top_row.addWidget(self.preview_view, 3)
        pair_col = QVBoxLayout()
        self.original_label = QLabel("Original", right)
        self.original_label.setObjectName("hint")
        self.original_image = self._thumb(right)
        self.recon_label = QLabel("Reconstruction", right)
        self.recon_label.setObjectName("hint")
        self.recon_image = self._thumb(right)
        self.psnr_label = QLabel("Drop an image to encode it", right)
        self.psnr_label.setWordWrap(True)
        for w in (self.original_label, self.original_image, self.recon_label, self.recon_image, self.psnr_label):
            pair_col.addWidget(w)
        pair_col.addStretch(1)
        top_row.addLayout(pair_col, 1)
        rc.addLayout(top_row, 3)
        self.walk_box = WalkBox(right, on_export=self.export_dialog)
        rc.addWidget(self.walk_box)
        self.quality_box = QualityBox(right)
        rc.addWidget(self.quality_box, 1)
        # the walk's and the quality table's widgets, by the names the panel's users know
        for name in ("walk_from", "walk_to", "frames_spin", "walk_button", "strip", "walk_info", "export_buttons"):
            setattr(self, name, getattr(self.walk_box, name))
        self.quality_button, self.quality_table = self.quality_box.quality_button, self.quality_box.quality_table
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([440, 900])
        self._build_editor()

    @staticmethod
    def _thumb(parent: QWidget) -> QLabel:
        label = QLabel(parent)
        label.setFixedSize(160, 160)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setFrameShape(QFrame.Shape.StyledPanel)
        return label

    def _build_form(self) -> None:
        """The base's form, from the current plugin's specs (rebuilt when the plugin changes)."""
        if self.form is not None:  # out of the layout now; Qt deletes it once back in its event loop
            self.base_layout.removeWidget(self.form)
            self.form.hide()
            self.form.deleteLater()
        self.seed_editor = SampleSeedEditor()
        self.form = ParamForm(self.session.parameters(), include=FORM_FIELDS, custom={"seed": self.seed_editor},
                              labels={"seed": "Seed"}, message_bar=self.message)
        self.form.setObjectName("latentForm")
        self.base_layout.insertWidget(0, self.form)
        self.form.bind(self.session)
        self._texts = self._text_values()

    # ------------------------------------------------------------------------------- bindings
    def _bind(self) -> None:
        session = self.session
        self.model_picker.bind(session)
        self.message.bind(session)
        self.run_status.bind(session)
        connect_while_alive(self, session.changed, self._session_changed)
        connect_while_alive(self, session.job_finished, self._job_finished)
        self.plugin_combo.currentIndexChanged.connect(self._plugin_chosen)
        self.model_picker.picked.connect(lambda _source: self.load_model())
        self.load_button.clicked.connect(self.load_model)
        self.open_button.clicked.connect(self._open_image)
        self.strength_slider.valueChanged.connect(self._strength_changed)
        self.save_pair_button.clicked.connect(self.save_pair_dialog)
        self.image_editor_button.clicked.connect(self.open_image_editor)
        self.mode_group.idClicked.connect(lambda i: self.set_panel_mode(PANEL_MODES[i][0]))
        self.sliders.amountChanged.connect(self._amount_changed)
        self.sliders.keepChanged.connect(self._keep_changed)
        self.reset_button.clicked.connect(self.reset_sliders)
        self.load_dirs_button.clicked.connect(self.load_directions_dialog)
        self.save_dirs_button.clicked.connect(self.save_directions_dialog)
        self.walk_button.clicked.connect(self.start_walk)
        self.quality_button.clicked.connect(lambda: self.measure_quality())
        self._fill_plugins()
        self._plugin_shown()

    def _session_changed(self, what: str) -> None:
        state = self.session.state
        if what == "plugin":
            self._plugin_shown()
            if self.isVisible():
                self.load_model()
        elif what == "model":
            self._loaded_for = None
            self._clear_views()
            self._sync_editor_model()
        elif what == "values":
            self._values_changed()
        elif what == "directions":
            self.sliders.set_directions(self.session.directions, self.session.amounts, self.session.keep)
            self.sliders.empty.setText("No directions in files yet: move the prompt pair above, or Load… a "
                                       "directions file." if self.session.is_diffusion else
                                       "This model has no directions yet: Find new… or Load… some.")
            self.quality_button.setEnabled(bool(state.info.get("quality_available")))
            self._update_cosines()
        elif what == "edited" and state.preview is not None:
            self.preview_view.set_image(pil_to_qimage(state.preview))
            self.previewShown.emit(time.perf_counter())
        elif what == "encoded":
            self._show_encoded()
        elif what == "walk":
            self.walk_box.show_walk(state.walk_frames, state.walk_smoothness)
        elif what == "quality":
            self.quality_box.show_quality(state.quality)
            self.sliders.set_quality(state.quality)

    def _job_finished(self, purpose: str, succeeded: bool) -> None:
        if succeeded and purpose in ("info", "encode"):  # show the (new) base with the sliders as they are
            self.request_preview()
        self.jobFinished.emit(purpose)

    def _values_changed(self) -> None:
        """Preview again only when the preview's request changed (not for e.g. a size hint it
        does not use); wait for a pause while a prompt is being typed."""
        if self.session.edit_request() == self._previewed:
            return
        typed = self._text_values() != self._texts
        self._texts = self._text_values()
        self.request_preview(TYPING_MS if typed else THROTTLE_MS)

    def _text_values(self) -> dict[str, Any]:
        texts = {p.name for p in self.session.parameters() if p.type in (ParamType.TEXT, ParamType.STR)}
        return {k: v for k, v in self.session.values.items() if k in texts}

    # ------------------------------------------------------------------------------- plugin and model
    def _fill_plugins(self) -> None:
        self.plugin_combo.blockSignals(True)
        self.plugin_combo.clear()
        for plugin in self.session.plugins():
            self.plugin_combo.addItem(plugin.label, plugin.id)
        if self.session.plugin is not None:
            self.plugin_combo.setCurrentIndex(max(0, self.plugin_combo.findData(self.session.plugin.id)))
        self.plugin_combo.blockSignals(False)
        if self.session.plugin is None:
            self.message.show_message("No latent plugin is installed; see Help → Plugins.", "warning")
            for w in (self.load_button, self.walk_button, self.quality_button, self.open_button):
                w.setEnabled(False)

    def _plugin_chosen(self, index: int) -> None:
        plugin_id = self.plugin_combo.itemData(index)
        if plugin_id:
            self.run_command(lambda: self.session.set_plugin(plugin_id))

    def _plugin_shown(self) -> None:
        """Show what the current plugin offers: its form, prompt pairs or quality, walk hints."""
        self._loaded_for = None
        self._build_form()
        self._clear_views()
        diffusion = self.session.is_diffusion
        self.mode_switch.setVisible(diffusion)
        if not diffusion:
            self.set_panel_mode("explore")
        self._sync_editor_model()
        self.diffusion_box.setVisible(diffusion)
        self.quality_box.setVisible(not diffusion)
        if diffusion:
            self.walk_box.set_placeholders("A: prompt or seed:N (empty: the prompt above)", "B: prompt or seed:N")
        else:
            self.walk_box.set_placeholders("A: seed or image path (empty: the current base)", "B: seed or image path")

    def showEvent(self, event) -> None:
        super().showEvent(event)
        # Load lazily: opening the studio must not load the heavy libraries for a tab nobody looked at.
        if self._loaded_for is None and self.session.model:
            QTimer.singleShot(0, self._load_if_not_yet)

    def _load_if_not_yet(self) -> None:
        if self._loaded_for is None:  # a plugin switch may have loaded meanwhile
            self.load_model()

    def load_model(self) -> None:
        self.session.set_model(self.model_picker.source() or self.session.model)
        self._loaded_for = self.session.model
        self._clear_views()
        self.run_command(self.session.load_info)

    def _clear_views(self) -> None:
        self._previewed = {}
        self.sliders.set_directions([])
        self.sliders.empty.setText("No directions yet: load a model.")
        self.preview_view.clear()
        self._show_encoded()
        self.strip.clear()
        self.quality_table.setRowCount(0)
        self.cosine_label.setText("")

    # ------------------------------------------------------------------------------- base image
    def _open_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Encode an image", "", IMAGE_FILTER)
        if path:
            self.encode_image(path)

    def encode_image(self, path: str) -> None:
        self.run_command(lambda: self.session.encode(path))

    def dragEnterEvent(self, event) -> None:
        if dropped_image_path(event):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        path = dropped_image_path(event)
        if path:
            event.acceptProposedAction()
            self.encode_image(path)

    def _show_encoded(self) -> None:
        state = self.session.state
        for label, image in ((self.original_image, state.original), (self.recon_image, state.reconstruction)):
            if image is None:
                label.clear()
            else:
                label.setPixmap(scaled_pixmap(image, 160))
        if state.reconstruction is not None:
            self.preview_view.set_image(pil_to_qimage(state.reconstruction))
        self.psnr_label.setText(f"Reconstruction PSNR {state.psnr:.2f} dB" if state.psnr is not None
                                else "Drop an image to encode it")

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
        self.session.set_pair(self.pair_from.text(), self.pair_to.text(), strength)
        self.request_preview()

    def reset_sliders(self) -> None:
        self.session.reset_amounts()
        self.sliders.reset()
        self.strength_slider.blockSignals(True)
        self.strength_slider.setValue(0)
        self.strength_slider.blockSignals(False)
        self.strength_label.setText("0")
        self._update_cosines()
        self.request_preview()

    def request_preview(self, delay_ms: int = THROTTLE_MS) -> None:
        """Throttle: ticks within ``delay_ms`` collapse into one job; the engine keeps only the
        newest queued one."""
        if self._loaded_for is None:
            return
        self.last_tick = time.perf_counter()
        if not self._timer.isActive() or delay_ms > THROTTLE_MS:
            self._timer.start(delay_ms)

    def _send_preview(self) -> None:
        request = self.session.edit_request()
        if request == self._previewed:
            return  # e.g. a load's hints and its end asked at once: that preview is already on its way
        self._previewed = request
        self.run_command(self.session.edit_preview)

    def _update_cosines(self) -> None:
        rows = self.session.cosine_rows()
        if not rows:
            has_vectors = bool(self.session.directions) and self.session.directions[0].vector is not None
            self.cosine_label.setText("Tick the box before an attribute to hold it fixed while you move others."
                                      if has_vectors else "")
            return
        self.cosine_label.setText("\n".join(f"{a} vs kept {k}: cos {before:+.2f} → {after:+.3f} after projection"
                                            for a, k, before, after in self.session.cosine_rows()))

    # ------------------------------------------------------------------------------- walks and quality
    def start_walk(self) -> None:
        self.strip.clear()
        spec = WalkSpec.from_text(self.walk_from.text(), self.walk_to.text(), int(self.frames_spin.value()),
                                  prompts=self.session.is_diffusion)
        self.run_command(lambda: self.session.walk(spec))

    def measure_quality(self, bases: int = 6, sweep: int = 9) -> None:
        self.run_command(lambda: self.session.measure_quality(bases, sweep))

    def shutdown(self) -> None:
        self._timer.stop()
