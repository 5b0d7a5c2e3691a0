"""Play / pause, stop, loop, volume and the time for a :class:`~studio.core.playback.Player`,
plus a line that says when there is no sound (no PortAudio, no output device) and that
everything else still works.

The player runs its own callback stream; this widget only calls its commands and reads its
position when :meth:`Transport.tick` is called (the panel's 30 Hz timer).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from studio.core.playback import Player


def format_time(seconds: float) -> str:
    seconds = max(0.0, seconds)
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


def audio_status_text(status: str) -> str:
    if status in ("ready", "playing", "paused", "stopped"):
        return "Audio output: ready."
    return (f"Sound is unavailable: {status}. Generation, the views and export still work; "
            "export a WAV to listen elsewhere.")


class Transport(QWidget):
    def __init__(self, player: Player, parent: QWidget | None = None, volume: float = 0.8):
        super().__init__(parent)
        self.player = player
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.play_button = QPushButton("Play")
        self.stop_button = QPushButton("Stop")
        self.loop_box = QCheckBox("Loop")
        self.volume = QSlider(Qt.Orientation.Horizontal)
        self.volume.setRange(0, 100)
        self.volume.setValue(round(volume * 100))
        self.volume.setMaximumWidth(120)
        self.volume.setToolTip("Volume")
        self.time_label = QLabel("0:00.0 / 0:00.0")
        for widget in (self.play_button, self.stop_button, self.loop_box, QLabel("Volume"), self.volume,
                       self.time_label):
            row.addWidget(widget)
        row.addStretch(1)
        column.addLayout(row)
        self.audio_status = QLabel(audio_status_text(player.probe()))
        self.audio_status.setWordWrap(True)
        column.addWidget(self.audio_status)
        player.set_volume(volume)
        self.play_button.clicked.connect(self.toggle_play)
        self.stop_button.clicked.connect(self.stop)
        self.loop_box.toggled.connect(lambda on: setattr(self.player, "loop", on))
        self.volume.valueChanged.connect(lambda value: self.player.set_volume(value / 100))

    def toggle_play(self) -> None:
        if self.player.playing:
            self.player.pause()
        elif not self.player.play():
            self.audio_status.setText(audio_status_text(self.player.status))
        self.tick()

    def stop(self) -> None:
        self.player.stop()
        self.tick()

    def seek(self, seconds: float) -> None:
        self.player.seek(seconds)
        self.tick()

    def set_enabled(self, has_audio: bool) -> None:
        self.play_button.setEnabled(has_audio)
        self.stop_button.setEnabled(has_audio)

    def tick(self) -> float:
        """Show the position and the play state; returns the position in seconds."""
        position = self.player.position
        self.time_label.setText(f"{format_time(position)} / {format_time(self.player.duration)}")
        text = "Pause" if self.player.playing else "Play"
        if self.play_button.text() != text:
            self.play_button.setText(text)
        return position
