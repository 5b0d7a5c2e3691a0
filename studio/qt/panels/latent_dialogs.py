"""The Latent panel's file dialogs: load / save directions, find new ones, save a prompt-pair
direction, export a walk.  Each asks the user where, then calls one session command; a
ParamError becomes a sentence in the panel's message bar.

A mixin for :class:`~studio.qt.panels.latent.LatentPanel` (it uses ``session``, ``message``,
``pair_from`` / ``pair_to``); kept apart so the panel file reads as layout and bindings.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog, QInputDialog

from studio.plugin_api import ParamError
from studio.qt.imaging import IMAGE_SUFFIXES

SHAPES_FACTORS = ["triangle", "circle", "square", "background", "x", "y", "size", "hue"]


def _images_in(folder: str, label: int) -> list[list[Any]]:
    return [[str(p), label] for p in sorted(Path(folder).iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]


class LatentDialogs:
    session: Any
    message: Any
    pair_from: Any
    pair_to: Any

    def run_command(self, command: Callable[[], Any]) -> Any:
        """Run a session command; a ParamError is shown, never raised."""
        try:
            return command()
        except ParamError as exc:
            self.message.show_message(str(exc), "error")
            return None

    def _parent(self) -> Any:
        return self

    def load_directions_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self._parent(), "Load directions", str(self.session.directions_dir()),
                                              "Directions (*.json *.safetensors)")
        if path:
            self.run_command(lambda: self.session.add_direction_file(path))

    def save_directions_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self._parent(), "Save directions",
                                              str(self.session.directions_dir() / "directions.json"),
                                              "JSON (*.json);;safetensors (*.safetensors)")
        if path:
            saved = self.run_command(lambda: self.session.save_directions(path))
            if saved is not None:
                self.message.show_message(f"Saved {saved.name}", "info")

    def save_pair_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self._parent(), "Save the prompt-pair direction",
                                              str(self.session.directions_dir() / "pair.json"),
                                              "JSON (*.json);;safetensors (*.safetensors)")
        if path:
            self.run_command(lambda: self.session.save_pair_direction(self.pair_from.text(), self.pair_to.text(),
                                                                      path))

    def fit_factor_dialog(self) -> None:
        factor, ok = QInputDialog.getItem(self._parent(), "Learn a direction", "Shapes factor", SHAPES_FACTORS, 0,
                                          False)
        if ok:
            self.run_command(lambda: self.session.fit("boundary", f"learned-{factor}", factor=factor))

    def fit_folders_dialog(self) -> None:
        negative = QFileDialog.getExistingDirectory(self._parent(), "Folder of label-0 images")
        positive = QFileDialog.getExistingDirectory(self._parent(), "Folder of label-1 images") if negative else ""
        if positive:
            examples = _images_in(negative, 0) + _images_in(positive, 1)
            self.run_command(lambda: self.session.fit("boundary", Path(positive).name, examples=examples))

    def fit_pca_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self._parent(), "Folder of images")
        if folder:
            self.run_command(lambda: self.session.fit("pca", Path(folder).name, examples=_images_in(folder, 0)))

    def export_dialog(self, what: str) -> None:
        if what == "frames":
            target = QFileDialog.getExistingDirectory(self._parent(), "Export the frames into")
        else:
            target, _ = QFileDialog.getSaveFileName(self._parent(), f"Export the walk as {what.upper()}",
                                                    f"walk.{what}", f"{what.upper()} (*.{what})")
        if target:
            self.export_walk(target)

    def export_walk(self, target: str) -> None:
        paths = self.run_command(lambda: self.session.walk_export(target))
        if paths:
            self.message.show_message(f"Exported {len(paths)} file(s) to {Path(paths[0]).parent}", "info")
