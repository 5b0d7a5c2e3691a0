"""Editing your own image in the GUI on a tiny random SD pipeline: drop an image -> inversion
-> original + reconstruction with PSNR -> a slider tick -> the edited image -> save a PNG with
the recipe; several queued slider ticks: the newest value wins."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from PIL import Image, ImageDraw  # noqa: E402
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402

from studio.core.context import StudioContext  # noqa: E402
from studio.core.registry import Registry  # noqa: E402
from studio.core.sessions.diffusion_edit import DiffusionEditSession, parse_edit  # noqa: E402
from studio.core.settings import Settings  # noqa: E402
from studio.core.store import RECIPE_CHUNK  # noqa: E402
from studio.plugin_api import ParamError  # noqa: E402
from studio_latent import DiffusionLatentPlugin  # noqa: E402

WAIT = 120_000


@pytest.fixture
def drawing(tmp_path):
    image = Image.new("RGB", (64, 64), (10, 10, 10))
    ImageDraw.Draw(image).ellipse((18, 22, 42, 46), fill=(220, 30, 30))
    image.save(tmp_path / "mine.png")
    return tmp_path / "mine.png"


@pytest.fixture
def session(tiny_sd_folder, tmp_path, monkeypatch, one_thread):
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    registry = Registry()
    registry.add("latent-diffusion", DiffusionLatentPlugin)
    context = StudioContext.create(Settings(), registry)
    s = DiffusionEditSession(context)
    s.set_model(str(tiny_sd_folder))
    s.steps = 4
    yield s
    context.close()


def test_parse_edit():
    assert (parse_edit("red -> blue").kind, parse_edit("red -> blue").text) == ("pair", "red->blue")
    add, remove = parse_edit("+glasses"), parse_edit("-glasses")
    assert (add.kind, add.text, add.strength, add.label) == ("concept", "glasses", 0.0, "add glasses")
    assert (remove.strength, remove.label) == (-1.0, "remove glasses")
    assert parse_edit("dir:pc1").kind == "direction"
    for bad in ("->blue", "  ", "+"):
        with pytest.raises(ParamError):
            parse_edit(bad)


def test_view_drop_edit_save(qtbot, session, drawing, tmp_path):
    from studio.qt.bridge import EngineBridge
    from studio.qt.widgets.diffusion_edit_view import DiffusionEditView

    bridge = EngineBridge(session.context.engine)
    bridge.event.connect(session.handle)
    view = DiffusionEditView(session)
    qtbot.addWidget(view)
    view.resize(1000, 600)
    view.show()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(drawing))])
    drop = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(session.changed, timeout=WAIT, check_params_cb=lambda name: name == "reconstruction"):
        view.dropEvent(drop)
    assert view.views["original"].has_image() and view.views["reconstruction"].has_image()
    assert "PSNR" in view.captions["reconstruction"].text()
    view.new_edit.setText("red->blue")
    view._add()
    assert len(session.sliders) == 1 and len(view.rows) == 1
    # a drag: several ticks queued at once on the interactive lane; the newest value wins
    with qtbot.waitSignal(session.changed, timeout=WAIT, check_params_cb=lambda name: name == "edited"):
        for value in (0.5, 1.0, 1.5):
            session.set_strength(0, value, dragging=False)
    qtbot.waitUntil(lambda: not session.busy and session.edited_artifact is not None
                    and session.edited_artifact.parameters["recipe"]["pairs"][0][2] == 1.5, timeout=WAIT)
    assert view.views["edited"].has_image() and "red->blue x1.5" in view.captions["edited"].text()
    edited = np.asarray(session.edited, dtype=float)
    assert np.abs(edited - np.asarray(session.reconstruction, dtype=float)).mean() > 0
    out = session.save(str(tmp_path / "edited.png"))
    with Image.open(out) as saved:
        recipe = json.loads(saved.text[RECIPE_CHUNK])
    assert recipe["pairs"] == [["red", "blue", 1.5]] and recipe["encode_method"] == "ddpm-inversion"
    with pytest.raises(FileExistsError):  # never replaces a file
        session.save(str(tmp_path / "edited.png"))
    bridge.close()


def _red_to_blue_shown(qtbot, session, drawing):
    """The editor view on the real engine, ``drawing`` inverted and red->blue shown at 1 at full quality."""
    from studio.qt.bridge import EngineBridge
    from studio.qt.widgets.diffusion_edit_view import DiffusionEditView

    bridge = EngineBridge(session.context.engine)
    bridge.event.connect(session.handle)
    view = DiffusionEditView(session)
    qtbot.addWidget(view)
    view.show()
    with qtbot.waitSignal(session.changed, timeout=WAIT, check_params_cb=lambda name: name == "reconstruction"):
        view.open_image(str(drawing))
    view.new_edit.setText("red->blue")
    view._add()
    session.set_strength(0, 1.0, dragging=False)
    qtbot.waitUntil(lambda: not session.busy and session.edited_artifact is not None, timeout=WAIT)
    return bridge, view


def test_the_outline_choice_takes_effect_and_the_status_says_what_each_edit_got(qtbot, session, drawing):
    """Auto guesses per edit whether it may reshape the outline; the user's choice wins, the edit on
    show is rendered again with it, and the status line and the saved recipe say what was applied."""
    bridge, view = _red_to_blue_shown(qtbot, session, drawing)
    for choice in ("reshape", "keep"):
        view.layout_choice.setCurrentIndex(view.layout_choice.findData(choice))
        qtbot.waitUntil(lambda choice=choice: not session.busy and session.edited_artifact is not None
                        and session.edited_artifact.parameters["recipe"]["layout"] == choice, timeout=WAIT)
        assert session.edited_artifact.parameters["layout"] == [f"red->blue: {choice}"]
        qtbot.waitUntil(lambda choice=choice: f"Outline: red->blue: {choice}." in view.status.text(), timeout=WAIT)
    with pytest.raises(ParamError):
        session.set_layout("sideways")
    bridge.close()


def test_the_zoom_checkbox_takes_effect_and_the_status_says_what_it_did(qtbot, session, drawing):
    """Zoom is on by default; unticking it renders the edit on show again on the whole picture, and
    the recipe, the image's parameters and the status line say so."""
    bridge, view = _red_to_blue_shown(qtbot, session, drawing)
    assert view.zoom_check.isChecked() and session.zoom
    assert session.edited_artifact.parameters["recipe"]["zoom"] is True
    view.zoom_check.setChecked(False)
    qtbot.waitUntil(lambda: not session.busy and session.edited_artifact is not None
                    and session.edited_artifact.parameters["recipe"]["zoom"] is False, timeout=WAIT)
    assert session.edited_artifact.parameters["zoom"] == "off"
    qtbot.waitUntil(lambda: "Zoom: off." in view.status.text(), timeout=WAIT)
    bridge.close()
