"""Small icons drawn with QPainter, so the app ships no image files and looks the same
on every platform (no dependence on an icon theme or an emoji font)."""

from __future__ import annotations

from functools import cache

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap

_SIZE = 32
FOREGROUND = QColor("#d6d9e0")


def _canvas() -> tuple[QPixmap, QPainter]:
    pixmap = QPixmap(_SIZE, _SIZE)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    return pixmap, painter


def _pen(width: float = 2.6) -> QPen:
    pen = QPen(FOREGROUND, width)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return pen


@cache
def icon(name: str) -> QIcon:
    pixmap, p = _canvas()
    p.setPen(_pen())
    if name == "dice":
        p.drawRoundedRect(QRectF(5, 5, 22, 22), 5, 5)
        p.setBrush(FOREGROUND)
        p.setPen(Qt.PenStyle.NoPen)
        for x, y in ((11, 11), (21, 11), (16, 16), (11, 21), (21, 21)):
            p.drawEllipse(QPointF(x, y), 2.2, 2.2)
    elif name == "recycle":
        p.drawArc(QRectF(7, 7, 18, 18), 40 * 16, 280 * 16)
        path = QPainterPath(QPointF(24, 4))
        path.lineTo(QPointF(24, 11))
        path.lineTo(QPointF(17, 11))
        p.drawPath(path)
    elif name == "folder":
        path = QPainterPath(QPointF(4, 9))
        path.lineTo(QPointF(13, 9))
        path.lineTo(QPointF(15, 12))
        path.lineTo(QPointF(28, 12))
        path.lineTo(QPointF(28, 26))
        path.lineTo(QPointF(4, 26))
        path.closeSubpath()
        p.drawPath(path)
    elif name == "file":
        path = QPainterPath(QPointF(8, 4))
        path.lineTo(QPointF(19, 4))
        path.lineTo(QPointF(25, 10))
        path.lineTo(QPointF(25, 28))
        path.lineTo(QPointF(8, 28))
        path.closeSubpath()
        p.drawPath(path)
        p.drawLine(QPointF(19, 4), QPointF(19, 10))
        p.drawLine(QPointF(19, 10), QPointF(25, 10))
    elif name == "close":
        p.drawLine(QPointF(9, 9), QPointF(23, 23))
        p.drawLine(QPointF(23, 9), QPointF(9, 23))
    elif name == "swap":
        p.drawLine(QPointF(6, 11), QPointF(26, 11))
        p.drawLine(QPointF(20, 5), QPointF(26, 11))
        p.drawLine(QPointF(6, 21), QPointF(26, 21))
        p.drawLine(QPointF(6, 21), QPointF(12, 27))
    elif name == "plus":
        p.drawLine(QPointF(16, 7), QPointF(16, 25))
        p.drawLine(QPointF(7, 16), QPointF(25, 16))
    elif name == "stop":
        p.setBrush(FOREGROUND)
        p.drawRoundedRect(QRectF(9, 9, 14, 14), 2, 2)
    elif name == "fit":
        for x1, y1, dx, dy in ((5, 5, 1, 1), (27, 5, -1, 1), (5, 27, 1, -1), (27, 27, -1, -1)):
            p.drawLine(QPointF(x1, y1), QPointF(x1 + 7 * dx, y1))
            p.drawLine(QPointF(x1, y1), QPointF(x1, y1 + 7 * dy))
    elif name == "brush":
        p.drawLine(QPointF(26, 6), QPointF(14, 18))
        p.setBrush(FOREGROUND)
        p.drawEllipse(QPointF(10, 22), 4.5, 4.5)
    p.end()
    return QIcon(pixmap)
