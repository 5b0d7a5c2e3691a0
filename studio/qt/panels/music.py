"""The Music tab: generate with the chorale model or MusicGen, hear it while it is being
written, look at it (waveform, piano roll), keep it (history) and export it (WAV, MIDI).

All state lives in :class:`~studio.core.sessions.music.MusicSession`; this widget shows it and
forwards clicks.  Engine events arrive on the GUI thread through
:class:`~studio.qt.bridge.EngineBridge`.  Sound goes out through the session's
:class:`~studio.core.playback.Player` (a callback stream; the UI only reads its position on a
timer).  Without PortAudio or an output device the panel says so and everything else works.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.jobs import Failed, JobState, Saved, StateChanged
from studio.core.playback import Player
from studio.core.sessions.music import PROMPT_FIELDS, Clip, MusicSession
from studio.plugin_api import Log, Param, ParamError, ParamType, Preview, Progress
from studio.qt.widgets.piano_roll import PianoRollView
from studio.qt.widgets.waveform import WaveformView

MIDI_FILTER = "MIDI files (*.mid *.midi);;All files (*)"
WAV_FILTER = "WAV files (*.wav);;All files (*)"


def _format_time(seconds: float) -> str:
    seconds = max(0.0, seconds)
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


class _Field:
    """One editor for one Param: ``widget``, ``value()``, ``set_value(v)``."""

    def __init__(self, param: Param, on_change):
        self.param = param
        t = param.type
        if t is ParamType.CHOICE:
            w = QComboBox()
            w.addItems(list(param.choices))
            w.currentTextChanged.connect(lambda _=None: on_change(param.name))
            self.value = lambda: w.currentText()
            self.set_value = lambda v: w.setCurrentText(str(v)) if v is not None else None
        elif t is ParamType.FLOAT:
            w = QDoubleSpinBox()
            low = param.minimum if param.minimum is not None else -1e9
            high = param.maximum if param.maximum is not None else 1e9
            w.setDecimals(2)
            w.setSingleStep(param.step or (1.0 if high - low > 20 else 0.05))
            if param.optional:  # the lowest value reads "auto" and means None
                w.setRange(low - (param.step or 1.0), high)
                w.setSpecialValueText("auto")
            else:
                w.setRange(low, high)
            w.valueChanged.connect(lambda _=None: on_change(param.name))

            def value(w=w, param=param):
                if param.optional and w.value() == w.minimum():
                    return None
                return float(w.value())

            def set_value(v, w=w):
                w.setValue(w.minimum() if v is None else float(v))

            self.value, self.set_value = value, set_value
        elif t is ParamType.INT:
            w = QSpinBox()
            w.setRange(int(param.minimum if param.minimum is not None else -2**31 + 1),
                       int(param.maximum if param.maximum is not None else 2**31 - 1))
            w.valueChanged.connect(lambda _=None: on_change(param.name))
            self.value = lambda: int(w.value())
            self.set_value = lambda v: w.setValue(int(v)) if v is not None else None
        elif t is ParamType.SEED:
            w = QLineEdit()
            w.setPlaceholderText("random")
            w.textChanged.connect(lambda _=None: on_change(param.name))
            self.value = lambda: (w.text().strip() or None)
            self.set_value = lambda v: w.setText("" if v in (None, -1) else str(v))
        elif t is ParamType.FILE_PATH:
            w = QWidget()
            row = QHBoxLayout(w)
            row.setContentsMargins(0, 0, 0, 0)
            edit = QLineEdit()
            edit.setPlaceholderText("none")
            browse = QToolButton()
            browse.setText("…")
            row.addWidget(edit, 1)
            row.addWidget(browse)
            edit.textChanged.connect(lambda _=None: on_change(param.name))

            def pick():
                wanted = MIDI_FILTER if "midi" in (param.label + param.help).lower() else WAV_FILTER
                path, _ = QFileDialog.getOpenFileName(w, param.label, "", wanted)
                if path:
                    edit.setText(path)

            browse.clicked.connect(pick)
            self.edit = edit
            self.value = lambda: (edit.text().strip() or None)
            self.set_value = lambda v: edit.setText("" if v is None else str(v))
        elif t is ParamType.BOOL:
            w = QCheckBox()
            w.toggled.connect(lambda _=None: on_change(param.name))
            self.value = lambda: w.isChecked()
            self.set_value = lambda v: w.setChecked(bool(v))
        else:
            w = QLineEdit()
            w.textChanged.connect(lambda _=None: on_change(param.name))
            self.value = lambda: w.text()
            self.set_value = lambda v: w.setText("" if v is None else str(v))
        w.setToolTip(param.help)
        self.widget = w


class MusicPanel(QWidget):
    def __init__(self, context, bridge, parent: QWidget | None = None, player: Player | None = None):
        super().__init__(parent)
        self.context = context
        self.bridge = bridge
        self.session = MusicSession(context, player=player)
        self.player = self.session.player
        self.fields: dict[str, _Field] = {}
        self._filling = False
        self._build()
        self._fill_plugins()
        self.refresh_history()
        self.audio_status.setText(self._audio_status_text(self.player.probe()))
        bridge.event.connect(self._on_event)
        self.timer = QTimer(self)
        self.timer.setInterval(33)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    # -- layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        left = QWidget()
        form_box = QVBoxLayout(left)
        top = QFormLayout()
        self.plugin_box = QComboBox()
        self.plugin_box.currentIndexChanged.connect(self._plugin_changed)
        top.addRow("Generator", self.plugin_box)
        model_row = QHBoxLayout()
        self.model_box = QComboBox()
        self.model_box.setEditable(True)
        self.model_box.currentTextChanged.connect(self._model_changed)
        browse = QToolButton()
        browse.setText("…")
        browse.setToolTip("Choose a model folder")
        browse.clicked.connect(self._browse_model)
        model_row.addWidget(self.model_box, 1)
        model_row.addWidget(browse)
        top.addRow("Model", model_row)
        form_box.addLayout(top)
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText("e.g. a slow chorale in D minor, organ")
        self.prompt.setMaximumHeight(70)
        self.prompt.textChanged.connect(self._prompt_changed)
        form_box.addWidget(QLabel("Prompt"))
        form_box.addWidget(self.prompt)
        self.understood = QLabel("")
        self.understood.setWordWrap(True)
        form_box.addWidget(self.understood)
        self.form_holder = QGroupBox("Settings")
        self.form = QFormLayout(self.form_holder)
        form_box.addWidget(self.form_holder)
        buttons = QHBoxLayout()
        self.generate_button = QPushButton("Generate")
        self.generate_button.setDefault(True)
        self.generate_button.clicked.connect(self.generate)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        buttons.addWidget(self.generate_button)
        buttons.addWidget(self.cancel_button)
        form_box.addLayout(buttons)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        form_box.addWidget(self.progress)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        form_box.addWidget(self.message)
        form_box.addStretch(1)

        right = QWidget()
        view_box = QVBoxLayout(right)
        self.views = QTabWidget()
        self.waveform = WaveformView()
        self.piano_roll = PianoRollView()
        self.views.addTab(self.waveform, "Waveform")
        self.views.addTab(self.piano_roll, "Piano roll")
        self.waveform.seekRequested.connect(self.seek)
        self.piano_roll.seekRequested.connect(self.seek)
        view_box.addWidget(self.views, 3)
        transport = QHBoxLayout()
        self.play_button = QPushButton("Play")
        self.play_button.clicked.connect(self.toggle_play)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        self.loop_box = QCheckBox("Loop")
        self.loop_box.toggled.connect(lambda on: setattr(self.player, "loop", on))
        self.volume = QSlider(Qt.Orientation.Horizontal)
        self.volume.setRange(0, 100)
        self.volume.setValue(80)
        self.volume.setMaximumWidth(120)
        self.volume.setToolTip("Volume")
        self.volume.valueChanged.connect(lambda v: self.player.set_volume(v / 100))
        self.player.set_volume(0.8)
        self.time_label = QLabel("0:00.0 / 0:00.0")
        for widget in (self.play_button, self.stop_button, self.loop_box, QLabel("Volume"), self.volume,
                       self.time_label):
            transport.addWidget(widget)
        transport.addStretch(1)
        view_box.addLayout(transport)
        self.audio_status = QLabel("")
        self.audio_status.setWordWrap(True)
        view_box.addWidget(self.audio_status)
        history_box = QGroupBox("Clips")
        history_layout = QVBoxLayout(history_box)
        self.history = QListWidget()
        self.history.currentItemChanged.connect(self._clip_selected)
        history_layout.addWidget(self.history)
        export_row = QHBoxLayout()
        self.export_wav_button = QPushButton("Export WAV…")
        self.export_wav_button.clicked.connect(lambda: self.export_wav())
        self.export_midi_button = QPushButton("Export MIDI…")
        self.export_midi_button.clicked.connect(lambda: self.export_midi())
        self.restore_button = QPushButton("Use settings")
        self.restore_button.setToolTip("Put this clip's prompt, seed and settings back into the form")
        self.restore_button.clicked.connect(self.restore_selected)
        for widget in (self.export_wav_button, self.export_midi_button, self.restore_button):
            export_row.addWidget(widget)
        history_layout.addLayout(export_row)
        view_box.addWidget(history_box, 2)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 2)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.addWidget(splitter)
        self._update_buttons()

    @staticmethod
    def _audio_status_text(status: str) -> str:
        if status in ("ready", "playing", "paused", "stopped"):
            return "Audio output: ready."
        return (f"Sound is unavailable: {status}. Generation, the views and export still work; "
                "export a WAV to listen elsewhere.")

    # -- plugins, models, form ------------------------------------------------------------
    def _fill_plugins(self) -> None:
        self.plugin_box.blockSignals(True)
        self.plugin_box.clear()
        for plugin in self.session.plugins():
            self.plugin_box.addItem(plugin.label, plugin.id)
        self.plugin_box.blockSignals(False)
        if self.session.plugin is not None:
            self.plugin_box.setCurrentIndex(max(0, self.plugin_box.findData(self.session.plugin.id)))
            self._rebuild_form()
        else:
            self.generate_button.setEnabled(False)
            self.message.setText("No music plugin is available; see the Plugins list for why.")

    def _plugin_changed(self, index: int) -> None:
        plugin_id = self.plugin_box.itemData(index)
        if plugin_id and (self.session.plugin is None or plugin_id != self.session.plugin.id):
            prompt = self.prompt.toPlainText()
            self.session.set_plugin(plugin_id)
            self._rebuild_form()
            if prompt:
                self.session.set_prompt(prompt)
                self._show_values()

    def _rebuild_form(self) -> None:
        self._filling = True
        while self.form.rowCount():
            self.form.removeRow(0)
        self.fields = {}
        for param in self.session.parameters():
            if param.name == "prompt":
                continue
            field = _Field(param, self._field_changed)
            self.fields[param.name] = field
            label = param.label + (" (advanced)" if param.advanced else "")
            self.form.addRow(label, field.widget)
        self.model_box.blockSignals(True)
        self.model_box.clear()
        for choice in self.session.models():
            self.model_box.addItem(choice.label, choice.source)
            self.model_box.setItemData(self.model_box.count() - 1, choice.description or choice.source,
                                       Qt.ItemDataRole.ToolTipRole)
        self.model_box.setCurrentIndex(0)
        self.model_box.blockSignals(False)
        self._filling = False
        self._show_values()

    def _show_values(self) -> None:
        self._filling = True
        for name, field in self.fields.items():
            field.set_value(self.session.values.get(name))
        if self.prompt.toPlainText() != (self.session.values.get("prompt") or ""):
            self.prompt.setPlainText(self.session.values.get("prompt") or "")
        self._filling = False
        self._show_understood()

    def _show_understood(self) -> None:
        understood = self.session.understood
        self.understood.setText(f"Understood: {understood.summary}" if understood.summary else "")

    def _field_changed(self, name: str) -> None:
        if not self._filling:
            self.session.set_value(name, self.fields[name].value())

    def _prompt_changed(self) -> None:
        if self._filling:
            return
        self.session.set_prompt(self.prompt.toPlainText())
        self._filling = True
        for name in PROMPT_FIELDS:
            if name in self.fields:
                self.fields[name].set_value(self.session.values.get(name))
        self._filling = False
        self._show_understood()

    def _model_changed(self, text: str) -> None:
        index = self.model_box.currentIndex()
        data = self.model_box.itemData(index) if index >= 0 and self.model_box.itemText(index) == text else None
        self.session.set_model(data or text)

    def _browse_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Model folder")
        if folder:
            self.model_box.setEditText(folder)
            self.session.set_model(folder)

    # -- generating ------------------------------------------------------------------------
    def generate(self) -> None:
        for name, field in self.fields.items():
            self.session.set_value(name, field.value())
        self.session.values["prompt"] = self.prompt.toPlainText()
        try:
            self.session.generate()
        except ParamError as exc:
            self.message.setText(str(exc))
            return
        self.message.setText("Queued…")
        self.progress.setRange(0, 0)
        self.waveform.clear()
        self.piano_roll.clear()
        seconds = self.session.values.get("seconds")
        self.waveform.expected_seconds = float(seconds) if seconds else 0.0
        self._update_buttons()

    def cancel(self) -> None:
        self.session.cancel()

    def _on_event(self, job, event) -> None:
        if job is not self.session.job:
            return
        clip = self.session.handle(job, event)
        if isinstance(event, Preview):
            self._draw_new_audio()
        elif isinstance(event, Progress):
            self.progress.setRange(0, max(1, event.total))
            self.progress.setValue(event.step)
            self.progress.setFormat(event.message or "%p%")
        elif isinstance(event, Log):
            self.message.setText(event.message)
        elif isinstance(event, Failed):
            self.message.setText(event.message)
        elif isinstance(event, StateChanged):
            if event.state is JobState.LOADING:
                self.message.setText(event.message or "Loading…")
            elif event.state is JobState.CANCELLED:
                self.message.setText("Cancelled.")
            elif event.state is JobState.INTERRUPTED:
                self.message.setText("Stopped early; the partial clip was kept.")
            if event.state.finished:
                self.progress.setRange(0, 1)
                self.progress.setValue(1 if event.state is JobState.DONE else 0)
                self.progress.setFormat({JobState.DONE: "Done", JobState.CANCELLED: "Cancelled",
                                         JobState.FAILED: "Failed"}.get(event.state, ""))
            self._update_buttons()
        if isinstance(event, Saved) and clip is not None:
            self._draw_new_audio()
            self.waveform.expected_seconds = 0.0
            if self.waveform.frames != len(event.artifact.audio):
                self.waveform.set_audio(event.artifact.audio, event.artifact.sample_rate)
            self.message.setText(f"Saved {event.path.name}")
            self.piano_roll.set_notes(self.session.notes, self.player.duration)
            if self.session.notes:
                self.views.setCurrentWidget(self.piano_roll) if self.views.currentWidget() is None else None
            self.refresh_history(select=clip)
        self._update_buttons()

    # -- history ---------------------------------------------------------------------------
    def refresh_history(self, select: Clip | None = None) -> None:
        self.history.blockSignals(True)
        self.history.clear()
        for clip in self.session.clips():
            item = QListWidgetItem(clip.title + ("  ♪ MIDI" if clip.symbolic else ""))
            item.setData(Qt.ItemDataRole.UserRole, clip)
            item.setToolTip(str(clip.path))
            self.history.addItem(item)
            if select is not None and clip.path == select.path:
                self.history.setCurrentItem(item)
        self.history.blockSignals(False)
        self._update_buttons()

    def selected_clip(self) -> Clip | None:
        item = self.history.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else self.session.current

    def _clip_selected(self, current, previous=None) -> None:
        if current is None:
            return
        clip = current.data(Qt.ItemDataRole.UserRole)
        if self.session.current is not None and clip.path == self.session.current.path:
            return
        try:
            self.session.open_clip(clip)
        except (OSError, ValueError) as exc:
            self.message.setText(f"Cannot open {clip.path.name}: {exc}")
            return
        from studio.core.audio_files import read_wav

        audio, rate = read_wav(str(clip.path))
        self.waveform.set_audio(audio, rate)
        self.piano_roll.set_notes(self.session.notes, self.player.duration)
        self._update_buttons()

    def restore_selected(self) -> None:
        clip = self.selected_clip()
        if clip is None:
            return
        previous = self.session.plugin.id if self.session.plugin else None
        self.session.restore(clip)
        if self.session.plugin and self.session.plugin.id != previous:
            self.plugin_box.blockSignals(True)
            self.plugin_box.setCurrentIndex(self.plugin_box.findData(self.session.plugin.id))
            self.plugin_box.blockSignals(False)
            values = dict(self.session.values)
            self._rebuild_form()
            self.session.values.update(values)
        self._show_values()
        self.message.setText("Settings restored from the clip.")

    def export_wav(self, target: str | None = None) -> Path | None:
        clip = self.selected_clip()
        if clip is None:
            return None
        if target is None:
            target, _ = QFileDialog.getSaveFileName(self, "Export WAV", clip.path.name, WAV_FILTER)
            if not target:
                return None
        path = self.session.export_wav(clip, target)
        self.message.setText(f"Exported {path}")
        return path

    def export_midi(self, target: str | None = None) -> Path | None:
        clip = self.selected_clip()
        if clip is None:
            return None
        if target is None:
            target, _ = QFileDialog.getSaveFileName(self, "Export MIDI", clip.path.with_suffix(".mid").name,
                                                    MIDI_FILTER)
            if not target:
                return None
        try:
            path = self.session.export_midi(clip, target)
        except ParamError as exc:
            self.message.setText(str(exc))
            return None
        self.message.setText(f"Exported {path}")
        return path

    # -- transport -------------------------------------------------------------------------
    def toggle_play(self) -> None:
        if self.player.playing:
            self.player.pause()
        elif not self.player.play():
            self.audio_status.setText(self._audio_status_text(self.player.status))
        self._update_buttons()

    def stop(self) -> None:
        self.player.stop()
        self._update_buttons()

    def seek(self, seconds: float) -> None:
        self.player.seek(seconds)
        self._tick()

    def _draw_new_audio(self) -> None:
        for audio, rate in self.session.take_new_audio():
            if self.waveform.frames == 0:
                expected = self.waveform.expected_seconds
                self.waveform.set_audio(audio, rate)
                self.waveform.expected_seconds = expected
            else:
                self.waveform.append(audio)

    def _tick(self) -> None:
        self._draw_new_audio()
        position = self.player.position
        self.waveform.set_playhead(position)
        self.piano_roll.set_playhead(position)
        self.time_label.setText(f"{_format_time(position)} / {_format_time(self.player.duration)}")
        playing_text = "Pause" if self.player.playing else "Play"
        if self.play_button.text() != playing_text:
            self.play_button.setText(playing_text)

    def _update_buttons(self) -> None:
        job = self.session.job
        running = job is not None and not job.state.finished
        self.cancel_button.setEnabled(running)
        self.generate_button.setEnabled(self.session.plugin is not None)
        clip = self.selected_clip()
        self.export_wav_button.setEnabled(clip is not None)
        self.export_midi_button.setEnabled(clip is not None and clip.symbolic)
        self.restore_button.setEnabled(clip is not None)
        has_audio = self.player.duration > 0 or self.session.streaming
        self.play_button.setEnabled(has_audio)
        self.stop_button.setEnabled(has_audio)

    def shutdown(self) -> None:
        """Stop the playhead timer, the player and the session's engine subscription."""
        self.timer.stop()
        self.session.close()

    def closeEvent(self, event) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(event)
