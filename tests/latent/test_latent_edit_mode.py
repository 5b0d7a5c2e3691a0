"""The Latent panel's "Edit your own image" mode on real (tiny random, and the built-in) SD 1.5 and
SDXL pipelines: drop an image -> inversion -> original + reconstruction with PSNR -> a slider ->
the edited image -> every slider's quality measured beside it -> save a PNG with the recipe; the
main window at its default size shows every control uncut; `studio latent quality` prints the
same figures for found directions (h-space and text PCA)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from PIL import Image, ImageDraw  # noqa: E402
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402
from PySide6.QtWidgets import QAbstractButton  # noqa: E402

from studio.core.context import StudioContext  # noqa: E402
from studio.core.registry import Registry  # noqa: E402
from studio.core.settings import Settings  # noqa: E402
from studio.core.store import RECIPE_CHUNK  # noqa: E402
from studio_latent import DiffusionLatentPlugin, VectorLatentPlugin, default_sd_folder  # noqa: E402

WAIT = 180_000


@pytest.fixture
def drawing(tmp_path):
    image = Image.new("RGB", (64, 64), (10, 10, 10))
    ImageDraw.Draw(image).ellipse((18, 22, 42, 46), fill=(220, 30, 30))
    image.save(tmp_path / "mine.png")
    return tmp_path / "mine.png"


@pytest.fixture
def make_panel(qtbot, one_thread, tmp_path, monkeypatch):
    from studio.qt.bridge import EngineBridge
    from studio.qt.panels.latent import LatentPanel

    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    made = []

    def factory(model: str):
        registry = Registry()
        registry.add("latent-vae", VectorLatentPlugin)
        registry.add("latent-diffusion", DiffusionLatentPlugin)
        context = StudioContext.create(Settings(), registry)
        bridge = EngineBridge(context.engine)
        panel = LatentPanel(context, bridge)
        bridge.feed(panel.session)
        made.append((panel, bridge, context))
        panel.plugin_combo.setCurrentIndex(panel.plugin_combo.findData("latent-diffusion"))
        panel.model_picker.combo.setEditText(model)
        panel.resize(1340, 780)
        qtbot.addWidget(panel)
        with qtbot.waitSignal(panel.jobFinished, timeout=WAIT):
            panel.show()
        return panel

    yield factory
    for panel, bridge, context in made:
        panel.shutdown()
        bridge.close()
        context.close()


def _drop(widget, path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    widget.dropEvent(QDropEvent(QPointF(40, 40), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                Qt.KeyboardModifier.NoModifier))


def _model(request, name):
    if name == "built-in":
        if not (default_sd_folder() / "model_index.json").is_file():
            pytest.skip("the built-in shapes-sd model is not shipped here")
        return str(default_sd_folder())
    return str(request.getfixturevalue("tiny_sd_folder" if name == "sd15" else "tiny_sdxl_folder"))


@pytest.mark.parametrize("name", ["sd15", "sdxl", "built-in"])
def test_panel_edits_your_own_image(qtbot, make_panel, drawing, tmp_path, request, name):
    panel = make_panel(_model(request, name))
    assert panel.mode_switch.isVisibleTo(panel) and panel.panel_mode == "explore"
    panel.mode_buttons["edit"].click()
    editor = panel.image_editor
    assert panel.panel_mode == "edit" and editor.isVisible()
    assert not editor.isWindow() and editor.window() is panel.window()  # in the panel, not a window of its own
    session = editor.session
    assert session.model == panel.session.model
    if name == "built-in":  # as a user would: what the drawing shows, the default 20 steps
        editor.prompt.setText("a red circle on a black background")
    else:
        session.steps = 3
    with qtbot.waitSignal(session.changed, timeout=WAIT, check_params_cb=lambda n: n == "reconstruction"):
        _drop(editor, drawing)
    assert editor.views["original"].has_image() and editor.views["reconstruction"].has_image()
    assert "PSNR" in editor.captions["reconstruction"].text()
    if name == "built-in":
        assert session.psnr is not None and session.psnr >= 25
    editor.new_edit.setText("red->blue")
    editor._add()
    assert len(editor.rows) == 1
    with qtbot.waitSignal(session.changed, timeout=WAIT, check_params_cb=lambda n: n == "edited"):
        editor.rows[0].slider.setValue(100)  # not dragged: a full-quality edit at once
    qtbot.waitUntil(lambda: session.edited_artifact is not None
                    and session.edited_artifact.parameters["recipe"]["pairs"] == [["red", "blue", 1.0]], timeout=WAIT)
    assert "red->blue x1" in editor.captions["edited"].text()
    if name == "built-in":  # the circle turns blue
        r, g, b = np.asarray(session.edited, dtype=float)[28:36, 26:34].reshape(-1, 3).mean(axis=0)
        assert b > r
    # quality beside the slider, measured in the background on this image
    qtbot.waitUntil(lambda: session.sliders[0].figures is not None, timeout=WAIT)
    figures = session.sliders[0].figures
    assert 0.0 <= figures["area"] <= 1.0
    assert figures["steady"] is None or -1.0 <= figures["steady"] <= 1.0
    assert figures["scorer"] == ("ShapeEval" if name == "built-in" else "pixels")
    assert editor.rows[0].quality.text() == session.sliders[0].quality != ""
    assert "steady" in editor.rows[0].quality.toolTip()
    out = session.save(str(tmp_path / "edited.png"))
    with Image.open(out) as saved:
        recipe = json.loads(saved.text[RECIPE_CHUNK])
    assert recipe["pairs"] == [["red", "blue", 1.0]] and recipe["encode_method"] == "ddpm-inversion"


def test_found_directions_are_sliders_with_quality(qtbot, make_panel, tiny_sd_folder, drawing):
    panel = make_panel(str(tiny_sd_folder))
    editor = panel.open_image_editor()
    session = editor.session
    session.steps = 3
    with qtbot.waitSignal(session.changed, timeout=WAIT, check_params_cb=lambda n: n == "reconstruction"):
        editor.open_image(str(drawing))
    session.discover("h-space", count=4, components=2)
    session.discover("text", components=2)
    qtbot.waitUntil(lambda: len(session.sliders) == 4, timeout=WAIT)
    assert [s.label for s in session.sliders] == ["PC 1 · bottleneck", "PC 2 · bottleneck", "PC 1 · prompt",
                                                  "PC 2 · prompt"]
    assert len({s.text for s in session.sliders}) == 4  # the two kinds never share a name
    at_once = []  # background measurements run one at a time, so a slider tick never waits for more than one

    def measured() -> bool:
        at_once.append(sum(session.is_measuring(i) for i in range(len(session.sliders))))
        return all(s.figures is not None for s in session.sliders)

    qtbot.waitUntil(measured, timeout=WAIT)
    assert max(at_once) == 1
    for slider, row in zip(session.sliders, editor.rows, strict=True):
        assert slider.figures["kind"] == "direction" and row.quality.text() == slider.quality
    # an h-space direction has no mask; a text direction is masked like any text edit
    assert session.sliders[0].figures["inside"] is None
    # a dragged slider is a draft; the newest value wins
    editor.rows[0].slider.setSliderDown(True)
    for value in (50, 100, 150):
        editor.rows[0].slider.setValue(value)
    editor.rows[0].slider.setSliderDown(False)
    qtbot.waitUntil(lambda: session.edited_artifact is not None
                    and session.edited_artifact.parameters["recipe"]["edits"][0][1] == 1.5
                    and not session.edited_artifact.parameters["recipe"]["draft"], timeout=WAIT)
    editor.rows[0].name.setText("warmth")
    editor.rows[0].name.editingFinished.emit()
    assert session.sliders[0].label == "warmth"
    editor.rows[3].remove_button.click()
    assert len(session.sliders) == 3 and len(editor.rows) == 3


def test_main_window_default_size_shows_every_control_uncut(qtbot, tmp_path, monkeypatch, one_thread):
    """The issue's "left column cut off at the default window size" ("Your im…", "Find ne…"), in
    both modes: every button is at least as wide as its text needs."""
    from studio.qt.main_window import MainWindow

    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    context = StudioContext.create(Settings())
    window = MainWindow(context)
    window.confirm_close = False
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    try:
        assert (window.width(), window.height()) == (1360, 860)
        panel = window.latent_panel
        window.tabs.setCurrentWidget(panel)
        with qtbot.waitSignal(panel.jobFinished, timeout=WAIT):  # loaded: the panel shows what the model has
            panel.plugin_combo.setCurrentIndex(panel.plugin_combo.findData("latent-diffusion"))
        qtbot.waitUntil(lambda: not panel.session.busy, timeout=WAIT)
        assert panel.model_picker.combo.currentText() == "Shapes SD (built in)" or \
            not (default_sd_folder() / "model_index.json").is_file()
        for mode in ("explore", "edit"):
            panel.set_panel_mode(mode)
            qtbot.wait(50)
            page = panel.pages.currentWidget()
            buttons = [b for b in page.findChildren(QAbstractButton) if b.isVisibleTo(page) and b.text()]
            assert buttons
            cut = [b.text() for b in buttons if b.width() < b.sizeHint().width()]
            assert not cut, f"{mode}: cut off at the default window size: {cut}"
            outside = [b.text() for b in buttons if _right_edge_hidden(b)]
            assert not outside, f"{mode}: out of sight at the default window size: {outside}"
        assert not panel.image_editor.isWindow()
    finally:
        window.shutdown()


def _right_edge_hidden(widget) -> bool:
    """Whether ``widget`` reaches past the right edge of the scroll area (or window) it sits in."""
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QScrollArea

    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QScrollArea):
        parent = parent.parentWidget()
    frame = parent.viewport() if parent is not None else widget.window()
    return widget.mapTo(frame, QPoint(widget.width(), 0)).x() > frame.width()


def _cli(capsys, *argv):
    from studio.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_edit_on_tiny_sdxl(capsys, tiny_sdxl_folder, drawing, tmp_path, monkeypatch, one_thread):
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    out_png = tmp_path / "xl.png"
    code, out, err = _cli(capsys, "latent", "edit", str(drawing), "--model", str(tiny_sdxl_folder), "--direction",
                          "red->blue", "--amount", "1", "--also", "+stripes=0.5", "--steps", "3", "--out",
                          str(out_png))
    assert code == 0, err
    with Image.open(out_png) as saved:
        recipe = json.loads(saved.text[RECIPE_CHUNK])
        assert saved.size == (64, 64)
    assert recipe["pairs"] == [["red", "blue", 1.0]] and recipe["concepts"] == [["stripes", 0.5]]
    zero = tmp_path / "zero.png"
    code, _, err = _cli(capsys, "latent", "edit", str(drawing), "--model", str(tiny_sdxl_folder), "--direction",
                        "red->blue", "--amount", "0", "--steps", "3", "--out", str(zero))
    assert code == 0, err
    assert not np.array_equal(np.asarray(Image.open(zero)), np.asarray(Image.open(out_png)))


def test_cli_quality_measures_found_directions(capsys, tiny_sd_folder, tmp_path, monkeypatch, one_thread):
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    model = ("--model", str(tiny_sd_folder))
    h_file, t_file = tmp_path / "h.json", tmp_path / "t.json"
    code, _, err = _cli(capsys, "latent", "discover", "--source", "h-space", "--count", "4", "--components", "2",
                        *model, "--out", str(h_file))
    assert code == 0, err
    code, _, err = _cli(capsys, "latent", "discover", "--source", "text", "--components", "2", *model,
                        "--out", str(t_file))
    assert code == 0, err
    code, out, err = _cli(capsys, "latent", "quality", "--scenes", "1", "--steps", "3", "--directions", str(h_file),
                          "--directions", str(t_file), *model, "--json", str(tmp_path / "q.json"))
    assert code == 0, err
    rows = json.loads((tmp_path / "q.json").read_text())["sliders"]
    assert sorted(rows) == ["h-space:pc1", "h-space:pc2", "text:pc1", "text:pc2"]
    for name, row in rows.items():
        assert row["n"] == 1 and 0.0 <= row["area"] <= 1.0
        line = next(li for li in out.splitlines() if li.startswith(name))
        assert row["grade"] in line
    assert rows["h-space:pc1"]["inside"] is None  # h-space shifts carry no mask
    assert "red->blue" not in out  # only the directions asked about (and the reconstruction)


def test_without_the_diffusion_plugin_the_editor_says_so(tmp_path, monkeypatch, drawing):
    from studio.core.sessions.diffusion_edit import DiffusionEditSession
    from studio.plugin_api import ParamError

    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    registry = Registry()
    registry.add("latent-vae", VectorLatentPlugin)
    context = StudioContext.create(Settings(), registry)
    try:
        session = DiffusionEditSession(context)
        assert session.plugin is None  # never the VAE in its place
        with pytest.raises(ParamError, match="not available"):
            session.set_image(str(drawing))
    finally:
        context.close()


def test_a_slider_tick_stops_a_running_background_sweep(qtbot, make_panel, drawing):
    """The engine runs one job at a time: without preemption a tick waited for a whole sweep (3.3 s
    median in the bench under load); now the sweep is stopped and queued again behind the preview."""
    from studio.core.jobs import JobState

    if not (default_sd_folder() / "model_index.json").is_file():
        pytest.skip("the built-in shapes-sd model is not shipped here")
    panel = make_panel(str(default_sd_folder()))
    editor = panel.open_image_editor()
    session = editor.session
    editor.prompt.setText("a red circle on a black background")
    with qtbot.waitSignal(session.changed, timeout=WAIT, check_params_cb=lambda n: n == "reconstruction"):
        editor.open_image(str(drawing))
    # A draft sweep is only about a second of work, so on a busy machine the GUI thread can see it
    # only once it has ended; each new slider starts another sweep to catch running (at most five).
    # The session measures one slider at a time, and learns that a sweep ended from the engine's
    # events: the next slider is added once it has (else its sweep waits for them, CI: no new job).
    stopped = None
    for index, text in enumerate(("red->blue", "+stripes", "red->green", "+dots", "red->yellow")):
        qtbot.waitUntil(lambda: not any(session.is_measuring(i) for i in range(len(session.sliders))),
                        timeout=WAIT)
        known = set(session.pending)
        session.add_edit(text)
        sweep = next((j for i, j in session.pending.items() if i not in known and j.spec.mode == "quality"), None)
        assert sweep is not None, "adding a slider to an inverted image starts its quality sweep"
        qtbot.waitUntil(lambda sweep=sweep: sweep.state is not JobState.QUEUED, timeout=WAIT)
        if sweep.state is not JobState.RUNNING:
            continue
        tick = session.set_strength(index, 1.0, dragging=True)
        qtbot.waitUntil(lambda tick=tick: tick.state.finished, timeout=WAIT)
        assert sweep.cancel_token.is_set  # the tick asked the running sweep to stop
        if sweep.state is JobState.CANCELLED:
            stopped = index
            break
    assert stopped is not None, "no tick stopped a running sweep"
    qtbot.waitUntil(lambda: session.sliders[stopped].figures is not None, timeout=WAIT)  # measured after all
