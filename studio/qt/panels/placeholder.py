"""The Text, Music and Latent tabs until their panels ship: an honest note, nothing fake."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from studio.plugin_api import Kind

_WHAT = {
    Kind.TEXT: ("Text", "Write and continue text with local language models."),
    Kind.MUSIC: ("Music", "Compose audio and MIDI with local music models."),
    Kind.LATENT: ("Latent", "Edit images in a model's latent space."),
}


class ComingLaterPanel(QWidget):
    def __init__(self, kind: Kind, registry=None, parent=None):
        super().__init__(parent)
        self.kind = kind
        title, blurb = _WHAT.get(kind, (kind.value.capitalize(), ""))
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        heading = QLabel(f"{title} — coming in a later release", self)
        heading.setObjectName("placeholderTitle")
        heading.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(heading)
        body = QLabel(blurb + " This panel is not part of this version yet.", self)
        body.setAlignment(Qt.AlignmentFlag.AlignCenter)
        body.setWordWrap(True)
        body.setObjectName("hint")
        layout.addWidget(body)
        if registry is not None:
            installed = [p.label for p in registry.plugins(kind)]
            if installed:
                note = QLabel(f"Installed {title.lower()} plugins, ready for it: {', '.join(installed)}.", self)
                note.setAlignment(Qt.AlignmentFlag.AlignCenter)
                note.setObjectName("hint")
                layout.addWidget(note)
        layout.addStretch(3)
