"""Waveform view: min/max envelope per pixel column, a playhead, click/drag to seek.

Audio can be appended while it streams in; the envelope is kept as per-block peaks so a
repaint never walks the raw samples.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

_BLOCK = 256  # samples per stored peak


class WaveformView(QWidget):
    seekRequested = Signal(float)  # seconds

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumHeight(90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self._peaks = np.zeros((0, 2), dtype=np.float32)  # (blocks, [min, max]) of the channel mix
        self._rest = np.zeros(0, dtype=np.float32)
        self.sample_rate = 32000
        self.frames = 0
        self.playhead = 0.0
        self.expected_seconds = 0.0  # while streaming: how long the clip will be
        self.setToolTip("Click or drag to seek")

    # -- data ---------------------------------------------------------------------------------
    def clear(self) -> None:
        self._peaks = np.zeros((0, 2), dtype=np.float32)
        self._rest = np.zeros(0, dtype=np.float32)
        self.frames = 0
        self.playhead = 0.0
        self.update()

    def set_audio(self, audio, sample_rate: int) -> None:
        self.clear()
        self.sample_rate = int(sample_rate)
        self.append(audio)

    def append(self, audio) -> None:
        data = np.asarray(audio, dtype=np.float32)
        mono = data.mean(axis=1) if data.ndim == 2 else data
        self.frames += len(mono)
        mono = np.concatenate([self._rest, mono])
        whole = len(mono) // _BLOCK * _BLOCK
        if whole:
            blocks = mono[:whole].reshape(-1, _BLOCK)
            peaks = np.stack([blocks.min(axis=1), blocks.max(axis=1)], axis=1)
            self._peaks = np.concatenate([self._peaks, peaks])
        self._rest = mono[whole:]
        self.update()

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0

    def set_playhead(self, seconds: float) -> None:
        if abs(seconds - self.playhead) > 1e-4:
            self.playhead = seconds
            self.update()

    def columns(self, width: int) -> np.ndarray:
        """(width, 2) min/max per pixel column (what gets painted)."""
        span = max(self.duration, self.expected_seconds, 1e-6)
        blocks_per_px = span * self.sample_rate / _BLOCK / max(1, width)
        out = np.zeros((width, 2), dtype=np.float32)
        if not len(self._peaks):
            return out
        edges = (np.arange(width + 1) * blocks_per_px).astype(np.int64)
        for x in range(width):
            a, b = edges[x], max(edges[x] + 1, edges[x + 1])
            if a >= len(self._peaks):
                break
            chunk = self._peaks[a:b]
            out[x] = chunk[:, 0].min(), chunk[:, 1].max()
        return out

    # -- painting and input -------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        rect = self.rect()
        painter.fillRect(rect, self.palette().base())
        mid = rect.height() / 2
        painter.setPen(QPen(QColor(120, 120, 120, 90), 1))
        painter.drawLine(QPointF(0, mid), QPointF(rect.width(), mid))
        painter.setPen(QPen(self.palette().highlight().color(), 1))
        for x, (low, high) in enumerate(self.columns(rect.width())):
            if low == high == 0:
                continue
            painter.drawLine(QPointF(x, mid - high * mid * 0.95), QPointF(x, mid - low * mid * 0.95))
        span = max(self.duration, self.expected_seconds)
        if span > 0:
            x = self.playhead / span * rect.width()
            painter.setPen(QPen(QColor(220, 50, 50), 2))
            painter.drawLine(QPointF(x, 0), QPointF(x, rect.height()))
        if not self.frames:
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(QRectF(rect), Qt.AlignmentFlag.AlignCenter, "No clip yet")
        painter.end()

    def _seek_to(self, x: float) -> None:
        span = max(self.duration, self.expected_seconds)
        if span > 0 and self.width() > 0:
            self.seekRequested.emit(min(max(x / self.width(), 0.0), 1.0) * span)

    def mousePressEvent(self, event) -> None:
        self._seek_to(event.position().x())

    def mouseMoveEvent(self, event) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._seek_to(event.position().x())
