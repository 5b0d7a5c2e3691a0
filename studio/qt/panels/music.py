"""The Music tab: layout and bindings over :class:`~studio.core.sessions.music.MusicSession`.

Generate with any music plugin, hear it while it is written, look at it (waveform, piano roll),
keep it (clip list) and export it (WAV, MIDI).  The session owns the generator, the values (a
prompt fills the controls it speaks about), the jobs, the player and the clip list; this file
lays widgets out, binds them to the session (the shared model picker, parameter form, run status
and message bar) and forwards clicks.  Engine events reach the session through the bridge (wired
by the main window).  Without PortAudio or an output device the transport says so and
everything else works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.audio_files import read_wav
from studio.core.playback import Player
from studio.core.sessions.music import Clip, MusicSession
from studio.plugin_api import ParamError, ParamType
from studio.qt.bridge import EngineBridge
from studio.qt.widgets.binding import connect_while_alive
from studio.qt.widgets.message_bar import MessageBar
from studio.qt.widgets.model_picker import ModelPicker
from studio.qt.widgets.param_form import ParamForm
from studio.qt.widgets.piano_roll import PianoRollView
from studio.qt.widgets.run_status import RunStatus
from studio.qt.widgets.transport import Transport
from studio.qt.widgets.waveform import WaveformView

MIDI_FILTER = "MIDI files (*.mid *.midi);;All files (*)"
WAV_FILTER = "WAV files (*.wav);;All files (*)"


class MusicPanel(QWidget):
    def __init__(self, context: Any, bridge: EngineBridge, parent: QWidget | None = None,
                 player: Player | None = None):
        super().__init__(parent)
        self.context = context
        self.bridge = bridge
        self.session = MusicSession(context, player=player)
        self.player = self.session.player
        self.form: ParamForm | None = None
        self._build()
        self._bind()
        self.timer = QTimer(self)
        self.timer.setInterval(33)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    # -- layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        left = QWidget()
        column = QVBoxLayout(left)
        top = QFormLayout()
        self.plugin_box = QComboBox()
        for plugin in self.session.plugins():
            self.plugin_box.addItem(plugin.label, plugin.id)
        top.addRow("Generator", self.plugin_box)
        self.model_picker = ModelPicker(left, placeholder="Model folder or hub id", folder_title="Model folder")
        top.addRow("Model", self.model_picker)
        column.addLayout(top)
        self.form_holder = QGroupBox("Settings")
        self.form_layout = QVBoxLayout(self.form_holder)
        column.addWidget(self.form_holder)
        self.understood = QLabel("")
        self.understood.setWordWrap(True)
        self.understood.setObjectName("hint")
        column.addWidget(self.understood)
        self.message = MessageBar(left)
        column.addWidget(self.message)
        buttons = QHBoxLayout()
        self.generate_button = QPushButton("Generate")
        self.generate_button.setDefault(True)
        buttons.addWidget(self.generate_button, 1)
        column.addLayout(buttons)
        self.run_status = RunStatus(left, interrupt=False, cancel=True, buttons_beside=buttons)
        self.cancel_button = self.run_status.cancel_button
        column.addWidget(self.run_status)
        column.addStretch(1)

        right = QWidget()
        view_column = QVBoxLayout(right)
        self.views = QTabWidget()
        self.waveform = WaveformView()
        self.piano_roll = PianoRollView()
        self.views.addTab(self.waveform, "Waveform")
        self.views.addTab(self.piano_roll, "Piano roll")
        view_column.addWidget(self.views, 3)
        self.transport = Transport(self.player)
        view_column.addWidget(self.transport)
        clips = QGroupBox("Clips")
        clip_column = QVBoxLayout(clips)
        self.history = QListWidget()
        clip_column.addWidget(self.history)
        export_row = QHBoxLayout()
        self.export_wav_button = QPushButton("Export WAV…")
        self.export_midi_button = QPushButton("Export MIDI…")
        self.restore_button = QPushButton("Use settings")
        self.restore_button.setToolTip("Put this clip's prompt, seed and settings back into the form")
        for widget in (self.export_wav_button, self.export_midi_button, self.restore_button):
            export_row.addWidget(widget)
        clip_column.addLayout(export_row)
        view_column.addWidget(clips, 2)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 2)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.addWidget(splitter)

    # Names the tests and older callers use.
    @property
    def audio_status(self) -> QLabel:
        return self.transport.audio_status

    @property
    def loop_box(self) -> Any:
        return self.transport.loop_box

    def toggle_play(self) -> None:
        self.transport.toggle_play()

    # -- bindings ---------------------------------------------------------------------------
    def _bind(self) -> None:
        session = self.session
        self.model_picker.bind(session)
        self.message.bind(session)
        self.run_status.bind(session)
        connect_while_alive(self, session.changed, self._session_changed)
        connect_while_alive(self, session.results_changed, self.refresh_history)
        self.plugin_box.currentIndexChanged.connect(self._plugin_chosen)
        self.generate_button.clicked.connect(self.generate)
        self.waveform.seekRequested.connect(self.transport.seek)
        self.piano_roll.seekRequested.connect(self.transport.seek)
        self.history.currentItemChanged.connect(self._clip_selected)
        self.export_wav_button.clicked.connect(lambda: self.export_wav())
        self.export_midi_button.clicked.connect(lambda: self.export_midi())
        self.restore_button.clicked.connect(self.restore_selected)
        self._show_plugin()
        self.refresh_history()
        if session.plugin is None:
            self.generate_button.setEnabled(False)
            self.message.show_message("No music plugin is available; see the Plugins list for why.", "error")

    def _session_changed(self, what: str) -> None:
        if what == "plugin":
            self._show_plugin()
        elif what == "understood":
            self._show_understood()
        elif what == "preview":
            self._draw_new_audio()
        elif what == "clip":
            self._show_clip()
        if what in ("job", "clip"):
            self._update_buttons()

    def _show_plugin(self) -> None:
        """The form of the chosen generator, built from its parameters and bound to the session."""
        plugin = self.session.plugin
        index = self.plugin_box.findData(plugin.id if plugin else None)
        if index >= 0 and index != self.plugin_box.currentIndex():
            self.plugin_box.blockSignals(True)
            self.plugin_box.setCurrentIndex(index)
            self.plugin_box.blockSignals(False)
        if self.form is not None:
            self.form_layout.removeWidget(self.form)
            self.form.deleteLater()
        clip_filter = MIDI_FILTER if self.session.symbolic else WAV_FILTER
        params = self.session.parameters()
        self.form = ParamForm(params, self.form_holder, message_bar=self.message,
                              file_filters={p.name: clip_filter for p in params if p.type is ParamType.FILE_PATH})
        self.form_layout.addWidget(self.form)
        self.form.bind(self.session)
        self._show_understood()
        self._update_buttons()

    @property
    def prompt(self) -> Any:
        """The prompt's editor (part of the form)."""
        return self.form.editor("prompt") if self.form is not None and self.form.has("prompt") else None

    def _show_understood(self) -> None:
        summary = self.session.understood.summary
        self.understood.setText(f"Understood: {summary}" if summary else "")

    def _plugin_chosen(self, index: int) -> None:
        plugin_id = self.plugin_box.itemData(index)
        if plugin_id:
            try:
                self.session.set_plugin(plugin_id)
            except ParamError as exc:
                self.message.show_message(str(exc), "error")

    # -- generating ------------------------------------------------------------------------
    def generate(self) -> None:
        try:
            self.session.generate()
        except ParamError as exc:
            if self.form is not None:
                self.form.show_error(exc)
            return
        self.message.dismiss()
        self.waveform.clear()
        self.piano_roll.clear()
        seconds = self.session.values.get("seconds")
        self.waveform.expected_seconds = float(seconds) if seconds else 0.0
        self._update_buttons()

    def cancel(self) -> None:
        self.session.cancel()

    def _draw_new_audio(self) -> None:
        for audio, rate in self.session.take_new_audio():
            if self.waveform.frames == 0:
                expected = self.waveform.expected_seconds
                self.waveform.set_audio(audio, rate)
                self.waveform.expected_seconds = expected
            else:
                self.waveform.append(audio)

    def _show_clip(self) -> None:
        """The session's current clip (just saved, or opened from the list) in the views."""
        clip = self.session.current
        if clip is None:  # a new clip has begun streaming
            self.piano_roll.clear()
            return
        self._draw_new_audio()
        self.waveform.expected_seconds = 0.0
        if self.waveform.frames != round(self.player.duration * self.player.sample_rate):
            audio, rate = read_wav(str(clip.path))
            self.waveform.set_audio(audio, rate)
        self.piano_roll.set_notes(self.session.notes, self.player.duration)

    # -- clips -----------------------------------------------------------------------------
    def refresh_history(self) -> None:
        current = self.session.current
        self.history.blockSignals(True)
        self.history.clear()
        for clip in self.session.clips():
            item = QListWidgetItem(clip.title + ("  ♪ MIDI" if clip.symbolic else ""))
            item.setData(Qt.ItemDataRole.UserRole, clip)
            item.setToolTip(str(clip.path))
            self.history.addItem(item)
            if current is not None and clip.path == current.path:
                self.history.setCurrentItem(item)
        self.history.blockSignals(False)
        self._update_buttons()

    def selected_clip(self) -> Clip | None:
        item = self.history.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else self.session.current

    def _clip_selected(self, current: QListWidgetItem | None, previous: QListWidgetItem | None = None) -> None:
        if current is None:
            return
        clip = current.data(Qt.ItemDataRole.UserRole)
        if self.session.current is not None and clip.path == self.session.current.path:
            return
        try:
            self.session.open_clip(clip)
        except (OSError, ValueError) as exc:
            self.message.show_message(f"Cannot open {clip.path.name}: {exc}", "error")

    def restore_selected(self) -> None:
        clip = self.selected_clip()
        if clip is not None:
            self.session.restore(clip)
            self.message.show_message("Settings restored from the clip.", "info")

    def export_wav(self, target: str | None = None) -> Path | None:
        clip = self.selected_clip()
        if clip is None:
            return None
        if target is None:
            target, _ = QFileDialog.getSaveFileName(self, "Export WAV", clip.path.name, WAV_FILTER)
            if not target:
                return None
        path = self.session.export_wav(clip, target)
        self.message.show_message(f"Exported {path}", "info")
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
            self.message.show_message(str(exc), "warning")
            return None
        self.message.show_message(f"Exported {path}", "info")
        return path

    # -- the 30 Hz tick and buttons ----------------------------------------------------------
    def _tick(self) -> None:
        position = self.transport.tick()
        self.waveform.set_playhead(position)
        self.piano_roll.set_playhead(position)

    def _update_buttons(self) -> None:
        self.generate_button.setEnabled(self.session.plugin is not None)
        clip = self.selected_clip()
        self.export_wav_button.setEnabled(clip is not None)
        self.export_midi_button.setEnabled(clip is not None and clip.symbolic)
        self.restore_button.setEnabled(clip is not None)
        self.transport.set_enabled(self.player.duration > 0 or self.session.streaming)

    def shutdown(self) -> None:
        """Stop the playhead timer and the player."""
        self.timer.stop()
        self.session.close()

    def closeEvent(self, event: Any) -> None:
        self.shutdown()
        super().closeEvent(event)
