"""A horizontal strip of walk frames (thumbnails in order)."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem

from studio.qt.imaging import pil_to_qimage


def scaled_pixmap(image, edge: int) -> QPixmap:
    """A pixmap of a PIL image scaled to ``edge`` (nearest neighbour: latent images are tiny)."""
    pix = QPixmap.fromImage(pil_to_qimage(image))
    if pix.isNull():
        return pix
    return pix.scaled(edge, edge, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)


class FrameStrip(QListWidget):
    def __init__(self, parent=None, edge: int = 96):
        super().__init__(parent)
        self.edge = edge
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setIconSize(QSize(edge, edge))
        self.setFixedHeight(edge + 40)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)

    def set_frames(self, images) -> None:
        self.clear()
        for i, image in enumerate(images):
            item = QListWidgetItem(QIcon(scaled_pixmap(image, self.edge)), str(i + 1))
            item.setSizeHint(QSize(self.edge + 8, self.edge + 28))
            self.addItem(item)

    def add_frame(self, image) -> None:
        item = QListWidgetItem(QIcon(scaled_pixmap(image, self.edge)), str(self.count() + 1))
        item.setSizeHint(QSize(self.edge + 8, self.edge + 28))
        self.addItem(item)
