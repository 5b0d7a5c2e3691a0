"""Paint an inpainting mask over the init image.

White in the mask = repaint, black = keep.  The mask has the init image's resolution; the
view shows it as a translucent red wash over the image.  Left button paints, right button
(or the Erase toggle) erases; the brush size is in image pixels.  ``save_mask`` writes a
PNG into a temp folder and returns its path, which the panel passes as ``mask_image``.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QSlider, QVBoxLayout, QWidget

from studio.core.settings import studio_home

_OVERLAY = QColor(235, 64, 64)


def mask_folder() -> Path:
    return studio_home() / "tmp" / "masks"


def prune_masks(max_age_days: float = 7.0) -> None:
    """Drop temp masks older than ``max_age_days`` (queued jobs use the recent ones)."""
    folder = mask_folder()
    if not folder.is_dir():
        return
    limit = time.time() - max_age_days * 86400
    for path in folder.glob("mask-*.png"):
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
        except OSError:
            pass


class _Surface(QWidget):
    painted = Signal()

    def __init__(self, owner: MaskCanvas):
        super().__init__(owner)
        self.owner = owner
        self.setMouseTracking(True)
        self.setMinimumSize(160, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setAcceptDrops(True)  # the panel turns a dropped picture into the init image
        self._hover: QPointF | None = None
        self._last: QPointF | None = None
        self._erasing = False

    def sizeHint(self) -> QSize:
        return QSize(480, 480)

    # geometry: where the image sits in the widget
    def image_rect(self) -> QRectF:
        image = self.owner.image
        if image is None or image.isNull():
            return QRectF()
        size = QSize(image.width(), image.height()).scaled(self.size() - QSize(8, 8),
                                                           Qt.AspectRatioMode.KeepAspectRatio)
        rect = QRectF(0, 0, size.width(), size.height())
        rect.moveCenter(QRectF(self.rect()).center())
        return rect

    def to_image(self, pos: QPointF) -> QPointF:
        rect = self.image_rect()
        scale = self.owner.image.width() / rect.width()
        return QPointF((pos.x() - rect.left()) * scale, (pos.y() - rect.top()) * scale)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#15171c"))
        rect = self.image_rect()
        if rect.isEmpty():
            p.setPen(QColor("#6b7280"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                       "Choose an init image,\nthen paint here what should be repainted.")
            return
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.drawImage(rect, self.owner.image)
        p.setOpacity(0.55)
        p.drawImage(rect, self.owner.overlay())
        p.setOpacity(1.0)
        if self._hover is not None and rect.contains(self._hover):
            radius = self.owner.brush_size / 2 * rect.width() / self.owner.image.width()
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            p.setPen(QPen(QColor(255, 255, 255, 200), 1.2))
            p.drawEllipse(self._hover, radius, radius)
            p.setPen(QPen(QColor(0, 0, 0, 160), 1.0))
            p.drawEllipse(self._hover, radius + 1.2, radius + 1.2)

    def mousePressEvent(self, event) -> None:
        if self.image_rect().isEmpty():
            return
        self._erasing = event.button() == Qt.MouseButton.RightButton or self.owner.erase_mode
        self._last = self.to_image(event.position())
        self.owner.stroke(self._last, self._last, self._erasing)

    def mouseMoveEvent(self, event) -> None:
        self._hover = event.position()
        if self._last is not None and event.buttons() & (Qt.MouseButton.LeftButton | Qt.MouseButton.RightButton):
            point = self.to_image(event.position())
            self.owner.stroke(self._last, point, self._erasing)
            self._last = point
        self.update()

    def mouseReleaseEvent(self, event) -> None:
        if self._last is not None:
            self._last = None
            self.painted.emit()

    def leaveEvent(self, event) -> None:
        self._hover = None
        self.update()


class MaskCanvas(QWidget):
    """Toolbar (brush size, erase, invert, clear) + painting surface."""

    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.image: QImage | None = None
        self.mask: QImage | None = None
        self._overlay: QImage | None = None
        self.brush_size = 32
        self.erase_mode = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        bar = QHBoxLayout()
        bar.setContentsMargins(8, 6, 8, 0)
        bar.addWidget(QLabel("Brush", self))
        self.size_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.size_slider.setRange(1, 256)
        self.size_slider.setValue(self.brush_size)
        self.size_slider.setMaximumWidth(220)
        self.size_slider.setToolTip("Brush size in image pixels")
        self.size_slider.valueChanged.connect(self.set_brush_size)
        bar.addWidget(self.size_slider)
        self.size_label = QLabel(f"{self.brush_size} px", self)
        self.size_label.setMinimumWidth(48)
        bar.addWidget(self.size_label)
        self.erase_button = QPushButton("Erase", self)
        self.erase_button.setCheckable(True)
        self.erase_button.setToolTip("Erase instead of paint (the right mouse button always erases)")
        self.erase_button.toggled.connect(lambda on: setattr(self, "erase_mode", on))
        bar.addWidget(self.erase_button)
        self.invert_button = QPushButton("Invert", self)
        self.invert_button.clicked.connect(self.invert)
        bar.addWidget(self.invert_button)
        self.clear_button = QPushButton("Clear", self)
        self.clear_button.clicked.connect(self.clear)
        bar.addWidget(self.clear_button)
        bar.addStretch(1)
        hint = QLabel("Paint = repaint · right-drag = erase", self)
        hint.setObjectName("hint")
        bar.addWidget(hint)
        layout.addLayout(bar)
        self.surface = _Surface(self)
        self.surface.painted.connect(self.changed)
        layout.addWidget(self.surface, 1)

    # -- image and mask ------------------------------------------------------------------------
    def set_image(self, image: QImage | str | None) -> None:
        """Show ``image`` (a QImage or path); the mask is reset when the size changes."""
        if isinstance(image, str):
            image = QImage(image)
        if image is None or image.isNull():
            self.image, self.mask, self._overlay = None, None, None
        else:
            self.image = image.convertToFormat(QImage.Format.Format_RGB32)
            if self.mask is None or self.mask.size() != image.size():
                self.mask = QImage(image.size(), QImage.Format.Format_Grayscale8)
                self.mask.fill(0)
                self._overlay = None
                self.set_brush_size(max(4, min(image.width(), image.height()) // 10))
        self.surface.update()
        self.changed.emit()

    def set_brush_size(self, size: int) -> None:
        self.brush_size = int(size)
        if self.size_slider.value() != size:
            self.size_slider.setValue(int(size))
        self.size_label.setText(f"{self.brush_size} px")
        self.surface.update()

    def stroke(self, start: QPointF, end: QPointF, erase: bool = False) -> None:
        """Paint (or erase) a round-capped line in image coordinates."""
        if self.mask is None:
            return
        p = QPainter(self.mask)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = QPen(QColor(0, 0, 0) if erase else QColor(255, 255, 255), self.brush_size)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        p.setPen(pen)
        if start == end:
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(pen.color())
            p.drawEllipse(start, self.brush_size / 2, self.brush_size / 2)
        else:
            p.drawLine(start, end)
        p.end()
        self._overlay = None
        self.surface.update()

    def clear(self) -> None:
        if self.mask is not None:
            self.mask.fill(0)
            self._overlay = None
            self.surface.update()
            self.changed.emit()

    def invert(self) -> None:
        if self.mask is not None:
            self.mask.invertPixels()
            self._overlay = None
            self.surface.update()
            self.changed.emit()

    def overlay(self) -> QImage:
        if self._overlay is None and self.mask is not None:
            overlay = QImage(self.mask.size(), QImage.Format.Format_ARGB32)
            overlay.fill(_OVERLAY)
            overlay.setAlphaChannel(self.mask)
            self._overlay = overlay
        return self._overlay if self._overlay is not None else QImage()

    def is_empty(self) -> bool:
        if self.mask is None:
            return True
        return not any(_mask_bytes(self.mask))

    def save_mask(self, folder: Path | None = None) -> str:
        """Write the mask as a PNG (named by its content, so re-use costs nothing)."""
        if self.mask is None:
            raise ValueError("there is no mask to save")
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        self.mask.save(buffer, "PNG")
        buffer.close()
        payload = bytes(data.data())
        folder = Path(folder) if folder else mask_folder()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"mask-{hashlib.sha1(payload).hexdigest()[:16]}.png"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(payload)
            tmp.replace(path)
        return str(path)


def _mask_bytes(mask: QImage) -> bytes:
    return bytes(mask.constBits())[: mask.sizeInBytes()]
