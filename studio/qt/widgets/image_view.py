"""The big image: live preview while a job runs, then the result.

Fit-to-window by default (it refits on resize); the wheel zooms, dragging pans,
double-click toggles between fit and 100 %.  An empty view shows a short hint.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QFrame, QGraphicsPixmapItem, QGraphicsScene, QGraphicsView

from studio.qt.imaging import pil_to_qimage


class ImageView(QGraphicsView):
    fitChanged = Signal(bool)

    def __init__(self, parent=None, placeholder: str = "Your image will appear here"):
        super().__init__(parent)
        self.setObjectName("imageView")
        self._scene = QGraphicsScene(self)
        self.setScene(self._scene)
        self._item = QGraphicsPixmapItem()
        self._item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._scene.addItem(self._item)
        self.placeholder = placeholder
        self.caption = ""
        self._fit = True
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setRenderHints(QPainter.RenderHint.SmoothPixmapTransform | QPainter.RenderHint.Antialiasing)
        self.setBackgroundBrush(QColor("#15171c"))
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setMinimumSize(200, 200)

    # -- content --------------------------------------------------------------------------
    def set_image(self, image: QImage | QPixmap | Any, caption: str = "") -> None:
        """Show a QImage, QPixmap or PIL image (None clears)."""
        if image is None:
            self.clear()
            return
        if isinstance(image, QPixmap):
            pixmap = image
        else:
            qimage = image if isinstance(image, QImage) else pil_to_qimage(image)
            pixmap = QPixmap.fromImage(qimage)
        self._item.setPixmap(pixmap)
        # Upscaled tiny images look better crisp than blurred.
        small = max(pixmap.width(), pixmap.height()) <= 128
        self._item.setTransformationMode(Qt.TransformationMode.FastTransformation if small
                                         else Qt.TransformationMode.SmoothTransformation)
        self._scene.setSceneRect(QRectF(pixmap.rect()))
        self.caption = caption
        if self._fit:
            self._refit()
        self.viewport().update()

    def set_path(self, path: str, caption: str = "") -> bool:
        image = QImage(path)
        if image.isNull():
            return False
        self.set_image(image, caption)
        return True

    def clear(self) -> None:
        self._item.setPixmap(QPixmap())
        self._scene.setSceneRect(QRectF())
        self.caption = ""
        self.viewport().update()

    def has_image(self) -> bool:
        return not self._item.pixmap().isNull()

    def pixmap(self) -> QPixmap:
        return self._item.pixmap()

    # -- zoom -------------------------------------------------------------------------------
    @property
    def fit(self) -> bool:
        return self._fit

    def set_fit(self, fit: bool) -> None:
        if fit == self._fit and not fit:
            return
        self._fit = fit
        if fit:
            self._refit()
        self.fitChanged.emit(fit)

    def actual_size(self) -> None:
        self._fit = False
        self.resetTransform()
        self.fitChanged.emit(False)

    def _refit(self) -> None:
        if not self.has_image():
            self.resetTransform()
            return
        self.fitInView(self._item, Qt.AspectRatioMode.KeepAspectRatio)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fit:
            self._refit()

    def wheelEvent(self, event) -> None:
        if not self.has_image():
            return
        factor = 1.15 if event.angleDelta().y() > 0 else 1 / 1.15
        self._fit = False
        self.scale(factor, factor)
        self.fitChanged.emit(False)

    def mouseDoubleClickEvent(self, event) -> None:
        if self._fit:
            self.actual_size()
        else:
            self.set_fit(True)

    # -- painting ----------------------------------------------------------------------------
    def drawForeground(self, painter: QPainter, rect) -> None:
        if self.has_image() and not self.caption:
            return
        painter.save()
        painter.resetTransform()
        viewport = self.viewport().rect()
        if not self.has_image():
            painter.setPen(QColor("#6b7280"))
            font = painter.font()
            font.setPointSizeF(font.pointSizeF() * 1.2)
            painter.setFont(font)
            painter.drawText(viewport, Qt.AlignmentFlag.AlignCenter, self.placeholder)
        elif self.caption:
            metrics = painter.fontMetrics()
            text = metrics.elidedText(self.caption, Qt.TextElideMode.ElideMiddle, viewport.width() - 24)
            box = metrics.boundingRect(text).adjusted(-8, -4, 8, 4)
            box.moveBottomLeft(viewport.bottomLeft() + type(viewport.bottomLeft())(8, -8))
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setBrush(QColor(0, 0, 0, 150))
            painter.setPen(Qt.PenStyle.NoPen)
            painter.drawRoundedRect(box, 4, 4)
            painter.setPen(QColor("#e5e7eb"))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()
