"""The results strip: thumbnails of every saved image, newest first, from the history.

Thumbnails are read a few at a time from an idle timer (decoder-side scaled), so a long
history never delays opening the window.  Click an item to restore its parameters and
show it; the context menu opens its folder, copies its parameters or uses it as the init
image.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices, QGuiApplication, QIcon, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView, QListWidget, QListWidgetItem, QMenu

from studio.core.history import OutputRecord
from studio.core.metadata import format_parameters
from studio.qt.imaging import load_thumbnail, png_parameters_text

RECORD_ROLE = Qt.ItemDataRole.UserRole + 1


class Gallery(QListWidget):
    #: an item was activated (clicked): OutputRecord
    recordActivated = Signal(object)
    #: "Use as init image" from the context menu: OutputRecord
    useAsInit = Signal(object)
    upscaleRequested = Signal(object)  # an OutputRecord to enlarge 2x (a new gallery image)

    def __init__(self, parent=None, thumb: int = 112):
        super().__init__(parent)
        self.setObjectName("gallery")
        self.thumb = thumb
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setIconSize(QSize(thumb, thumb))
        self.setGridSize(QSize(thumb + 12, thumb + 12))
        self.setSpacing(0)
        self.setUniformItemSizes(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFixedHeight(thumb + 12 + self.horizontalScrollBar().sizeHint().height() + 6)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self.itemClicked.connect(lambda item: self.recordActivated.emit(item.data(RECORD_ROLE)))
        self._pending: list[QListWidgetItem] = []
        self._loader = QTimer(self)
        self._loader.setInterval(0)
        self._loader.timeout.connect(self._load_some)
        self._placeholder = self._make_placeholder()

    def _make_placeholder(self) -> QIcon:
        pixmap = QPixmap(self.thumb, self.thumb)
        pixmap.fill(QColor("#23262d"))
        return QIcon(pixmap)

    # -- content ------------------------------------------------------------------------------
    def set_records(self, records: Iterable[OutputRecord]) -> None:
        """Replace the content (records newest first); thumbnails load in the background."""
        self.clear()
        self._pending = []
        for record in records:
            item = self._make_item(record)
            self.addItem(item)
            self._pending.append(item)
        if self._pending:
            self._loader.start()

    def add_record(self, record: OutputRecord, image=None) -> QListWidgetItem:
        """Put a new result first; ``image`` (a QImage) avoids re-reading the file."""
        item = self._make_item(record)
        self.insertItem(0, item)
        if image is not None and not image.isNull():
            scaled = image.scaled(self.thumb, self.thumb, Qt.AspectRatioMode.KeepAspectRatio,
                                  Qt.TransformationMode.SmoothTransformation)
            item.setIcon(QIcon(QPixmap.fromImage(scaled)))
        else:
            self._pending.insert(0, item)
            self._loader.start()
        self.scrollToItem(item)
        return item

    def show_results(self, records: list[OutputRecord], newest_image=None) -> None:
        """Mirror a session's results list (newest first).  When only new records were put in
        front, just those are added (``newest_image``, a QImage of ``records[0]``, spares a
        read); any other change redraws the whole strip."""
        shown = [r.id for r in self.records()]
        fresh = len(records) - len(shown)
        if fresh >= 0 and [r.id for r in records[fresh:]] == shown:
            for index in range(fresh - 1, -1, -1):
                self.add_record(records[index], newest_image if index == 0 else None)
            if fresh:
                self.setCurrentRow(0)
        else:
            self.set_records(records)

    def records(self) -> list[OutputRecord]:
        return [self.item(i).data(RECORD_ROLE) for i in range(self.count())]

    def _make_item(self, record: OutputRecord) -> QListWidgetItem:
        item = QListWidgetItem(self._placeholder, "")
        item.setData(RECORD_ROLE, record)
        item.setSizeHint(QSize(self.thumb + 12, self.thumb + 12))
        prompt = str(record.parameters.get("prompt", "")).strip()
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.created))
        tip = [prompt[:200] or "(no prompt)", f"Seed {record.seed}" if record.seed is not None else "",
               when, Path(record.path).name]
        item.setToolTip("\n".join(t for t in tip if t))
        return item

    def _load_some(self, budget_s: float = 0.012) -> None:
        start = time.perf_counter()
        while self._pending and time.perf_counter() - start < budget_s:
            item = self._pending.pop(0)
            try:
                record = item.data(RECORD_ROLE)
            except RuntimeError:  # the item was deleted meanwhile
                continue
            image = load_thumbnail(record.path, self.thumb)
            if not image.isNull():
                item.setIcon(QIcon(QPixmap.fromImage(image)))
        if not self._pending:
            self._loader.stop()

    def loading(self) -> bool:
        return bool(self._pending)

    # -- context menu -----------------------------------------------------------------------------
    def _menu(self, pos) -> None:
        item = self.itemAt(pos)
        if item is None:
            return
        record: OutputRecord = item.data(RECORD_ROLE)
        menu = QMenu(self)
        menu.addAction("Restore parameters", lambda: self.recordActivated.emit(record))
        menu.addAction("Use as init image", lambda: self.useAsInit.emit(record))
        menu.addAction("Upscale 2x", lambda: self.upscaleRequested.emit(record))
        menu.addSeparator()
        menu.addAction("Open folder", lambda: self.open_folder(record))
        menu.addAction("Copy parameters", lambda: self.copy_parameters(record))
        menu.addAction("Copy file path", lambda: QGuiApplication.clipboard().setText(record.path))
        menu.exec(self.viewport().mapToGlobal(pos))

    @staticmethod
    def open_folder(record: OutputRecord) -> bool:
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(record.path).parent)))

    @staticmethod
    def parameters_text(record: OutputRecord) -> str:
        """The A1111 text stored in the PNG (or rebuilt from the history if it has none)."""
        text = png_parameters_text(record.path) if Path(record.path).exists() else ""
        if text:
            return text
        try:
            return format_parameters(record.parameters)
        except (TypeError, ValueError):
            return str(record.parameters.get("prompt", ""))

    @classmethod
    def copy_parameters(cls, record: OutputRecord) -> str:
        text = cls.parameters_text(record)
        QGuiApplication.clipboard().setText(text)
        return text
