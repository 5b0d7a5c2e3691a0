"""The Image panel: layout and bindings over :class:`~studio.core.sessions.image.ImageSession`.

Controls on the left (model picker, mode, the form built from the plugin's specs, Generate,
run status, queue), the big image (and the inpaint mask) on the right over the gallery.  The
session owns every value, the jobs, progress, seeds and the results list; this file only
lays the widgets out, binds them to the session and forwards clicks to session commands.
Engine events reach the session through the bridge (wired by the main window), never here.
Drag-and-drop of images lives in :mod:`studio.qt.panels.image_drops`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QButtonGroup,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.history import OutputRecord
from studio.core.jobs import Job, JobState, Saved
from studio.core.sessions.image import ImageSession, Restored
from studio.plugin_api import ParamError
from studio.qt.bridge import EngineBridge
from studio.qt.imaging import pil_to_qimage
from studio.qt.panels.image_drops import ImageDrops
from studio.qt.widgets.binding import connect_while_alive
from studio.qt.widgets.control_list import ControlList, ImagePromptList
from studio.qt.widgets.gallery import Gallery
from studio.qt.widgets.image_view import ImageView
from studio.qt.widgets.lora_list import LoraList
from studio.qt.widgets.mask_canvas import MaskCanvas, prune_masks
from studio.qt.widgets.message_bar import MessageBar
from studio.qt.widgets.model_picker import ModelPicker
from studio.qt.widgets.param_form import ParamForm
from studio.qt.widgets.queue_view import QueueView
from studio.qt.widgets.run_status import RunStatus
from studio.qt.widgets.weights_picker import WeightsPicker

MODE_TITLES = {"txt2img": "Text → Image", "img2img": "Image → Image", "inpaint": "Inpaint", "edit": "Edit"}


class ImagePanel(ImageDrops, QWidget):
    #: a job of this panel produced a saved image: (job, Saved)
    imageSaved = Signal(object, object)

    def __init__(self, context, bridge: EngineBridge, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("imagePanel")
        self.context = context
        self.bridge = bridge
        self.session = ImageSession(context)
        self._mask_source: str | None = None
        self.setAcceptDrops(True)
        prune_masks()
        self._build()
        self._bind()
        self.session.load_results()
        if self.session.plugin is None:
            self._no_plugin()

    # ------------------------------------------------------------------------------- layout
    def _build(self) -> None:
        root = QHBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setChildrenCollapsible(False)
        root.addWidget(self.splitter)

        left = QFrame(self.splitter)
        left.setObjectName("controls")
        left.setMinimumWidth(340)
        left.setMaximumWidth(560)
        column = QVBoxLayout(left)
        column.setContentsMargins(12, 12, 12, 12)
        column.setSpacing(8)

        model_label = QLabel("Model", left)
        model_label.setObjectName("sectionLabel")
        column.addWidget(model_label)
        self.model_picker = ModelPicker(
            left, placeholder="Folder, .safetensors file or hub id (org/name)",
            folder_title="Choose a diffusers model folder", file_title="Choose a .safetensors checkpoint",
            tooltip="A diffusers folder, a single .safetensors checkpoint, or a Hugging Face id like org/name "
                    "(downloaded only if Settings allow it).")
        column.addWidget(self.model_picker)
        weights_label = QLabel("Transformer / UNet weights", left)
        weights_label.setObjectName("sectionLabel")
        column.addWidget(weights_label)
        self.weights_picker = WeightsPicker(left)
        weights_label.setBuddy(self.weights_picker.field)
        column.addWidget(self.weights_picker)

        self.mode_group = QButtonGroup(self)
        self.mode_group.setExclusive(True)
        self.mode_buttons: dict[str, QPushButton] = {}
        modes = self.session.modes()
        if modes:
            mode_row = QHBoxLayout()
            mode_row.setSpacing(0)
            for index, mode in enumerate(modes):
                button = QPushButton(MODE_TITLES.get(mode, mode), left)
                button.setCheckable(True)
                button.setObjectName("segment")
                button.setProperty("position", "first" if index == 0 else "last" if index == len(modes) - 1
                                   else "middle")
                button.setToolTip(mode)
                self.mode_group.addButton(button)
                self.mode_buttons[mode] = button
                mode_row.addWidget(button)
            column.addLayout(mode_row)

        # the generated form, scrollable
        self.message = MessageBar(left)
        custom: dict[str, QWidget] = {}
        self.lora_list: LoraList | None = None
        lora = self.session.lora_param
        if lora is not None:
            self.lora_list = LoraList()
            custom[lora.name] = self.lora_list
        # artist's toolkit: control inputs and reference images get row editors (widgets/control_list.py)
        names = {p.name for p in self.session.parameters()}
        self.control_list = ControlList() if "controls" in names else None
        self.image_prompt_list = ImagePromptList() if "image_prompts" in names else None
        if self.control_list is not None:
            custom["controls"] = self.control_list
        if self.image_prompt_list is not None:
            custom["image_prompts"] = self.image_prompt_list
        mask = self.session.mask_param
        self.form = ParamForm(self.session.parameters(), custom=custom, exclude=[mask.name] if mask else [],
                              message_bar=self.message)
        self.form.setObjectName("paramForm")
        self.form_scroll = QScrollArea(left)
        self.form_scroll.setWidgetResizable(True)
        self.form_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.form_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        holder = QWidget()
        holder.setObjectName("formHolder")
        holder_layout = QVBoxLayout(holder)
        holder_layout.setContentsMargins(0, 4, 6, 4)
        holder_layout.addWidget(self.form)
        holder_layout.addStretch(1)
        self.form_scroll.setWidget(holder)
        column.addWidget(self.form_scroll, 1)

        # pinned at the bottom: messages, the buttons, progress, queue
        column.addWidget(self.message)
        buttons = QHBoxLayout()
        buttons.setSpacing(6)
        self.generate_button = QPushButton("Generate", left)
        self.generate_button.setObjectName("primary")
        self.generate_button.setMinimumHeight(38)
        self.generate_button.setToolTip("Generate (Ctrl+Enter); while a job runs this adds to the queue")
        buttons.addWidget(self.generate_button, 1)
        self.xyz_button = QPushButton("X/Y/Z…", left)  # the sweep dialog (studio/qt/dialogs/xyz.py)
        self.xyz_button.setMinimumHeight(38)
        self.xyz_button.setToolTip("X/Y/Z plot: vary up to three of these settings and see the results in a grid")
        self.xyz_button.clicked.connect(self.open_xyz)
        buttons.addWidget(self.xyz_button)
        column.addLayout(buttons)
        self.run_status = RunStatus(left, interrupt=True, buttons_beside=buttons)
        column.addWidget(self.run_status)
        self.queue_view = QueueView(left)
        column.addWidget(self.queue_view)

        # right: image (and mask) over the gallery
        right = QWidget(self.splitter)
        right_column = QVBoxLayout(right)
        right_column.setContentsMargins(0, 0, 0, 0)
        right_column.setSpacing(0)
        self.tabs = QTabWidget(right)
        self.tabs.setDocumentMode(True)
        self.image_view = ImageView(self.tabs)
        self.tabs.addTab(self.image_view, "Result")
        self.mask_canvas = MaskCanvas(self.tabs)
        self.mask_tab = self.tabs.addTab(self.mask_canvas, "Inpaint mask")
        right_column.addWidget(self.tabs, 1)
        self.gallery = Gallery(right)
        right_column.addWidget(self.gallery)

        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([380, 900])

    # Shorter names the tests and the main window use.
    @property
    def progress(self):
        return self.run_status.progress

    @property
    def interrupt_button(self) -> QPushButton:
        return self.run_status.interrupt_button

    @property
    def run_info(self) -> QLabel:
        return self.run_status.info

    # ------------------------------------------------------------------------------- bindings
    def _bind(self) -> None:
        session = self.session
        self.model_picker.bind(session)
        self.weights_picker.bind(session)
        self.form.bind(session)
        self.message.bind(session)
        self.run_status.bind(session)
        connect_while_alive(self, session.changed, self._session_changed)
        connect_while_alive(self, session.saved, self._saved)
        connect_while_alive(self, session.results_changed, self._results_changed)
        self._show_mode()

        self.generate_button.clicked.connect(self.generate)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(keys), self, self.generate)
        self.mode_group.buttonClicked.connect(self._mode_clicked)
        self.queue_view.removeRequested.connect(self.remove_queued)
        self.gallery.recordActivated.connect(self.restore_output)
        self.gallery.useAsInit.connect(self.use_as_init)
        self.gallery.upscaleRequested.connect(self.upscale_output)
        self.form.changed.connect(self._form_changed)
        self.bridge.queueChanged.connect(self.refresh_queue)
        self.install_drop_filters()

    def _session_changed(self, what: str) -> None:
        if what == "mode":
            self._show_mode()
        elif what == "values":
            self._init_image_changed()
        elif what == "preview":
            preview = self.session.preview
            if preview is not None and preview.image is not None:
                self.image_view.set_image(pil_to_qimage(preview.image), f"Preview · step {preview.step}")
        elif what in ("hints", "model"):  # the modes this model supports, once it has loaded
            for mode, button in self.mode_buttons.items():
                supported = mode in self.session.model_modes
                button.setEnabled(supported or mode == self.session.mode)
                button.setToolTip(mode if supported else f"{mode}: not supported by this model")
        elif what == "job":
            job = self.session.active_job
            if job is not None and job.state is JobState.LOADING:
                self.tabs.setCurrentWidget(self.image_view)
            self._update_buttons()

    def _no_plugin(self) -> None:
        failures = [e for e in self.context.registry.entries if not e.ok]
        reason = "; ".join(f"{e.name}: {e.error}" for e in failures) if failures else "none is installed"
        self.message.show_message(f"No image plugin is available ({reason}). See Help → Plugins.", "error")
        self.generate_button.setEnabled(False)

    # ------------------------------------------------------------------------------- model
    def model_source(self) -> str:
        return self.model_picker.source()

    def set_model_source(self, source: str) -> None:
        self.model_picker.set_source(source)

    def set_transformer_file(self, path: str) -> None:
        """Use ``path`` as the denoiser weights ("" = the model's own), as if picked."""
        self.weights_picker.set_path(path)

    def refresh_model_hint(self, *_args) -> None:
        self.model_picker.refresh_hint()

    # ------------------------------------------------------------------------------- mode
    def mode(self) -> str | None:
        return self.session.mode

    def set_mode(self, mode: str | None) -> None:
        if mode in self.session.modes():
            self.session.set_mode(mode)

    def _mode_clicked(self, button) -> None:
        for mode, candidate in self.mode_buttons.items():
            if candidate is button:
                self.set_mode(mode)

    def _show_mode(self) -> None:
        mode = self.session.mode
        if mode in self.mode_buttons:
            self.mode_buttons[mode].setChecked(True)
        inpaint = self.session.applies(self.session.mask_param)
        self.tabs.setTabVisible(self.mask_tab, inpaint)
        self.tabs.tabBar().setVisible(inpaint)  # one lone tab would just be noise
        if inpaint:
            self._init_image_changed()
            self.tabs.setCurrentWidget(self.mask_canvas)
        else:
            self.tabs.setCurrentWidget(self.image_view)

    def _init_image_changed(self) -> None:
        init = self.session.init_param
        path = self.session.values.get(init.name) if init is not None else None
        if path != self._mask_source:
            self._mask_source = path
            self.mask_canvas.set_image(path if path and Path(path).is_file() else None)

    def _form_changed(self) -> None:
        if self.message.kind == "error":
            self.message.dismiss()

    # ------------------------------------------------------------------------------- generate
    def generate(self) -> Job | None:
        """Queue a job with the session's values.  Returns it, or None after showing why not."""
        if self.session.plugin is None:
            return None
        self.form.clear_error()
        mask = self.session.mask_param
        if mask is not None and self.session.applies(mask):
            if self.mask_canvas.mask is None:
                self.form.show_error("Choose an init image, then paint the area to repaint on the mask.")
                return None
            if self.mask_canvas.is_empty():
                self.tabs.setCurrentWidget(self.mask_canvas)
                self.form.show_error("The mask is empty: paint the area to repaint first.")
                return None
            self.session.set_value(mask.name, self.mask_canvas.save_mask())
        try:
            job = self.session.generate()
        except ParamError as exc:
            self.form.show_error(exc)
            return None
        self.refresh_queue()
        return job

    @property
    def last_job(self) -> Job | None:
        return self.session.last_job

    @property
    def active_job(self) -> Job | None:
        return self.session.active_job

    def open_xyz(self) -> None:
        """The X/Y/Z dialog over the form's current values (a running sweep's dialog comes back)."""
        from studio.core.sessions.sweep import SweepSession
        from studio.qt.dialogs.xyz import XYZDialog

        if self.session.plugin is None:
            return
        dialog = getattr(self, "_xyz_dialog", None)
        if dialog is None or not dialog.session.running:
            session = SweepSession(self.context, self.session.plugin.id, self.model_source(), self.session.mode,
                                   dict(self.session.values))
            dialog = self._xyz_dialog = XYZDialog(session, self.bridge, self)
        dialog.show()
        dialog.raise_()

    def interrupt(self) -> None:
        self.session.interrupt()

    def remove_queued(self, job: Job) -> None:
        self.session.cancel(job)
        self.refresh_queue()

    def refresh_queue(self) -> None:
        self.queue_view.set_jobs(self.context.engine.queued())
        self._update_buttons()

    def _update_buttons(self) -> None:
        busy = self.session.busy or bool(self.context.engine.queued())
        self.generate_button.setText("Add to queue" if busy else "Generate")

    # ------------------------------------------------------------------------------- results
    def _saved(self, job: Job, event: Saved) -> None:
        artifact = event.artifact
        image = pil_to_qimage(artifact.image) if artifact.image is not None else QImage(str(event.path))
        self.gallery.show_results(self.session.results, image)
        self.image_view.set_image(image, self._caption(self.session.results[0], image))
        self.run_status.set_detail(f"{image.width()}×{image.height()}" if not image.isNull() else "")
        self.imageSaved.emit(job, event)

    def _results_changed(self) -> None:
        self.gallery.show_results(self.session.results)

    @staticmethod
    def _caption(record: OutputRecord, image: QImage | None = None) -> str:
        parts = [Path(record.path).name]
        if record.seed is not None:
            parts.append(f"seed {record.seed}")
        if image is not None and not image.isNull():
            parts.append(f"{image.width()}×{image.height()}")
        return " · ".join(parts)

    # ------------------------------------------------------------------------------- restore
    def restore_png(self, path: str) -> Restored | None:
        """Restore the settings stored in a PNG (the session says what was and was not applied)."""
        try:
            restored = self.session.restore_from_png(path)
        except ParamError as exc:
            self.message.show_message(str(exc), "warning")
            return None
        self.image_view.set_path(path, Path(path).name)
        return restored

    def restore_output(self, record: OutputRecord) -> Restored:
        """Restore the settings of a gallery item and show its image."""
        self.message.dismiss()
        restored = self.session.restore_from_output(record)
        self.image_view.set_path(record.path, self._caption(record))
        self.tabs.setCurrentWidget(self.image_view)
        return restored

    def upscale_output(self, record: OutputRecord) -> Job | None:
        """Enlarge a gallery image 2x on the upscaler plugin; the result joins the gallery."""
        try:
            return self.session.upscale(record.path)
        except ParamError as exc:
            self.message.show_message(str(exc), "error")
            return None

    def use_as_init(self, record: OutputRecord) -> None:
        self.session.use_as_init(record.path)
