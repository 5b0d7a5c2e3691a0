"""The Latent panel's top row and its two modes (a mixin of :class:`LatentPanel`).

*Explore*: seeds, prompt walks, directions and prompt pairs (the panel's splitter).  *Edit your
own image* (diffusion models only): the diffusion image editor
(:class:`~studio.qt.widgets.diffusion_edit_view.DiffusionEditView`) with its own session on the
panel's engine and model, in the same pane, so it has the app's theme and the window's size.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QButtonGroup, QComboBox, QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from studio.core.sessions.diffusion_edit import DiffusionEditSession
from studio.qt.widgets.diffusion_edit_view import DiffusionEditView
from studio.qt.widgets.model_picker import ModelPicker

#: the panel's two modes: (key, button title, tooltip); the switch shows for diffusion models only
PANEL_MODES = (("explore", "Explore", "Seed and prompt walks, directions and prompt pairs on generated images"),
               ("edit", "Edit your own image", "Drop your image: original, reconstruction and edited side by side, "
                                               "with sliders for edits and found directions"))


class LatentModes:
    """Needs the panel's ``session``, ``context``, ``bridge``, ``pages``, ``splitter`` and ``message``."""

    session: Any
    context: Any
    bridge: Any
    pages: Any
    splitter: Any
    message: Any

    def _build_top(self) -> QWidget:
        """The model row above both modes, and the mode switch (diffusion models only)."""
        bar = QFrame(self)
        bar.setObjectName("controls")
        row = QHBoxLayout(bar)
        row.setContentsMargins(12, 8, 12, 8)
        row.setSpacing(8)
        row.addWidget(QLabel("Latent model type", bar))
        self.plugin_combo = QComboBox(bar)
        row.addWidget(self.plugin_combo)
        row.addWidget(QLabel("Model", bar))
        self.model_picker = ModelPicker(bar, placeholder="Model folder", folder_title="Choose a model folder")
        self.load_button = QPushButton("Load", bar)
        self.model_picker.add_button(self.load_button)
        row.addWidget(self.model_picker, 1)
        self.mode_group = QButtonGroup(self)
        self.mode_buttons: dict[str, QPushButton] = {}
        modes = QHBoxLayout()
        modes.setSpacing(0)
        for i, (key, title, tip) in enumerate(PANEL_MODES):
            button = QPushButton(title, bar)
            button.setCheckable(True)
            button.setObjectName("segment")
            button.setProperty("position", "first" if i == 0 else "last")
            button.setToolTip(tip)
            self.mode_group.addButton(button, i)
            self.mode_buttons[key] = button
            modes.addWidget(button)
        self.mode_buttons["explore"].setChecked(True)
        self.mode_switch = QWidget(bar)
        self.mode_switch.setLayout(modes)
        modes.setContentsMargins(16, 0, 0, 0)
        row.addWidget(self.mode_switch)
        return bar

    def _build_editor(self) -> None:
        self.editor_session = DiffusionEditSession(self.context)
        self.bridge.feed(self.editor_session)
        self.image_editor = DiffusionEditView(self.editor_session, self.pages)
        self.pages.addWidget(self.image_editor)

    def open_image_editor(self) -> DiffusionEditView:
        """Switch the panel to "Edit your own image" (diffusion models): the editor's own session
        on the same engine and model."""
        self.set_panel_mode("edit")
        return self.image_editor

    def set_panel_mode(self, mode: str) -> None:
        """explore (seed / prompt walks, directions, pairs) or edit (your own image; diffusion only)."""
        if mode == "edit" and not self.session.is_diffusion:
            self.message.show_message("Editing your own image needs a diffusion model: choose Diffusion pipeline "
                                      "above.", "warning")
            mode = "explore"
        self.mode_buttons[mode].setChecked(True)
        self.pages.setCurrentWidget(self.image_editor if mode == "edit" else self.splitter)
        if mode == "edit":
            self._sync_editor_model()

    @property
    def panel_mode(self) -> str:
        return "edit" if self.pages.currentWidget() is self.image_editor else "explore"

    def _sync_editor_model(self) -> None:
        """The editor edits on the panel's model; a new model inverts the open image again."""
        if not self.session.is_diffusion or self.editor_session.model == self.session.model:
            return
        self.editor_session.set_model(self.session.model)
        if self.editor_session.image_path:
            self.image_editor.open_image(self.editor_session.image_path)
