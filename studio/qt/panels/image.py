"""The Image panel: controls on the left, the big image on the right, results below.

Everything heavy runs on the engine's worker thread; this panel only forwards clicks to the
:class:`~studio.core.sessions.image.ImageSession` and shows the events the
:class:`~studio.qt.bridge.EngineBridge` delivers on the GUI thread.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QFileDialog, QFrame, QHBoxLayout, QLabel, QProgressBar,
                               QPushButton, QScrollArea, QSizePolicy, QSplitter, QTabWidget, QToolButton,
                               QVBoxLayout, QWidget)

from studio.core.history import OutputRecord
from studio.core.jobs import Failed, Job, JobState, ModelLoaded, Saved, StateChanged
from studio.core.progress import ProgressClock, format_duration
from studio.core.sessions.image import ImageSession, Restored
from studio.plugin_api import Kind, Log, ParamError, ParamType, Preview, Progress
from studio.plugin_kit.sources import looks_like_hub_id
from studio.qt.bridge import EngineBridge
from studio.qt.icons import icon
from studio.qt.imaging import dropped_image_path, pil_to_qimage
from studio.qt.widgets.gallery import Gallery
from studio.qt.widgets.image_view import ImageView
from studio.qt.widgets.control_list import ControlList, ImagePromptList
from studio.qt.widgets.lora_list import LoraList
from studio.qt.widgets.mask_canvas import MaskCanvas, prune_masks
from studio.qt.widgets.message_bar import MessageBar
from studio.qt.widgets.param_form import ParamForm, PathEditor, SeedEditor
from studio.qt.widgets.queue_view import QueueView

MODE_TITLES = {"txt2img": "Text → Image", "img2img": "Image → Image", "inpaint": "Inpaint"}


class ImagePanel(QWidget):
    #: a job of this panel produced a saved image: (job, Saved)
    imageSaved = Signal(object, object)

    def __init__(self, context, bridge: EngineBridge, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("imagePanel")
        self.context = context
        self.bridge = bridge
        self.session = ImageSession(context)
        self.active_job: Job | None = None
        self.last_job: Job | None = None  # the last job this panel queued
        self.clock = ProgressClock()
        self._started_at = 0.0
        self._defaults_applied_for: str | None = None
        self._run_seeds: list[int] = []
        self._mask_source: str | None = None
        self._upscale_jobs: set[str] = set()  # jobs of the gallery's Upscale action
        self.setAcceptDrops(True)
        prune_masks()

        params = self.session.parameters()
        self.mask_param = next((p for p in params if p.type is ParamType.IMAGE_PATH and "mask" in p.name), None)
        images = [p for p in params if p.type is ParamType.IMAGE_PATH and p is not self.mask_param]
        self.init_param = next((p for p in images if p.name == "init_image"), images[0] if images else None)
        self.lora_param = next((p for p in params if p.type is ParamType.LIST and "lora" in p.name), None)
        self.seed_param = next((p for p in params if p.type is ParamType.SEED), None)

        self._build()
        self._connect()
        self.set_mode(self.session.mode)
        self.gallery.set_records(self.session.gallery())
        if self.session.plugin is None:
            self._no_plugin()

    # ------------------------------------------------------------------------------- layout
    def _build(self) -> None:
        root = QHBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setChildrenCollapsible(False)
        root.addWidget(self.splitter)

        # left: controls --------------------------------------------------------------
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
        model_row = QHBoxLayout()
        model_row.setSpacing(4)
        self.model_combo = QComboBox(left)
        self.model_combo.setEditable(True)
        self.model_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.model_combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.model_combo.setMinimumContentsLength(12)
        self.model_combo.lineEdit().setPlaceholderText("Folder, .safetensors file or hub id (org/name)")
        self.model_combo.setToolTip("A diffusers folder, a single .safetensors checkpoint, or a Hugging Face "
                                    "id like org/name (downloaded only if Settings allow it).")
        model_row.addWidget(self.model_combo, 1)
        self.browse_folder = QToolButton(left)
        self.browse_folder.setIcon(icon("folder"))
        self.browse_folder.setToolTip("Choose a diffusers model folder…")
        model_row.addWidget(self.browse_folder)
        self.browse_file = QToolButton(left)
        self.browse_file.setIcon(icon("file"))
        self.browse_file.setToolTip("Choose a .safetensors checkpoint…")
        model_row.addWidget(self.browse_file)
        column.addLayout(model_row)
        self.model_hint = QLabel(left)
        self.model_hint.setObjectName("hint")
        self.model_hint.setWordWrap(True)
        self.model_hint.hide()
        column.addWidget(self.model_hint)
        self._fill_models()

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
        if self.lora_param is not None:
            self.lora_list = LoraList()
            custom[self.lora_param.name] = self.lora_list
        # artist's toolkit: control inputs and reference images get row editors (studio/qt/widgets/control_list.py)
        names = {p.name for p in self.session.parameters()}
        self.control_list = ControlList() if "controls" in names else None
        self.image_prompt_list = ImagePromptList() if "image_prompts" in names else None
        if self.control_list is not None:
            custom["controls"] = self.control_list
        if self.image_prompt_list is not None:
            custom["image_prompts"] = self.image_prompt_list
        exclude = [self.mask_param.name] if self.mask_param else []
        self.form = ParamForm(self.session.parameters(), custom=custom, exclude=exclude, message_bar=self.message)
        self._apply_defaults(self.session.model, self.session.model_defaults(self.session.model))
        self.form.setObjectName("paramForm")
        self.scroll = QScrollArea(left)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        holder = QWidget()
        holder.setObjectName("formHolder")
        holder_layout = QVBoxLayout(holder)
        holder_layout.setContentsMargins(0, 4, 6, 4)
        holder_layout.addWidget(self.form)
        holder_layout.addStretch(1)
        self.scroll.setWidget(holder)
        column.addWidget(self.scroll, 1)

        # pinned at the bottom: messages, the buttons, progress, queue
        column.addWidget(self.message)
        buttons = QHBoxLayout()
        buttons.setSpacing(6)
        self.generate_button = QPushButton("Generate", left)
        self.generate_button.setObjectName("primary")
        self.generate_button.setMinimumHeight(38)
        self.generate_button.setToolTip("Generate (Ctrl+Enter); while a job runs this adds to the queue")
        buttons.addWidget(self.generate_button, 1)
        self.interrupt_button = QPushButton("Interrupt", left)
        self.interrupt_button.setIcon(icon("stop"))
        self.interrupt_button.setMinimumHeight(38)
        self.interrupt_button.setToolTip("Stop the running job and keep what it has so far")
        self.interrupt_button.setEnabled(False)
        buttons.addWidget(self.interrupt_button)
        column.addLayout(buttons)
        self.progress = QProgressBar(left)
        self.progress.setTextVisible(True)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("Ready")
        column.addWidget(self.progress)
        self.run_info = QLabel(left)
        self.run_info.setObjectName("hint")
        self.run_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.run_info.hide()
        column.addWidget(self.run_info)
        self.queue_view = QueueView(left)
        column.addWidget(self.queue_view)

        # right: image (and mask) over the gallery -------------------------------------------
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

    def _fill_models(self) -> None:
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for choice in self.session.models():
            self.model_combo.addItem(choice.label, choice.source)
            self.model_combo.setItemData(self.model_combo.count() - 1,
                                         choice.description or choice.source, Qt.ItemDataRole.ToolTipRole)
        self.model_combo.blockSignals(False)
        self.set_model_source(self.session.model)

    def _connect(self) -> None:
        self.generate_button.clicked.connect(self.generate)
        self.interrupt_button.clicked.connect(self.interrupt)
        QShortcut(QKeySequence("Ctrl+Return"), self, activated=self.generate)
        QShortcut(QKeySequence("Ctrl+Enter"), self, activated=self.generate)
        self.mode_group.buttonClicked.connect(self._mode_clicked)
        self.browse_folder.clicked.connect(self._browse_model_folder)
        self.browse_file.clicked.connect(self._browse_model_file)
        self.model_combo.currentTextChanged.connect(self.refresh_model_hint)
        self.queue_view.removeRequested.connect(self.remove_queued)
        self.gallery.recordActivated.connect(self.restore_output)
        self.gallery.useAsInit.connect(self.use_as_init)
        self.gallery.upscaleRequested.connect(self.upscale_output)
        if self.init_param is not None and self.form.has(self.init_param.name):
            self.form.editor(self.init_param.name).changed.connect(self._init_image_changed)
        self.form.changed.connect(self._form_changed)
        self.bridge.stateChanged.connect(self._on_state)
        self.bridge.progress.connect(self._on_progress)
        self.bridge.preview.connect(self._on_preview)
        self.bridge.saved.connect(self._on_saved)
        self.bridge.failed.connect(self._on_failed)
        self.bridge.modelLoaded.connect(self._apply_model_hints)
        self.bridge.log.connect(self._on_log)
        self.bridge.queueChanged.connect(self.refresh_queue)
        for child in self.findChildren(QWidget):  # catch image drops before text fields take them
            child.installEventFilter(self)

    def _no_plugin(self) -> None:
        failures = [e for e in self.context.registry.entries if not e.ok]
        reason = "; ".join(f"{e.name}: {e.error}" for e in failures) if failures else "none is installed"
        self.message.show_message(f"No image plugin is available ({reason}). See Help → Plugins.", "error")
        self.generate_button.setEnabled(False)

    # ------------------------------------------------------------------------------- model
    def model_source(self) -> str:
        text = self.model_combo.currentText().strip()
        index = self.model_combo.findText(text)
        if index >= 0 and self.model_combo.itemData(index):
            return str(self.model_combo.itemData(index))
        return text

    def set_model_source(self, source: str) -> None:
        if not source:
            return
        index = self.model_combo.findData(source)
        if index < 0:
            self.model_combo.addItem(Path(source).name or source, source)
            index = self.model_combo.count() - 1
            self.model_combo.setItemData(index, source, Qt.ItemDataRole.ToolTipRole)
        self.model_combo.setCurrentIndex(index)
        self.session.set_model(source)
        self._apply_defaults(source, self.session.model_defaults(source))

    def refresh_model_hint(self, *_args) -> None:
        source = self.model_source()
        self.session.set_model(source)
        self._apply_defaults(source, self.session.model_defaults(source))
        if source and looks_like_hub_id(source) and not self.context.settings.allow_download:
            self.model_hint.setText("Looks like a hub id: downloads are off (File → Settings → Allow downloads).")
            self.model_hint.show()
        else:
            self.model_hint.hide()

    def _browse_model_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a diffusers model folder")
        if folder:
            self.set_model_source(folder)

    def _browse_model_file(self) -> None:
        patterns = "*.safetensors *.ckpt" if self.context.settings.allow_pickle else "*.safetensors"
        path, _ = QFileDialog.getOpenFileName(self, "Choose a checkpoint", "", f"Checkpoints ({patterns})")
        if path:
            self.set_model_source(path)

    # ------------------------------------------------------------------------------- mode
    def mode(self) -> str | None:
        return self.session.mode

    def set_mode(self, mode: str | None) -> None:
        if mode is not None and mode not in self.session.modes():
            return
        self.session.mode = mode
        if mode in self.mode_buttons:
            self.mode_buttons[mode].setChecked(True)
        self.form.set_mode(mode)
        inpaint = bool(self.mask_param) and (not self.mask_param.modes or mode in self.mask_param.modes)
        self.tabs.setTabVisible(self.mask_tab, inpaint)
        self.tabs.tabBar().setVisible(inpaint)  # one lone tab would just be noise
        if inpaint:
            self._init_image_changed()
            self.tabs.setCurrentWidget(self.mask_canvas)
        else:
            self.tabs.setCurrentWidget(self.image_view)

    def _mode_clicked(self, button) -> None:
        for mode, candidate in self.mode_buttons.items():
            if candidate is button:
                self.set_mode(mode)

    def _init_image_changed(self) -> None:
        if self.init_param is None or not self.form.has(self.init_param.name):
            return
        path = self.form.editor(self.init_param.name).value()
        if path != self._mask_source:
            self._mask_source = path
            self.mask_canvas.set_image(path if path and Path(path).is_file() else None)

    def _form_changed(self) -> None:
        if self.message.kind == "error":
            self.message.dismiss()

    # ------------------------------------------------------------------------------- generate
    def generate(self) -> Job | None:
        """Queue a job with the form's values.  Returns it, or None after showing why not."""
        if self.session.plugin is None:
            return None
        self.form.clear_error()
        values = self.form.values()
        if self.mask_param is not None and self.form.applies(self.mask_param):
            if self.mask_canvas.mask is None:
                self._show_param_error("Choose an init image, then paint the area to repaint on the mask.")
                return None
            if self.mask_canvas.is_empty():
                self.tabs.setCurrentWidget(self.mask_canvas)
                self._show_param_error("The mask is empty: paint the area to repaint first.")
                return None
            values[self.mask_param.name] = self.mask_canvas.save_mask()
        self.session.values.update(values)
        self.session.set_model(self.model_source())
        recent_before = list(self.context.settings.recent_models.get(self.session.plugin.id, []))
        try:
            job = self.session.generate()
        except ParamError as exc:
            self._show_param_error(exc)
            return None
        if self.context.settings.recent_models.get(self.session.plugin.id, []) != recent_before:
            try:
                self.context.settings.save()
            except OSError:
                pass
        self.last_job = job
        self.refresh_queue()
        return job

    def _show_param_error(self, error: ParamError | str) -> None:
        self.form.show_error(error)

    def interrupt(self) -> None:
        if self.active_job is not None:
            self.session.interrupt(self.active_job)
            self.progress.setFormat("Stopping… (keeping the partial result)")
            self.interrupt_button.setEnabled(False)

    def remove_queued(self, job: Job) -> None:
        self.session.remove_queued(job)
        self.refresh_queue()

    def refresh_queue(self) -> None:
        self.queue_view.set_jobs(self.context.engine.queued())
        self._update_buttons()

    def _update_buttons(self) -> None:
        busy = self.active_job is not None or bool(self.context.engine.queued())
        self.generate_button.setText("Add to queue" if busy else "Generate")

    # ------------------------------------------------------------------------------- engine events
    def _mine(self, job: Job) -> bool:
        plugin = self.session.plugin
        if job.id in self._upscale_jobs:  # the gallery's Upscale action: its result joins the gallery
            return True
        return plugin is not None and job.kind is Kind.IMAGE and job.spec.plugin_id == plugin.id

    def upscale_output(self, record: OutputRecord) -> Job | None:
        """Enlarge a gallery image 2x on the upscaler plugin (see studio.core.upscaling)."""
        from studio.core.upscaling import upscale_spec

        try:
            job = self.context.engine.submit(upscale_spec(self.context, record.path))
        except ParamError as exc:
            self._show_param_error(exc)
            return None
        self._upscale_jobs.add(job.id)
        return job

    def _on_state(self, job: Job, event: StateChanged) -> None:
        if not self._mine(job):
            return
        state = event.state
        if state is JobState.LOADING:
            self.active_job = job
            self._started_at = time.monotonic()
            self._run_seeds = []
            self.clock.reset()
            self.progress.setRange(0, 0)
            self.progress.setFormat("Loading model…")
            self.interrupt_button.setEnabled(True)
            self.tabs.setCurrentWidget(self.image_view)
        elif state is JobState.RUNNING:
            self.active_job = job
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat("Starting…")
        elif state.finished and job is self.active_job:
            self.active_job = None
            self.interrupt_button.setEnabled(False)
            elapsed = format_duration(time.monotonic() - self._started_at)
            self.progress.setRange(0, 1)
            self.progress.setValue(1 if state in (JobState.DONE, JobState.INTERRUPTED) else 0)
            self.progress.setFormat({
                JobState.DONE: f"Done in {elapsed}",
                JobState.INTERRUPTED: f"Interrupted after {elapsed} · partial result kept",
                JobState.CANCELLED: "Cancelled",
                JobState.FAILED: "Failed",
            }.get(state, state.value))
        self._update_buttons()

    def _on_progress(self, job: Job, event: Progress) -> None:
        if job is not self.active_job:
            return
        self.clock.update(event.step, event.total)
        if event.total > 0:
            self.progress.setRange(0, event.total)
            self.progress.setValue(min(event.step, event.total))
        text = self.clock.describe()
        self.progress.setFormat(f"{text} · {event.message}" if event.message else text)

    def _on_preview(self, job: Job, event: Preview) -> None:
        if job is not self.active_job or event.image is None:
            return
        self.image_view.set_image(pil_to_qimage(event.image), f"Preview · step {event.step}")

    def _on_log(self, job: Job, event: Log) -> None:
        if job is self.active_job and job.state is JobState.LOADING:
            self.progress.setFormat(event.message[:80])

    def _on_saved(self, job: Job, event: Saved) -> None:
        if not self._mine(job):
            return
        artifact = event.artifact
        record = OutputRecord(id=event.output_id, job_id=job.id, kind=artifact.kind.value, path=str(event.path),
                              seed=artifact.seed, parameters=dict(artifact.parameters), created=time.time())
        image = pil_to_qimage(artifact.image) if artifact.image is not None else QImage(str(event.path))
        self.gallery.add_record(record, image)
        self.gallery.setCurrentRow(0)
        self.image_view.set_image(image, self._caption(record, image))
        if artifact.seed is not None:
            self._run_seeds.append(artifact.seed)
            seed_editor = self._seed_editor()
            if seed_editor is not None:
                seed_editor.set_last_seed(artifact.seed)
        self._show_run_info(image)
        self.imageSaved.emit(job, event)

    def _on_failed(self, job: Job, event: Failed) -> None:
        if not self._mine(job):
            return
        prefix = {"load": "Could not load the model", "validate": "Invalid settings"}.get(event.stage,
                                                                                             "Generation failed")
        self.message.show_message(f"{prefix}: {event.message}", "error")

    def _seed_editor(self) -> SeedEditor | None:
        if self.seed_param is None or not self.form.has(self.seed_param.name):
            return None
        editor = self.form.editor(self.seed_param.name)
        return editor if isinstance(editor, SeedEditor) else None

    def _show_run_info(self, image: QImage) -> None:
        seeds = self._run_seeds
        parts = []
        if len(seeds) == 1:
            parts.append(f"Seed {seeds[0]}")
        elif seeds:
            parts.append(f"Seeds {seeds[0]}–{seeds[-1]}")
        if not image.isNull():
            parts.append(f"{image.width()}×{image.height()}")
        self.run_info.setText(" · ".join(parts))
        self.run_info.setVisible(bool(parts))

    @staticmethod
    def _caption(record: OutputRecord, image: QImage | None = None) -> str:
        parts = [Path(record.path).name]
        if record.seed is not None:
            parts.append(f"seed {record.seed}")
        if image is not None and not image.isNull():
            parts.append(f"{image.width()}×{image.height()}")
        return " · ".join(parts)

    def _apply_model_hints(self, job: Job, loaded: ModelLoaded) -> None:
        """Use the loaded model's ``choices`` (e.g. compatible schedulers) and its ``defaults``
        (e.g. native size) for fields the user left at the plugin default."""
        if not self._mine(job):
            return
        for name, choices in loaded.choices.items():
            self.form.set_choices(name, list(choices))
        self._apply_defaults(job.spec.model, loaded.defaults)

    def _apply_defaults(self, source: str, defaults: dict) -> None:
        if not defaults or self._defaults_applied_for == source or not hasattr(self, "form"):
            return  # (the model picker is built before the form; __init__ applies them once both exist)
        self._defaults_applied_for = source
        specs = {p.name: p for p in self.session.parameters()}
        current = self.form.values()
        untouched = {name: value for name, value in defaults.items()
                     if name in specs and self.form.has(name) and _same(current.get(name), specs[name].default)}
        if untouched:
            self.form.set_values(untouched)

    # ------------------------------------------------------------------------------- restore
    def restore_png(self, path: str) -> Restored | None:
        """Restore the form from a PNG's A1111 ``parameters``; shows what happened."""
        self.session.values.update(self.form.values())
        try:
            restored = self.session.restore_from_png(path)
        except ParamError as exc:
            self.message.show_message(str(exc), "warning")
            return None
        notes = self._apply_restored(restored)
        if restored.model:
            if not self._select_model_by_name(restored.model):
                notes.append(f"model “{restored.model}” (not among the known models; kept the current one)")
        self.image_view.set_path(path, Path(path).name)
        self._report_restore(Path(path).name, restored, notes)
        return restored

    def restore_output(self, record: OutputRecord) -> Restored:
        """Restore the form from a gallery item and show its image."""
        self.session.values.update(self.form.values())
        restored = self.session.restore_from_output(record)
        notes = self._apply_restored(restored)
        self.set_model_source(self.session.model)
        self.image_view.set_path(record.path, self._caption(record))
        self.tabs.setCurrentWidget(self.image_view)
        if notes or restored.ignored:
            self._report_restore(Path(record.path).name, restored, notes)
        else:
            self.message.dismiss()
        return restored

    def _apply_restored(self, restored: Restored) -> list[str]:
        if restored.mode and restored.mode != self.mode():
            self.set_mode(restored.mode)
        return self.form.set_values(restored.values)

    def _select_model_by_name(self, name: str) -> bool:
        for index in range(self.model_combo.count()):
            source = str(self.model_combo.itemData(index) or "")
            candidates = {self.model_combo.itemText(index), source, Path(source).name, Path(source).stem}
            if name in candidates:
                self.set_model_source(source)
                return True
        return False

    def _report_restore(self, what: str, restored: Restored, notes: list[str]) -> None:
        text = f"Restored {len(restored.values)} setting{'s' if len(restored.values) != 1 else ''} from {what}."
        skipped = list(restored.ignored) + notes
        if skipped:
            text += " Not applied: " + "; ".join(skipped) + "."
        self.message.show_message(text, "warning" if skipped else "success")

    def use_as_init(self, record: OutputRecord) -> None:
        if self.init_param is None:
            return
        modes = [m for m in self.session.modes() if m in (self.init_param.modes or self.session.modes())]
        if self.init_param.modes and self.mode() not in self.init_param.modes and modes:
            self.set_mode("img2img" if "img2img" in modes else modes[0])
        self.form.editor(self.init_param.name).set_value(record.path)
        self._init_image_changed()

    # ------------------------------------------------------------------------------- drag and drop
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() in (QEvent.Type.DragEnter, QEvent.Type.DragMove) and dropped_image_path(event):
            event.acceptProposedAction()
            return True
        if event.type() == QEvent.Type.Drop and dropped_image_path(event):
            target = self._image_field_at(watched)
            if target is not None:  # onto an image field or the mask: use the picture itself
                event.acceptProposedAction()
                target.set_value(dropped_image_path(event))
                return True
            self.dropEvent(event)
            return True
        return super().eventFilter(watched, event)

    def _image_field_at(self, widget: QObject):
        """The image path editor (or, for the mask canvas, the init image editor) ``widget`` is in."""
        init_editor = (self.form.editor(self.init_param.name)
                       if self.init_param is not None and self.form.has(self.init_param.name) else None)
        while widget is not None and widget is not self:
            if isinstance(widget, PathEditor) and widget.image:
                return widget
            if widget is self.mask_canvas:
                return init_editor
            widget = widget.parent()
        return None

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if dropped_image_path(event):
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        if dropped_image_path(event):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        path = dropped_image_path(event)
        if not path:
            return
        event.acceptProposedAction()
        self.restore_png(path)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return list(a) == list(b)
    return a == b
