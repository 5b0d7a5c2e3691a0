"""The model picker every panel shares: a list of offered models (built-ins by their label,
never a raw path), a field to type a folder, a single checkpoint file or a hub id, and browse
buttons for a folder and (optionally) a file.

Binding: ``picker.bind(session)`` makes it a view of a
:class:`~studio.core.sessions.base.PanelSession`:

* the list is ``session.models()`` (plugin offers first, then recently used sources), refilled
  on ``session.changed("plugin")``; the entry shown follows ``session.changed("model")``;
* choosing an entry, typing, or browsing calls ``session.set_model(source)``;
* ``picked(source)`` (a Qt signal) fires when the user *chose* a model (list entry or browse),
  for panels that load on choice;
* a hint under the field says when a hub id will not be fetched because downloads are off
  (``session.context.settings.allow_download``); :meth:`refresh_hint` re-reads the setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.plugin_kit.sources import looks_like_hub_id  # the one folder / file / hub-id rule
from studio.qt.icons import icon
from studio.qt.widgets.binding import connect_while_alive


class ModelPicker(QWidget):
    #: the user chose a model from the list or a browse dialog: (source)
    picked = Signal(str)

    def __init__(self, parent: QWidget | None = None, *, placeholder: str = "Folder, .safetensors file or hub id",
                 folder_title: str = "Choose a model folder", file_title: str = "",
                 file_patterns: str = "*.safetensors", pickle_patterns: str = "*.ckpt", tooltip: str = ""):
        super().__init__(parent)
        self.session: Any = None
        self._filling = False
        self.folder_title, self.file_title = folder_title, file_title
        self.file_patterns, self.pickle_patterns = file_patterns, pickle_patterns
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(3)
        self.row = QHBoxLayout()
        self.row.setSpacing(4)
        self.combo = QComboBox(self)
        self.combo.setObjectName("modelCombo")
        self.combo.setEditable(True)
        self.combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(10)
        line = self.combo.lineEdit()
        assert line is not None  # an editable combo box has one
        line.setPlaceholderText(placeholder)
        if tooltip:
            self.combo.setToolTip(tooltip)
        self.row.addWidget(self.combo, 1)
        self.browse_folder = QToolButton(self)
        self.browse_folder.setIcon(icon("folder"))
        self.browse_folder.setToolTip(folder_title + "…")
        self.row.addWidget(self.browse_folder)
        self.browse_file = QToolButton(self)
        self.browse_file.setIcon(icon("file"))
        self.browse_file.setToolTip((file_title or "Choose a checkpoint file") + "…")
        self.browse_file.setVisible(bool(file_title))
        self.row.addWidget(self.browse_file)
        column.addLayout(self.row)
        self.hint = QLabel(self)
        self.hint.setObjectName("hint")
        self.hint.setWordWrap(True)
        self.hint.hide()
        column.addWidget(self.hint)
        self.combo.currentTextChanged.connect(self._text_changed)
        self.combo.activated.connect(lambda _index: self.picked.emit(self.source()))
        self.browse_folder.clicked.connect(self._browse_folder)
        self.browse_file.clicked.connect(self._browse_file)

    def add_button(self, button: QWidget) -> None:
        """Put a panel's own button (e.g. Load) at the end of the row."""
        self.row.addWidget(button)

    # -- binding -------------------------------------------------------------------------------
    def bind(self, session: Any) -> None:
        self.session = session
        connect_while_alive(self, session.changed, self._session_changed)
        self.fill()

    def _session_changed(self, what: str) -> None:
        if what == "plugin":
            self.fill()
        elif what == "model" and self.source() != self.session.model:
            self._select(self.session.model)
        if what in ("plugin", "model"):
            self.refresh_hint()

    def fill(self) -> None:
        """(Re)list the session's models and show its current one."""
        self._filling = True
        try:
            self.combo.clear()
            for choice in self.session.models() if self.session else []:
                self.combo.addItem(choice.label, choice.source)
                self.combo.setItemData(self.combo.count() - 1, choice.description or choice.source,
                                       Qt.ItemDataRole.ToolTipRole)
            self._select(self.session.model if self.session else "")
        finally:
            self._filling = False
        self.refresh_hint()

    def _select(self, source: str) -> None:
        filling, self._filling = self._filling, True
        try:
            if not source:
                self.combo.setCurrentIndex(-1)
                self.combo.setEditText("")
                return
            index = self.combo.findData(source)
            if index < 0:
                self.combo.addItem(Path(source).name or source, source)
                index = self.combo.count() - 1
                self.combo.setItemData(index, source, Qt.ItemDataRole.ToolTipRole)
            self.combo.setCurrentIndex(index)
        finally:
            self._filling = filling

    # -- reading and setting -----------------------------------------------------------------------
    def source(self) -> str:
        """What the field means: an offered model's source, or the typed folder / file / hub id."""
        text = self.combo.currentText().strip()
        index = self.combo.findText(text)
        if index >= 0 and self.combo.itemData(index):
            return str(self.combo.itemData(index))
        return text

    def set_source(self, source: str) -> None:
        """Show ``source`` (adding it to the list when new) and tell the session."""
        self._select(source)
        self._text_changed()

    def _text_changed(self, *_: object) -> None:
        if self._filling or self.session is None:
            return
        self.session.set_model(self.source())
        self.refresh_hint()

    def refresh_hint(self) -> None:
        source = self.source()
        settings = self.session.context.settings if self.session is not None else None
        if source and looks_like_hub_id(source) and settings is not None and not settings.allow_download:
            self.hint.setText("Looks like a hub id: downloads are off (File → Settings → Allow downloads).")
            self.hint.show()
        else:
            self.hint.hide()

    def _browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.folder_title)
        if folder:
            self.set_source(folder)
            self.picked.emit(folder)

    def _browse_file(self) -> None:
        settings = self.session.context.settings if self.session is not None else None
        patterns = self.file_patterns
        if settings is not None and settings.allow_pickle and self.pickle_patterns:
            patterns += " " + self.pickle_patterns
        path, _ = QFileDialog.getOpenFileName(self, self.file_title, "", f"Checkpoints ({patterns})")
        if path:
            self.set_source(path)
            self.picked.emit(path)
