"""The Text tab: layout and bindings over :class:`~studio.core.sessions.text.TextSession`.

Chat and notebook on causal LMs, streamed as it is written.  The session owns the conversation,
the values, the jobs and the saved-conversation list; this file lays widgets out, binds them to
the session (the shared model picker, parameter form, run status and message bar) and forwards
clicks to session commands.  Engine events reach the session through the bridge (wired by the
main window).  Streamed text is appended by a :class:`~studio.qt.widgets.transcript.StreamPainter`;
the transcript is rendered in full only when the conversation changes shape.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.sessions.conversations import CHAT, NOTEBOOK, describe_stats
from studio.core.sessions.text import TextSession
from studio.plugin_api import ParamError
from studio.qt.bridge import EngineBridge
from studio.qt.widgets.binding import connect_while_alive
from studio.qt.widgets.message_bar import MessageBar
from studio.qt.widgets.model_picker import ModelPicker
from studio.qt.widgets.param_form import ParamForm
from studio.qt.widgets.run_status import RunStatus
from studio.qt.widgets.transcript import StreamPainter, Transcript


class TextPanel(QWidget):
    #: the selected text (or the last reply), for the Image panel's prompt
    use_as_image_prompt = Signal(str)

    def __init__(self, context: Any, bridge: EngineBridge, parent: QWidget | None = None):
        super().__init__(parent)
        self.context = context
        self.bridge = bridge
        self.session = TextSession(context)
        self._editing: int | None = None  # index of the message being edited in the input box
        self.painter = StreamPainter(self)
        self._build()
        self._bind()

    # ------------------------------------------------------------------------------ layout
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(QLabel("Model:"))
        self.model_picker = ModelPicker(self, placeholder="Model folder or hub id",
                                        folder_title="Choose a transformers model folder",
                                        tooltip="The built-in model, a transformers model folder, "
                                                "or a Hugging Face id.")
        top.addWidget(self.model_picker, 1)
        self.load_button = QPushButton("Load")
        self.unload_button = QPushButton("Unload")
        self.model_status = QLabel("Not loaded")
        self.model_status.setObjectName("hint")
        for widget in (self.load_button, self.unload_button, self.model_status):
            top.addWidget(widget)
        outer.addLayout(top)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(splitter, 1)
        splitter.addWidget(self._build_conversations())
        splitter.addWidget(self._build_centre())
        splitter.addWidget(self._build_sampling())
        for index, stretch in enumerate((1, 4, 1)):
            splitter.setStretchFactor(index, stretch)

    def _build_conversations(self) -> QWidget:
        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(QLabel("Conversations"))
        self.conversation_list = QListWidget()
        column.addWidget(self.conversation_list, 1)
        self.new_button = QPushButton("New")
        self.delete_conversation_button = QPushButton("Delete")
        self.export_md_button = QPushButton("Export .md")
        self.export_json_button = QPushButton("Export .json")
        for pair in ((self.new_button, self.delete_conversation_button),
                     (self.export_md_button, self.export_json_button)):
            row = QHBoxLayout()
            for button in pair:
                row.addWidget(button)
            column.addLayout(row)
        return left

    def _build_centre(self) -> QWidget:
        centre = QWidget()
        column = QVBoxLayout(centre)
        column.setContentsMargins(0, 0, 0, 0)
        mode_row = QHBoxLayout()
        mode_row.addWidget(QLabel("Mode:"))
        self.mode_box = QComboBox()
        self.mode_box.addItem("Chat", CHAT)
        self.mode_box.addItem("Notebook", NOTEBOOK)
        mode_row.addWidget(self.mode_box)
        mode_row.addStretch(1)
        self.meter = QProgressBar()
        self.meter.setTextVisible(True)
        self.meter.setMinimumWidth(190)
        self.meter.setMaximumWidth(260)
        self.meter.setToolTip("Context used: prompt and replies, in tokens, of the model's maximum.")
        mode_row.addWidget(QLabel("Context:"))
        mode_row.addWidget(self.meter)
        column.addLayout(mode_row)
        self.message = MessageBar(centre)
        column.addWidget(self.message)
        self.views = QStackedWidget()
        self.transcript = Transcript()
        self.document = QPlainTextEdit()
        self.document.setPlaceholderText("Write the beginning of a text; Generate continues it.")
        self.views.addWidget(self.transcript)
        self.views.addWidget(self.document)
        column.addWidget(self.views, 3)
        self.system_label = QLabel("System prompt:")
        self.system_edit = QPlainTextEdit()
        self.system_edit.setMaximumHeight(60)
        self.edit_label = QLabel("")
        self.edit_label.setObjectName("hint")
        self.edit_label.hide()
        self.input = QPlainTextEdit()
        self.input.setPlaceholderText("Message (Ctrl+Enter to send)")
        self.input.setMaximumHeight(90)
        for widget in (self.system_label, self.system_edit, self.edit_label, self.input):
            column.addWidget(widget)
        actions = QHBoxLayout()
        self.send_button = QPushButton("Send")
        self.send_button.setDefault(True)
        self.regenerate_button = QPushButton("Regenerate")
        self.continue_button = QPushButton("Continue")
        self.image_prompt_button = QPushButton("Use as image prompt")
        self.image_prompt_button.setToolTip("Send the selected text (or the last reply) to the Image panel's prompt.")
        actions.addWidget(self.send_button)
        self.run_status = RunStatus(centre, interrupt=True, buttons_beside=actions)
        self.stop_button = self.run_status.interrupt_button
        self.stop_button.setText("Stop")
        self.stop_button.setMinimumHeight(0)
        self.stop_button.setToolTip("Stop writing and keep what was written")
        actions.addWidget(self.regenerate_button)
        actions.addWidget(self.continue_button)
        actions.addStretch(1)
        actions.addWidget(self.image_prompt_button)
        column.addLayout(actions)
        column.addWidget(self.run_status)
        self.stats_label = QLabel("")
        self.stats_label.setObjectName("hint")
        column.addWidget(self.stats_label)
        return centre

    def _build_sampling(self) -> QWidget:
        box = QGroupBox("Sampling")
        column = QVBoxLayout(box)
        preset_row = QHBoxLayout()
        preset_row.addWidget(QLabel("Preset"))
        self.preset_box = QComboBox()
        self.save_preset_button = QToolButton(text="Save…")
        self.save_preset_button.setToolTip("Save the current values as a preset")
        preset_row.addWidget(self.preset_box, 1)
        preset_row.addWidget(self.save_preset_button)
        column.addLayout(preset_row)
        self.form = ParamForm(self.session.parameters(), message_bar=self.message,
                              labels={"seed": "Seed"})
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.form)
        column.addWidget(scroll, 1)
        box.setMinimumWidth(300)
        return box

    # ------------------------------------------------------------------------------ bindings
    def _bind(self) -> None:
        session = self.session
        self.model_picker.bind(session)
        self.form.bind(session)
        self.message.bind(session)
        self.run_status.bind(session)
        connect_while_alive(self, session.changed, self._session_changed)
        connect_while_alive(self, session.streamed, self.painter.append)
        connect_while_alive(self, session.results_changed, self._refresh_conversations)
        self.send_button.clicked.connect(self.send)
        self.regenerate_button.clicked.connect(lambda: self._act(session.regenerate))
        self.continue_button.clicked.connect(self._continue)
        self.image_prompt_button.clicked.connect(self._use_as_image_prompt)
        self.load_button.clicked.connect(lambda: self._act(session.load_model))
        self.unload_button.clicked.connect(lambda: self._act(session.unload_model))
        self.mode_box.currentIndexChanged.connect(lambda _: self._act(session.set_mode, self.mode_box.currentData()))
        self.new_button.clicked.connect(self._new_conversation)
        self.delete_conversation_button.clicked.connect(self._delete_conversation)
        self.conversation_list.itemActivated.connect(self._open_item)
        self.conversation_list.itemClicked.connect(self._open_item)
        self.export_md_button.clicked.connect(lambda: self._export("md"))
        self.export_json_button.clicked.connect(lambda: self._export("json"))
        self.transcript.message_action.connect(self._message_action)
        self.preset_box.activated.connect(self._apply_preset)
        self.save_preset_button.clicked.connect(self._save_preset)
        self.system_edit.textChanged.connect(lambda: session.set_system(self.system_edit.toPlainText()))
        self.document.textChanged.connect(lambda: session.set_document(self.document.toPlainText()))
        QShortcut(QKeySequence("Ctrl+Return"), self.input, activated=self.send)
        QShortcut(QKeySequence("Escape"), self.input, activated=self._cancel_edit)
        self._fill_presets()
        self._refresh_conversations()
        self._render()
        self._show_context()
        self._show_model_state()

    def _session_changed(self, what: str) -> None:
        if what in ("conversation", "mode"):
            self._render()
        elif what == "context":
            self._show_context()
        elif what in ("loaded", "model", "job"):
            self._show_model_state()
        if what == "job":
            self._update_buttons()

    # ------------------------------------------------------------------------------ commands
    def _act(self, command: Callable[..., Any], *args: Any) -> bool:
        """Run a session command; a ParamError is one sentence in the message bar."""
        try:
            command(*args)
        except ParamError as exc:
            self.message.show_message(str(exc), "warning")
            self._show_mode()  # e.g. a refused mode change: show the session's mode again
            return False
        return True

    def send(self) -> None:
        """Send the input (chat), apply an edit, or continue the document (notebook)."""
        if self.session.busy:
            return
        if self.session.mode == NOTEBOOK:
            self._act(self.session.send, "")
            return
        text = self.input.toPlainText()
        if self._editing is not None:
            index, self._editing = self._editing, None
            self.edit_label.hide()
            if self._act(self.session.edit, index, text):
                self.input.clear()
            return
        if self._act(self.session.send, text):
            self.input.clear()

    def stop(self) -> None:
        self.session.stop()

    def _continue(self) -> None:
        self._act(self.session.continue_)

    def _cancel_edit(self) -> None:
        if self._editing is not None:
            self._editing = None
            self.edit_label.hide()
            self.input.clear()

    def _message_action(self, action: str, index: int) -> None:
        if self.session.busy or not 0 <= index < len(self.session.conversation.messages):
            return
        if action == "edit":
            self.start_edit(index)
        elif action == "delete":
            self._act(self.session.delete, index)

    def start_edit(self, index: int) -> None:
        message = self.session.conversation.messages[index]
        self._editing = index
        self.input.setPlainText(message.content)
        self.edit_label.setText(f"Editing message {index + 1} ({message.role}); Send applies it and generation "
                                f"resumes from there, Esc cancels.")
        self.edit_label.show()
        self.input.setFocus()

    def _use_as_image_prompt(self) -> None:
        widget = self.transcript if self.session.mode == CHAT else self.document
        selected = widget.textCursor().selectedText().replace("\u2029", "\n").strip()
        text = selected or self.session.last_reply()
        if text:
            self.use_as_image_prompt.emit(text)

    # ------------------------------------------------------------------------------ presets
    def _fill_presets(self) -> None:
        self.preset_box.clear()
        self.preset_box.addItem("(custom)")
        self.preset_box.addItems(self.session.presets.names())

    def _apply_preset(self, index: int) -> None:
        if index > 0:
            name = self.preset_box.itemText(index)
            self._act(self.session.apply_preset, name)
            self.preset_box.setCurrentText(name)

    def _save_preset(self) -> None:
        name, ok = QInputDialog.getText(self, "Save preset", "Preset name:")
        if ok and name.strip():
            self.save_preset(name)

    def save_preset(self, name: str) -> None:
        if self._act(self.session.save_preset, name):
            self._fill_presets()
            self.preset_box.setCurrentText(name.strip())

    # ------------------------------------------------------------------------------ conversations
    def _refresh_conversations(self) -> None:
        self.conversation_list.blockSignals(True)
        self.conversation_list.clear()
        current = self.session.conversation.id
        for info in self.session.conversations():
            item = QListWidgetItem(("✎ " if info.mode == NOTEBOOK else "") + info.title)
            item.setData(Qt.ItemDataRole.UserRole, info.id)
            item.setToolTip(str(info.path))
            self.conversation_list.addItem(item)
            item.setSelected(info.id == current)
        self.conversation_list.blockSignals(False)

    def _open_item(self, item: QListWidgetItem) -> None:
        conversation_id = item.data(Qt.ItemDataRole.UserRole)
        if conversation_id != self.session.conversation.id:
            self._act(self.session.open_conversation, conversation_id)

    def _new_conversation(self) -> None:
        self._act(self.session.new_conversation)

    def _delete_conversation(self) -> None:
        item = self.conversation_list.currentItem()
        if item is not None and not self.session.busy:
            self._act(self.session.delete_conversation, item.data(Qt.ItemDataRole.UserRole))

    def _export(self, kind: str) -> None:
        title = self.session.conversation.display_title
        slug = "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")[:40] or "conversation"
        filters = "Markdown (*.md)" if kind == "md" else "JSON (*.json)"
        path, _ = QFileDialog.getSaveFileName(self, "Export conversation", f"{slug}.{kind}", filters)
        if path:
            self.export(path, kind)

    def export(self, path: str | Path, kind: str) -> Path:
        written = self.session.export_markdown(path) if kind == "md" else self.session.export_json(path)
        self.message.show_message(f"Exported {written}", "info")
        return written

    # ------------------------------------------------------------------------------ drawing
    def _show_mode(self) -> None:
        index = self.mode_box.findData(self.session.mode)
        if index >= 0 and index != self.mode_box.currentIndex():
            self.mode_box.blockSignals(True)
            self.mode_box.setCurrentIndex(index)
            self.mode_box.blockSignals(False)

    def _render(self) -> None:
        """Show the whole conversation (streamed text already in the session is included)."""
        self.painter.discard()
        conv = self.session.conversation
        chat = conv.mode == CHAT
        self._show_mode()
        self.views.setCurrentWidget(self.transcript if chat else self.document)
        self.painter.target = self.transcript if chat else self.document
        for widget in (self.system_label, self.system_edit, self.input):
            widget.setVisible(chat)
        self.send_button.setText("Send" if chat else "Generate")
        if self.system_edit.toPlainText() != conv.system:
            self.system_edit.blockSignals(True)
            self.system_edit.setPlainText(conv.system)
            self.system_edit.blockSignals(False)
        if chat:
            self.transcript.show_messages(conv.messages, self.session.busy)
        elif self.document.toPlainText() != conv.document:
            self.document.blockSignals(True)
            self.document.setPlainText(conv.document)
            self.document.moveCursor(self.document.textCursor().MoveOperation.End)
            self.document.blockSignals(False)
        stats = conv.document_stats[-1] if not chat and conv.document_stats else \
            next((m.stats for m in reversed(conv.messages) if m.role == "assistant" and m.stats), {})
        self.stats_label.setText(describe_stats({k: v for k, v in stats.items() if k != "streaming"}))
        self._update_buttons()

    def _show_context(self) -> None:
        used, maximum = self.session.context_usage()
        self.meter.setMaximum(max(1, maximum))
        self.meter.setValue(min(used, max(1, maximum)))
        exact = "" if self.session.context_exact else "~"
        self.meter.setFormat(f"{exact}{used} / {maximum} tokens" if maximum else f"~{used} tokens")

    def _show_model_state(self) -> None:
        job = self.session.active_job
        if job is not None and job.spec.action == "load":
            self.model_status.setText("Loading…")
        else:
            self.model_status.setText("Loaded" if self.session.is_loaded else "Not loaded")
        self.unload_button.setEnabled(self.session.is_loaded and not self.session.busy)

    def _update_buttons(self) -> None:
        busy = self.session.busy
        has_text = bool(self.session.conversation.messages) or bool(self.session.conversation.document)
        for widget in (self.send_button, self.load_button, self.mode_box, self.new_button, self.conversation_list):
            widget.setEnabled(not busy)
        self.regenerate_button.setEnabled(not busy and has_text)
        self.continue_button.setEnabled(not busy and has_text)
        self.document.setReadOnly(busy)
        self._show_model_state()

    def shutdown(self) -> None:
        """Save the conversation before the studio closes (child widgets get no closeEvent)."""
        self.session.autosave()

    def closeEvent(self, event: Any) -> None:
        self.shutdown()
        super().closeEvent(event)
