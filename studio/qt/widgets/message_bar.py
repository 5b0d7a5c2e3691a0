"""An inline message strip (error / warning / info / success) with optional action buttons.

Used instead of modal dialogs: nothing that comes from a worker ever pops up a dialog.

Binding: ``bar.bind(session)`` shows every ``session.message(level, text)`` of a
:class:`~studio.core.sessions.base.PanelSession` (level: info | warning | error | success).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QToolButton

from studio.qt.icons import icon
from studio.qt.widgets.binding import connect_while_alive

_COLOURS = {
    "error": ("#4a1f24", "#f2b8bd", "#c9545f"),
    "warning": ("#4a3b17", "#f4dca0", "#c99a2e"),
    "info": ("#1d3347", "#b9d8f2", "#4f8fc7"),
    "success": ("#1e3b2a", "#b6e6c6", "#4fae73"),
}


class MessageBar(QFrame):
    closed = Signal()

    def __init__(self, parent=None, closable: bool = True):
        super().__init__(parent)
        self.setObjectName("messageBar")
        self.kind = ""
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.setSpacing(8)
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.label, 1)
        self._actions_layout = QHBoxLayout()
        self._actions_layout.setSpacing(4)
        layout.addLayout(self._actions_layout)
        self._buttons: list[QPushButton] = []
        self.close_button = QToolButton(self)
        self.close_button.setIcon(icon("close"))
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Dismiss")
        self.close_button.clicked.connect(self.dismiss)
        self.close_button.setVisible(closable)
        layout.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_message(self, text: str, kind: str = "info",
                     actions: list[tuple[str, Callable[[], None]]] = ()) -> None:
        self.kind = kind
        background, foreground, border = _COLOURS.get(kind, _COLOURS["info"])
        self.setStyleSheet(
            f"QFrame#messageBar {{ background: {background}; border: 1px solid {border}; border-radius: 6px; }}"
            f"QFrame#messageBar QLabel {{ color: {foreground}; background: transparent; border: none; }}")
        self.label.setText(text)
        for button in self._buttons:
            button.hide()
            button.deleteLater()
        self._buttons = []
        for title, callback in actions:
            button = QPushButton(title, self)
            button.clicked.connect(callback)
            self._actions_layout.addWidget(button)
            self._buttons.append(button)
        self.show()

    def bind(self, session: Any) -> None:
        """Show ``session.message`` sentences here until this bar is destroyed."""
        connect_while_alive(self, session.message, self._session_message)

    def _session_message(self, level: str, text: str) -> None:
        self.show_message(text, level)

    def text(self) -> str:
        return "" if self.isHidden() else self.label.text()

    def buttons(self) -> list[QPushButton]:
        return list(self._buttons)

    def dismiss(self) -> None:
        self.hide()
        self.label.clear()
        self.kind = ""
        self.closed.emit()
