"""The Text panel's transcript (chat messages as HTML with edit/delete links) and the painter
that appends streamed text to it, or to the notebook document, without re-rendering.

Streamed text is queued and painted with one cursor insert per 15 ms tick, so a burst of tokens
delivered together costs one layout, not one per token; the whole transcript is rendered only
when a generation starts or ends (the session's "conversation" change).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from PySide6.QtCore import QObject, QTimer, QUrl, Signal
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QPlainTextEdit, QTextBrowser, QWidget

from studio.core.sessions.conversations import Message, describe_stats


def transcript_html(messages: Sequence[Message], busy: bool) -> str:
    """The chat as HTML; the streaming message is last and left open, so text appended through
    a cursor at the end lands inside it."""
    parts = []
    for i, message in enumerate(messages):
        who = "You" if message.role == "user" else "Assistant"
        links = "" if busy else f' &nbsp; <a href="edit:{i}">edit</a> <a href="delete:{i}">delete</a>'
        parts.append(f'<p style="margin-top:10px"><b>{who}</b><span style="color:gray"> #{i + 1}</span>{links}</p>')
        stats = {k: v for k, v in message.stats.items() if k != "streaming"}
        body = html.escape(message.content).replace("\n", "<br>")
        if i == len(messages) - 1 and message.stats.get("streaming"):
            parts.append(f"<p>{body}")  # left open: streamed text is appended here
            continue
        parts.append(f"<p>{body}</p>")
        if stats:
            line = html.escape(describe_stats(stats))
            if stats.get("trimmed"):
                line += "<br>⚠ " + html.escape(str(stats["trimmed"]))
            parts.append(f'<p style="color:gray; font-size:small">{line}</p>')
    return "".join(parts)


class Transcript(QTextBrowser):
    #: a message's edit or delete link was clicked: (action, message index)
    message_action = Signal(str, int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.anchorClicked.connect(self._on_anchor)

    def show_messages(self, messages: Sequence[Message], busy: bool) -> None:
        self.setHtml(transcript_html(messages, busy))
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _on_anchor(self, url: QUrl) -> None:
        action, _, number = url.toString().partition(":")
        try:
            index = int(number)
        except ValueError:
            return
        if action in ("edit", "delete"):
            self.message_action.emit(action, index)


class StreamPainter(QObject):
    """Appends streamed text at the end of a text widget, at most once per ``interval_ms``."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = 15):
        super().__init__(parent)
        self.target: QTextBrowser | QPlainTextEdit | None = None
        self._pending: list[str] = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.flush)

    def append(self, text: str) -> None:
        self._pending.append(text)
        if not self._timer.isActive():
            self._timer.start()

    def discard(self) -> None:
        """Forget what is queued (a full render is about to show it anyway)."""
        self._pending.clear()
        self._timer.stop()

    def flush(self) -> None:
        widget = self.target
        if not self._pending or widget is None:
            return
        text = "".join(self._pending)
        self._pending.clear()
        blocked = widget.blockSignals(True)  # the document's textChanged means "the user typed"
        cursor = QTextCursor(widget.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(text)
        widget.blockSignals(blocked)
        bar = widget.verticalScrollBar()
        if bar.value() >= bar.maximum() - 40:
            bar.setValue(bar.maximum())
