"""The "Transformer / UNet weights" picker under the Image panel's model picker.

People download the denoiser of Flux, Qwen-Image, Z-Image ... as one quantized file (GGUF
Q8_0 / Q4_K) or a single-file ``.safetensors`` and use it with a base folder that provides the
other components.  This field names that file; empty means the model's own weights.

Binding: ``picker.bind(session)`` makes it a view of an
:class:`~studio.core.sessions.image.ImageSession`: typing (on Enter / leaving the field),
browsing or clearing calls ``session.set_transformer(path)``; ``session.changed("transformer")``
shows the session's file.  The session checks the file when a job is built (a missing file or
another type is one sentence in the panel's message bar) and passes it as
``LoadOptions.transformer``; the plugin records the file name in the image's metadata.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLineEdit, QToolButton, QWidget

from studio.qt.icons import icon
from studio.qt.widgets.binding import connect_while_alive

FILE_FILTER = "Transformer / UNet weights (*.gguf *.safetensors)"


class WeightsPicker(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.session: Any = None
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        self.field = QLineEdit(self)
        self.field.setObjectName("transformerFile")
        self.field.setPlaceholderText("Model's own · or a .gguf / .safetensors file")
        self.field.setClearButtonEnabled(False)
        self.field.setToolTip("A separate transformer / UNet weights file used with the model's other components: "
                              "a GGUF file (Q8_0, Q4_K …) or a single-file .safetensors, beside a diffusers base "
                              "folder chosen above.  Empty: the model's own weights.")
        row.addWidget(self.field, 1)
        self.browse = QToolButton(self)
        self.browse.setIcon(icon("file"))
        self.browse.setToolTip("Choose a transformer / UNet weights file…")
        row.addWidget(self.browse)
        self.clear_button = QToolButton(self)
        self.clear_button.setIcon(icon("close"))
        self.clear_button.setToolTip("Use the model's own weights")
        row.addWidget(self.clear_button)
        self.field.editingFinished.connect(lambda: self._set(self.field.text()))
        self.browse.clicked.connect(self._browse)
        self.clear_button.clicked.connect(self.clear)

    def bind(self, session: Any) -> None:
        self.session = session
        connect_while_alive(self, session.changed, self._session_changed)
        self._show(session.transformer)

    def _session_changed(self, what: str) -> None:
        if what == "transformer":
            self._show(self.session.transformer)

    def _show(self, path: str) -> None:
        if self.field.text() != path:
            self.field.setText(path)
        self.clear_button.setEnabled(bool(path))

    def path(self) -> str:
        return self.field.text().strip()

    def set_path(self, path: str) -> None:
        """Use ``path`` (as if chosen); "" goes back to the model's own weights."""
        self.field.setText(path)
        self._set(path)

    def clear(self) -> None:
        self.set_path("")

    def _set(self, path: str) -> None:
        if self.session is not None:
            self.session.set_transformer(path)
        self.clear_button.setEnabled(bool(path.strip()))

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a transformer / UNet weights file", "", FILE_FILTER)
        if path:
            self.set_path(path)
