"""The Text tab: chat and notebook on transformers causal LMs, streamed as it is written.

All state lives in :class:`~studio.core.sessions.text.TextSession`; this widget shows it and
forwards clicks.  Engine events arrive on the GUI thread through
:class:`~studio.qt.bridge.EngineBridge`; streamed text is appended with one cursor insert per
delivered piece (no re-layout of the whole transcript while streaming), and the transcript is
rendered in full only when a generation starts or ends.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QKeySequence, QShortcut, QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.jobs import JobState
from studio.core.sessions.text import CHAT, NOTEBOOK, TextSession, describe_stats
from studio.plugin_api import Log, ParamError


class TextPanel(QWidget):
    #: the selected text (or the last reply), for the Image panel's prompt
    use_as_image_prompt = Signal(str)

    def __init__(self, context, bridge, parent: QWidget | None = None):
        super().__init__(parent)
        self.context = context
        self.bridge = bridge
        self.session = TextSession(context)
        self.session.on_change = self._on_session_change
        self._editing: int | None = None  # index of the message being edited in the input box
        self._streaming_started = False
        self.last_finished_job: str | None = None  # id of the last job whose end the view has shown
        self._pending: list[str] = []  # streamed text not yet on screen (painted at most every 15 ms)
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(15)
        self._build()
        self._connect()
        self._load_values()
        self._refresh_models()
        self._refresh_conversations()
        self._render()
        self._update_buttons()

    # ------------------------------------------------------------------------------ layout
    def _build(self) -> None:
        outer = QVBoxLayout(self)

        # model row
        row = QHBoxLayout()
        row.addWidget(QLabel("Model:"))
        self.model_box = QComboBox()
        self.model_box.setEditable(True)
        self.model_box.setMinimumWidth(320)
        self.model_box.setToolTip("The built-in model, a transformers model folder, or a Hugging Face id.")
        row.addWidget(self.model_box, 1)
        self.browse_button = QToolButton(text="…")
        self.browse_button.setToolTip("Choose a model folder")
        row.addWidget(self.browse_button)
        self.load_button = QPushButton("Load")
        self.unload_button = QPushButton("Unload")
        row.addWidget(self.load_button)
        row.addWidget(self.unload_button)
        self.model_status = QLabel("Not loaded")
        self.model_status.setObjectName("hint")
        row.addWidget(self.model_status)
        outer.addLayout(row)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(splitter, 1)

        # conversations
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(QLabel("Conversations"))
        self.conversation_list = QListWidget()
        lv.addWidget(self.conversation_list, 1)
        buttons = QHBoxLayout()
        self.new_button = QPushButton("New")
        self.delete_conversation_button = QPushButton("Delete")
        buttons.addWidget(self.new_button)
        buttons.addWidget(self.delete_conversation_button)
        lv.addLayout(buttons)
        exports = QHBoxLayout()
        self.export_md_button = QPushButton("Export .md")
        self.export_json_button = QPushButton("Export .json")
        exports.addWidget(self.export_md_button)
        exports.addWidget(self.export_json_button)
        lv.addLayout(exports)
        splitter.addWidget(left)

        # centre: transcript / document, input, actions
        centre = QWidget()
        cv = QVBoxLayout(centre)
        cv.setContentsMargins(0, 0, 0, 0)
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
        cv.addLayout(mode_row)
        self.notice = QLabel("")
        self.notice.setWordWrap(True)
        self.notice.setObjectName("warning")
        self.notice.setStyleSheet("color: #b06000;")
        self.notice.hide()
        cv.addWidget(self.notice)

        self.views = QStackedWidget()
        self.transcript = QTextBrowser()
        self.transcript.setOpenLinks(False)
        self.transcript.setOpenExternalLinks(False)
        self.views.addWidget(self.transcript)
        self.document = QPlainTextEdit()
        self.document.setPlaceholderText("Write the beginning of a text; Generate continues it.")
        self.views.addWidget(self.document)
        cv.addWidget(self.views, 3)

        self.system_label = QLabel("System prompt:")
        cv.addWidget(self.system_label)
        self.system_edit = QPlainTextEdit()
        self.system_edit.setMaximumHeight(60)
        cv.addWidget(self.system_edit)
        self.edit_label = QLabel("")
        self.edit_label.setObjectName("hint")
        self.edit_label.hide()
        cv.addWidget(self.edit_label)
        self.input = QPlainTextEdit()
        self.input.setPlaceholderText("Message (Ctrl+Enter to send)")
        self.input.setMaximumHeight(90)
        cv.addWidget(self.input)
        actions = QHBoxLayout()
        self.send_button = QPushButton("Send")
        self.send_button.setDefault(True)
        self.stop_button = QPushButton("Stop")
        self.regenerate_button = QPushButton("Regenerate")
        self.continue_button = QPushButton("Continue")
        self.image_prompt_button = QPushButton("Use as image prompt")
        self.image_prompt_button.setToolTip("Send the selected text (or the last reply) to the Image panel's prompt.")
        for button in (self.send_button, self.stop_button, self.regenerate_button, self.continue_button):
            actions.addWidget(button)
        actions.addStretch(1)
        actions.addWidget(self.image_prompt_button)
        cv.addLayout(actions)
        self.stats_label = QLabel("")
        self.stats_label.setObjectName("hint")
        cv.addWidget(self.stats_label)
        splitter.addWidget(centre)

        # sampling
        right = QGroupBox("Sampling")
        form = QFormLayout(right)
        preset_row = QHBoxLayout()
        self.preset_box = QComboBox()
        self.save_preset_button = QToolButton(text="Save…")
        self.save_preset_button.setToolTip("Save the current values as a preset")
        preset_row.addWidget(self.preset_box, 1)
        preset_row.addWidget(self.save_preset_button)
        form.addRow("Preset", preset_row)
        self.editors: dict[str, Any] = {}
        specs = {p.name: p for p in self.session.parameters()}
        for name in ("temperature", "top_k", "top_p", "min_p", "repetition_penalty", "max_new_tokens"):
            spec = specs.get(name)
            if spec is None:
                continue
            if name in ("top_k", "max_new_tokens"):
                editor = QSpinBox()
                editor.setRange(int(spec.minimum or 0), int(min(spec.maximum or 10**6, 2**31 - 1)))
            else:
                editor = QDoubleSpinBox()
                editor.setDecimals(2)
                editor.setRange(spec.minimum or 0.0, spec.maximum or 100.0)
                editor.setSingleStep(spec.step or 0.05)
            editor.setToolTip(spec.help)
            self.editors[name] = editor
            form.addRow(spec.label, editor)
        seed_row = QHBoxLayout()
        self.seed_edit = QLineEdit()
        self.seed_edit.setPlaceholderText("random")
        self.seed_edit.setToolTip("Blank or -1 picks a random seed; the seed used is shown with each reply.")
        self.last_seed_button = QToolButton(text="♻")
        self.last_seed_button.setToolTip("Reuse the last seed")
        seed_row.addWidget(self.seed_edit, 1)
        seed_row.addWidget(self.last_seed_button)
        form.addRow("Seed", seed_row)
        self.last_seed_label = QLabel("")
        self.last_seed_label.setObjectName("hint")
        form.addRow("", self.last_seed_label)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 4)
        splitter.setStretchFactor(2, 1)

    def _connect(self) -> None:
        b = self.bridge
        self._flush_timer.timeout.connect(self._flush_stream)
        b.event.connect(self._on_event)
        b.log.connect(self._on_log)
        self.send_button.clicked.connect(self.send)
        self.stop_button.clicked.connect(self.stop)
        self.regenerate_button.clicked.connect(lambda: self._act(self.session.regenerate))
        self.continue_button.clicked.connect(self._continue)
        self.image_prompt_button.clicked.connect(self._use_as_image_prompt)
        self.load_button.clicked.connect(self._load_model)
        self.unload_button.clicked.connect(self._unload_model)
        self.browse_button.clicked.connect(self._browse)
        self.model_box.currentTextChanged.connect(self._model_changed)
        self.mode_box.currentIndexChanged.connect(self._mode_changed)
        self.new_button.clicked.connect(self._new_conversation)
        self.delete_conversation_button.clicked.connect(self._delete_conversation)
        self.conversation_list.itemActivated.connect(self._open_item)
        self.conversation_list.itemClicked.connect(self._open_item)
        self.export_md_button.clicked.connect(lambda: self._export("md"))
        self.export_json_button.clicked.connect(lambda: self._export("json"))
        self.transcript.anchorClicked.connect(self._on_anchor)
        self.preset_box.activated.connect(self._apply_preset)
        self.save_preset_button.clicked.connect(self._save_preset)
        self.last_seed_button.clicked.connect(self._reuse_seed)
        for editor in self.editors.values():
            editor.valueChanged.connect(self._values_changed)
        self.seed_edit.editingFinished.connect(self._values_changed)
        self.system_edit.textChanged.connect(self._system_changed)
        self.document.textChanged.connect(self._document_changed)
        QShortcut(QKeySequence("Ctrl+Return"), self.input, activated=self.send)
        QShortcut(QKeySequence("Escape"), self.input, activated=self._cancel_edit)

    # ------------------------------------------------------------------------------ values
    def _load_values(self) -> None:
        s = self.session
        for name, editor in self.editors.items():
            editor.blockSignals(True)
            editor.setValue(s.values.get(name) or 0)
            editor.blockSignals(False)
        seed = s.values.get("seed")
        self.seed_edit.setText("" if seed in (None, -1, "") else str(seed))
        self.system_edit.blockSignals(True)
        self.system_edit.setPlainText(s.conversation.system)
        self.system_edit.blockSignals(False)
        self.preset_box.blockSignals(True)
        self.preset_box.clear()
        self.preset_box.addItem("(custom)")
        self.preset_box.addItems(s.presets.names())
        self.preset_box.blockSignals(False)
        index = self.mode_box.findData(s.mode)
        self.mode_box.blockSignals(True)
        self.mode_box.setCurrentIndex(max(0, index))
        self.mode_box.blockSignals(False)

    def _values_changed(self, *_: Any) -> None:
        values = {name: editor.value() for name, editor in self.editors.items()}
        text = self.seed_edit.text().strip()
        values["seed"] = text if text else -1
        self.session.set_values(**values)

    def _system_changed(self) -> None:
        self.session.conversation.system = self.system_edit.toPlainText()

    def _document_changed(self) -> None:
        if not self.session.busy and self.session.mode == NOTEBOOK:
            self.session.conversation.document = self.document.toPlainText()

    def _apply_preset(self, index: int) -> None:
        name = self.preset_box.itemText(index)
        if index == 0:
            return
        self.session.apply_preset(name)
        self._load_values()
        self.preset_box.setCurrentText(name)

    def _save_preset(self) -> None:
        name, ok = QInputDialog.getText(self, "Save preset", "Preset name:")
        if ok and name.strip():
            self.save_preset(name)

    def save_preset(self, name: str) -> None:
        self._values_changed()
        try:
            self.session.save_preset(name)
        except ParamError as exc:
            self._show_notice(str(exc))
            return
        self._load_values()
        self.preset_box.setCurrentText(name.strip())

    def _reuse_seed(self) -> None:
        seed = self._last_seed()
        if seed is not None:
            self.seed_edit.setText(str(seed))
            self._values_changed()

    def _last_seed(self) -> int | None:
        conv = self.session.conversation
        stats = [m.stats for m in conv.messages if m.stats.get("seed") is not None] + \
            [s for s in conv.document_stats if s.get("seed") is not None]
        return stats[-1]["seed"] if stats else None

    # ------------------------------------------------------------------------------ models
    def _refresh_models(self) -> None:
        self.model_box.blockSignals(True)
        self.model_box.clear()
        for choice in self.session.models():
            self.model_box.addItem(choice.label, choice.source)
            self.model_box.setItemData(self.model_box.count() - 1, choice.description or choice.source,
                                       Qt.ItemDataRole.ToolTipRole)
        index = self.model_box.findData(self.session.model)
        if index >= 0:
            self.model_box.setCurrentIndex(index)
        else:
            self.model_box.setEditText(self.session.model)
        self.model_box.blockSignals(False)

    def _current_source(self) -> str:
        text = self.model_box.currentText().strip()
        index = self.model_box.findText(text)
        if index >= 0 and self.model_box.itemData(index):
            return str(self.model_box.itemData(index))
        return text

    def _model_changed(self, *_: Any) -> None:
        self.session.set_model(self._current_source())
        self._update_model_status()
        self._update_meter()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a transformers model folder")
        if folder:
            self.model_box.setEditText(folder)
            self._model_changed()

    def _load_model(self) -> None:
        self._model_changed()
        self._act(self.session.load_model)
        self.model_status.setText("Loading…")

    def _unload_model(self) -> None:
        if self.session.busy:
            return
        try:
            self.session.unload_model()
        except ParamError as exc:
            self._show_notice(str(exc))
            return
        self._update_model_status()
        self._update_meter()

    def _update_model_status(self) -> None:
        if self.session.busy and self.session.job and self.session.job.state is JobState.LOADING:
            return
        loaded = self.session.loaded() is not None
        self.model_status.setText("Loaded" if loaded else "Not loaded")
        self.unload_button.setEnabled(loaded and not self.session.busy)

    # ------------------------------------------------------------------------------ actions
    def _act(self, action, *args: Any) -> bool:
        try:
            action(*args)
        except ParamError as exc:
            self._show_notice(str(exc))
            return False
        self._streaming_started = False
        self._show_notice("")
        self._render()
        self._update_buttons()
        return True

    def send(self) -> None:
        """Send the input (chat), apply an edit, or continue the document (notebook)."""
        if self.session.busy:
            return
        self._values_changed()
        if self.session.mode == NOTEBOOK:
            self.session.conversation.document = self.document.toPlainText()
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
        self._values_changed()
        if self.session.mode == NOTEBOOK:
            self.session.conversation.document = self.document.toPlainText()
        self._act(self.session.continue_)

    def _cancel_edit(self) -> None:
        if self._editing is not None:
            self._editing = None
            self.edit_label.hide()
            self.input.clear()

    def _on_anchor(self, url: QUrl) -> None:
        action, _, number = url.toString().partition(":")
        try:
            index = int(number)
        except ValueError:
            return
        if self.session.busy:
            return
        messages = self.session.conversation.messages
        if not 0 <= index < len(messages):
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

    def _mode_changed(self, *_: Any) -> None:
        if self.session.busy:
            self.mode_box.blockSignals(True)
            self.mode_box.setCurrentIndex(self.mode_box.findData(self.session.mode))
            self.mode_box.blockSignals(False)
            return
        self.session.set_mode(self.mode_box.currentData())
        self._render()
        self._update_buttons()

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
            if info.id == current:
                item.setSelected(True)
        self.conversation_list.blockSignals(False)

    def _open_item(self, item: QListWidgetItem) -> None:
        conversation_id = item.data(Qt.ItemDataRole.UserRole)
        if conversation_id == self.session.conversation.id:
            return
        if self._act(self.session.open_conversation, conversation_id):
            self._load_values()
            self._refresh_models()
            self._refresh_conversations()

    def _new_conversation(self) -> None:
        if self._act(self.session.new_conversation):
            self._refresh_conversations()

    def _delete_conversation(self) -> None:
        item = self.conversation_list.currentItem()
        if item is None or self.session.busy:
            return
        self.session.delete_conversation(item.data(Qt.ItemDataRole.UserRole))
        self._refresh_conversations()
        self._render()

    def _export(self, kind: str) -> None:
        title = self.session.conversation.display_title
        slug = "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")[:40] or "conversation"
        filters = "Markdown (*.md)" if kind == "md" else "JSON (*.json)"
        path, _ = QFileDialog.getSaveFileName(self, "Export conversation", f"{slug}.{kind}", filters)
        if path:
            self.export(path, kind)

    def export(self, path: str | Path, kind: str) -> Path:
        return self.session.export_markdown(path) if kind == "md" else self.session.export_json(path)

    # ------------------------------------------------------------------------------ events
    def _on_event(self, job, event) -> None:
        self.session.on_event(job, event)

    def _on_log(self, job, event: Log) -> None:
        if job is not self.session.job:
            return
        if job.state is JobState.LOADING:
            self.model_status.setText(event.message)
        elif event.level == "warning":
            self._show_notice(event.message)

    def _on_session_change(self, what: str, payload: Any) -> None:
        if what == "partial":
            self._append_stream(payload)
            return
        if what == "loaded":
            self.model_status.setText("Loaded")
            return
        self._render()
        self._update_buttons()
        if what == "finished":
            job = payload
            self._refresh_conversations()
            self._update_model_status()
            if self.session.notice:
                self._show_notice(self.session.notice)
            self._update_meter()
            self.last_finished_job = job.id

    def _append_stream(self, text: str) -> None:
        """Queue streamed text; it is painted in one insert per timer tick, so a burst of
        tokens delivered together costs one layout, not one per token."""
        self._pending.append(text)
        if not self._flush_timer.isActive():
            self._flush_timer.start()

    def _flush_stream(self) -> None:
        """Append the pending streamed text at the end without re-rendering."""
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        widget = self.transcript if self.session.mode == CHAT else self.document
        if self.session.mode == NOTEBOOK:
            self.document.blockSignals(True)
        cursor = QTextCursor(widget.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(text)
        if self.session.mode == NOTEBOOK:
            self.document.blockSignals(False)
        bar = widget.verticalScrollBar()
        if bar.value() >= bar.maximum() - 40:
            bar.setValue(bar.maximum())

    # ------------------------------------------------------------------------------ rendering
    def _render(self) -> None:
        self._pending.clear()  # the session already holds that text; a full render shows it
        self._flush_timer.stop()
        conv = self.session.conversation
        chat = conv.mode == CHAT
        self.views.setCurrentWidget(self.transcript if chat else self.document)
        for widget in (self.system_label, self.system_edit, self.input):
            widget.setVisible(chat)
        self.send_button.setText("Send" if chat else "Generate")
        if self.system_edit.toPlainText() != conv.system:
            self.system_edit.blockSignals(True)
            self.system_edit.setPlainText(conv.system)
            self.system_edit.blockSignals(False)
        if chat:
            self._render_transcript()
        elif self.document.toPlainText() != conv.document:
            self.document.blockSignals(True)
            self.document.setPlainText(conv.document)
            self.document.moveCursor(QTextCursor.MoveOperation.End)
            self.document.blockSignals(False)
        self._render_stats()

    def _render_transcript(self) -> None:
        """Full HTML render; the streaming message is last and its text is plain, so appends
        through the cursor land inside it."""
        parts = []
        busy = self.session.busy
        messages = self.session.conversation.messages
        for i, message in enumerate(messages):
            who = "You" if message.role == "user" else "Assistant"
            links = "" if busy else (f' &nbsp; <a href="edit:{i}">edit</a> <a href="delete:{i}">delete</a>')
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
                    line += "<br>⚠ " + html.escape(stats["trimmed"])
                parts.append(f'<p style="color:gray; font-size:small">{line}</p>')
        self.transcript.setHtml("".join(parts))
        bar = self.transcript.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _render_stats(self) -> None:
        conv = self.session.conversation
        stats = conv.document_stats[-1] if conv.mode == NOTEBOOK and conv.document_stats else \
            next((m.stats for m in reversed(conv.messages) if m.role == "assistant" and m.stats), {})
        stats = {k: v for k, v in stats.items() if k != "streaming"}
        self.stats_label.setText(describe_stats(stats) if stats else "")
        seed = self._last_seed()
        self.last_seed_label.setText(f"last seed: {seed}" if seed is not None else "")

    def _update_meter(self) -> None:
        used, maximum = self.session.context_usage()
        self.meter.setMaximum(max(1, maximum))
        self.meter.setValue(min(used, max(1, maximum)))
        self.meter.setFormat(f"{used} / {maximum} tokens" if maximum else f"~{used} tokens")

    def _show_notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.setVisible(bool(text))

    def _update_buttons(self) -> None:
        busy = self.session.busy
        has_messages = bool(self.session.conversation.messages) or bool(self.session.conversation.document)
        self.send_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        self.regenerate_button.setEnabled(not busy and has_messages)
        self.continue_button.setEnabled(not busy and has_messages)
        self.load_button.setEnabled(not busy)
        self.mode_box.setEnabled(not busy)
        self.new_button.setEnabled(not busy)
        self.document.setReadOnly(busy)
        self.conversation_list.setEnabled(not busy)
        if not busy:
            self._update_model_status()
        else:
            self.unload_button.setEnabled(False)

    def shutdown(self) -> None:
        """Save the conversation before the studio closes (child widgets get no closeEvent)."""
        self.session.autosave()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt name
        self.shutdown()
        super().closeEvent(event)
