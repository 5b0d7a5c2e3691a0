"""Piano roll for symbolic clips: one coloured bar per note (a colour per voice), a playhead."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

VOICE_COLOURS = (QColor(214, 69, 65), QColor(235, 149, 50), QColor(63, 166, 96), QColor(52, 120, 204))


class PianoRollView(QWidget):
    seekRequested = Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumHeight(140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.notes: list = []  # objects with start, duration (seconds), pitch, voice
        self.playhead = 0.0
        self.span = 0.0

    def set_notes(self, notes, span: float | None = None) -> None:
        self.notes = list(notes)
        end = max((n.start + n.duration for n in self.notes), default=0.0)
        self.span = max(end, span or 0.0)
        self.update()

    def clear(self) -> None:
        self.set_notes([])

    def set_playhead(self, seconds: float) -> None:
        if abs(seconds - self.playhead) > 1e-4:
            self.playhead = seconds
            self.update()

    def pitch_range(self) -> tuple[int, int]:
        if not self.notes:
            return 48, 84
        low = min(n.pitch for n in self.notes) - 2
        high = max(n.pitch for n in self.notes) + 2
        return low, max(high, low + 12)

    def note_rect(self, note) -> QRectF:
        low, high = self.pitch_range()
        rows = high - low + 1
        h = self.height() / rows
        x = note.start / self.span * self.width() if self.span else 0.0
        w = max(1.0, note.duration / self.span * self.width()) if self.span else 1.0
        y = (high - note.pitch) * h
        return QRectF(x, y, w, max(1.0, h - 1))

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().base())
        low, high = self.pitch_range()
        rows = high - low + 1
        h = self.height() / rows
        for pitch in range(low, high + 1):  # black-key rows shaded, C rows marked
            if pitch % 12 in (1, 3, 6, 8, 10):
                painter.fillRect(QRectF(0, (high - pitch) * h, self.width(), h), QColor(128, 128, 128, 25))
            if pitch % 12 == 0:
                painter.setPen(QPen(QColor(128, 128, 128, 80), 1))
                painter.drawLine(QPointF(0, (high - pitch + 1) * h), QPointF(self.width(), (high - pitch + 1) * h))
        for note in self.notes:
            colour = VOICE_COLOURS[note.voice % len(VOICE_COLOURS)]
            painter.fillRect(self.note_rect(note), colour)
        if self.span > 0:
            x = self.playhead / self.span * self.width()
            painter.setPen(QPen(QColor(220, 50, 50), 2))
            painter.drawLine(QPointF(x, 0), QPointF(x, self.height()))
        if not self.notes:
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(QRectF(self.rect()), Qt.AlignmentFlag.AlignCenter, "No notes (audio-only clip)")
        painter.end()

    def mousePressEvent(self, event) -> None:
        if self.span > 0 and self.width() > 0:
            self.seekRequested.emit(min(max(event.position().x() / self.width(), 0.0), 1.0) * self.span)
