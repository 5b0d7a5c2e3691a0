"""Conversions between PIL images (what plugins produce) and Qt images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage, QImageReader

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp);;All files (*)"


def dropped_image_path(event: Any) -> str | None:
    """The first local image file in a drag/drop event's URLs, or None."""
    mime = event.mimeData()
    if not mime.hasUrls():
        return None
    for url in mime.urls():
        if url.isLocalFile() and url.toLocalFile().lower().endswith(IMAGE_SUFFIXES):
            return url.toLocalFile()
    return None


def pil_to_qimage(image: Any) -> QImage:
    """A deep-copied QImage of a PIL image (safe to keep after the PIL image is gone).

    QImage (unlike QPixmap) may be built on any thread."""
    if image is None:
        return QImage()
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA")
    if image.mode == "RGB":
        data = image.tobytes("raw", "RGB")
        qimage = QImage(data, image.width, image.height, 3 * image.width, QImage.Format.Format_RGB888)
    else:
        data = image.tobytes("raw", "RGBA")
        qimage = QImage(data, image.width, image.height, 4 * image.width, QImage.Format.Format_RGBA8888)
    return qimage.copy()  # detach from ``data``


def load_thumbnail(path: str | Path, edge: int) -> QImage:
    """Read ``path`` scaled so its longer side is ``edge`` pixels (decoder-side scaling)."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and max(size.width(), size.height()) > edge:
        scaled = size.scaled(QSize(edge, edge), Qt.AspectRatioMode.KeepAspectRatio)
        reader.setScaledSize(scaled)
    return reader.read()


def png_parameters_text(path: str | Path) -> str:
    """The raw A1111 ``parameters`` text chunk of a PNG, or "" when it has none."""
    reader = QImageReader(str(path))
    return reader.text("parameters") or ""
