"""Image drops on the Image panel: a PNG dropped anywhere restores its settings; dropped on an
image field (or the inpaint mask) it becomes that field's picture instead.

A mixin for :class:`~studio.qt.panels.image.ImagePanel` (it uses the panel's ``form``,
``mask_canvas``, ``session`` and ``restore_png``): text fields would otherwise swallow the drop
and paste the file's path, so an event filter on every child catches image drops first.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QWidget

from studio.qt.imaging import dropped_image_path
from studio.qt.widgets.param_form import PathEditor


class ImageDrops:
    form: Any
    mask_canvas: Any
    session: Any

    def restore_png(self, path: str) -> Any: ...  # provided by the panel

    def install_drop_filters(self) -> None:
        for child in self.findChildren(QWidget):  # type: ignore[attr-defined]  # a QWidget mixin
            child.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in (QEvent.Type.DragEnter, QEvent.Type.DragMove) and dropped_image_path(event):
            event.acceptProposedAction()  # type: ignore[attr-defined]  # a drag event here
            return True
        if event.type() == QEvent.Type.Drop and dropped_image_path(event):
            target = self._image_field_at(watched)
            if target is not None:  # onto an image field or the mask: use the picture itself
                event.acceptProposedAction()  # type: ignore[attr-defined]
                target.set_value(dropped_image_path(event))
                return True
            self.dropEvent(event)
            return True
        return super().eventFilter(watched, event)  # type: ignore[misc]  # QWidget's

    def _image_field_at(self, widget: QObject | None) -> Any:
        """The image path editor (or, for the mask canvas, the init image editor) ``widget`` is in."""
        init = self.session.init_param
        init_editor = self.form.editor(init.name) if init is not None and self.form.has(init.name) else None
        while widget is not None and widget is not self:
            if isinstance(widget, PathEditor) and widget.image:
                return widget
            if widget is self.mask_canvas:
                return init_editor
            widget = widget.parent()
        return None

    def dragEnterEvent(self, event: Any) -> None:
        if dropped_image_path(event):
            event.acceptProposedAction()

    def dragMoveEvent(self, event: Any) -> None:
        if dropped_image_path(event):
            event.acceptProposedAction()

    def dropEvent(self, event: Any) -> None:
        path = dropped_image_path(event)
        if not path:
            return
        event.acceptProposedAction()
        self.restore_png(path)
