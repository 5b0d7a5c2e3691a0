"""The Latent panel with qtbot on the real engine and the real latent plugins (tiny models):
sliders -> preview; keep -> cosine shown; drop an image -> reconstruction + PSNR; walk -> strip."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from studio.core.context import StudioContext
from studio.core.registry import Registry
from studio.core.settings import Settings
from studio_latent import DiffusionLatentPlugin, VectorLatentPlugin

WAIT = 60_000


@pytest.fixture
def make_panel(qtbot, one_thread):
    from studio.qt.bridge import EngineBridge
    from studio.qt.panels.latent import LatentPanel

    made = []

    def factory(model: str, plugin_id: str = "latent-vae"):
        registry = Registry()
        registry.add("latent-vae", VectorLatentPlugin)
        registry.add("latent-diffusion", DiffusionLatentPlugin)
        context = StudioContext.create(Settings(), registry)
        bridge = EngineBridge(context.engine)
        panel = LatentPanel(context, bridge)
        bridge.feed(panel.session)  # what the main window wires
        made.append((panel, bridge, context))
        if plugin_id != panel.session.plugin.id:
            panel.plugin_combo.setCurrentIndex(panel.plugin_combo.findData(plugin_id))
        panel.model_picker.combo.setEditText(model)
        panel.resize(1300, 900)
        qtbot.addWidget(panel)
        with qtbot.waitSignal(panel.jobFinished, timeout=WAIT):
            panel.show()  # loads lazily, on first show
        return panel

    yield factory
    for panel, bridge, context in made:
        panel.shutdown()
        bridge.close()
        context.close()


def _wait_preview(qtbot, panel):
    with qtbot.waitSignal(panel.previewShown, timeout=WAIT):
        pass


def test_sliders_update_the_preview(qtbot, make_panel, tiny_vae_folder):
    panel = make_panel(str(tiny_vae_folder))
    for name in ("x", "y", "size", "hue", "pc0"):
        assert name in panel.sliders.rows
    qtbot.waitUntil(lambda: panel.session.state.preview is not None, timeout=WAIT)
    before = np.asarray(panel.session.state.preview).copy()
    base = np.array(panel.session.state.preview_latent)
    row = panel.sliders.rows["x"]
    with qtbot.waitSignal(panel.previewShown, timeout=WAIT):
        for pos in range(120, 200, 10):  # a drag: many ticks, newest wins
            row.slider.setValue(pos)
    qtbot.waitUntil(lambda: panel.session.state.preview_latent is not None and
                    np.allclose(np.array(panel.session.state.preview_latent) - base,
                                panel.session.amounts["x"] * panel.session.directions[0].scale *
                                panel.session.directions[0].vector, atol=1e-6), timeout=WAIT)
    assert panel.session.amounts["x"] == pytest.approx(row.amount())
    assert not np.array_equal(np.asarray(panel.session.state.preview), before)
    assert panel.preview_view.has_image()
    # two sliders combine
    with qtbot.waitSignal(panel.previewShown, timeout=WAIT):
        panel.sliders.rows["pc1"].slider.setValue(150)
    panel.reset_sliders()
    qtbot.waitUntil(lambda: np.allclose(np.array(panel.session.state.preview_latent), base), timeout=WAIT)


def test_keep_fixed_shows_cosines(qtbot, make_panel, tiny_vae_folder):
    panel = make_panel(str(tiny_vae_folder))
    panel.sliders.rows["y"].keep.setChecked(True)
    with qtbot.waitSignal(panel.previewShown, timeout=WAIT):
        panel.sliders.rows["x"].slider.setValue(160)
    text = panel.cosine_label.text()
    assert "x vs kept y" in text and ("+0.000" in text or "-0.000" in text)
    rows = panel.session.cosine_rows()
    assert rows and abs(rows[0][3]) < 1e-9
    qtbot.waitUntil(lambda: "x" in panel.session.state.conditional, timeout=WAIT)
    assert abs(panel.session.state.conditional["x"]["cos_after"]["y"]) < 1e-6


def test_drop_an_image_shows_reconstruction_and_psnr(qtbot, make_panel, tiny_vae_folder, scene_png):
    panel = make_panel(str(tiny_vae_folder))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(scene_png))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    panel.dropEvent(event)
    qtbot.waitUntil(lambda: "dB" in panel.psnr_label.text(), timeout=WAIT)
    assert panel.original_image.pixmap() is not None and not panel.original_image.pixmap().isNull()
    assert not panel.recon_image.pixmap().isNull()
    assert panel.session.base_latent is not None and panel.session.state.psnr > 5
    # the same sliders now edit the dropped image
    rec = np.asarray(panel.session.state.reconstruction)
    with qtbot.waitSignal(panel.previewShown, timeout=WAIT):
        panel.sliders.rows["x"].slider.setValue(180)
    qtbot.waitUntil(lambda: not np.array_equal(np.asarray(panel.session.state.preview), rec), timeout=WAIT)


def test_walk_fills_the_strip_and_exports(qtbot, make_panel, tiny_vae_folder, tmp_path):
    panel = make_panel(str(tiny_vae_folder))
    panel.walk_from.setText("1")
    panel.walk_to.setText("7")
    panel.frames_spin.setValue(5)
    panel.walk_button.click()
    qtbot.waitUntil(lambda: panel.strip.count() == 5, timeout=WAIT)
    assert "frames" in panel.walk_info.text() and panel.export_buttons["gif"].isEnabled()
    for name in ("walk.gif", "walk.mp4"):
        panel.export_walk(str(tmp_path / name))
        assert (tmp_path / name).stat().st_size > 0
    panel.export_walk(str(tmp_path / "frames"))
    assert len(list((tmp_path / "frames").glob("*.png"))) == 5


def test_quality_table_and_fitted_direction(qtbot, make_panel, tiny_vae_folder):
    panel = make_panel(str(tiny_vae_folder))
    with qtbot.waitSignal(panel.jobFinished, timeout=WAIT, check_params_cb=lambda p: p == "quality"):
        panel.measure_quality(bases=1, sweep=3)
    assert panel.quality_table.rowCount() == len(panel.session.state.quality) > 0
    with qtbot.waitSignal(panel.jobFinished, timeout=WAIT, check_params_cb=lambda p: p == "fit"):
        panel.session.fit("boundary", "learned-triangle", factor="triangle", count=48)
    qtbot.waitUntil(lambda: any(n.endswith("learned-triangle") for n in panel.sliders.rows), timeout=WAIT)


def test_bad_input_shows_a_message_not_a_crash(qtbot, make_panel, tiny_vae_folder, tmp_path):
    panel = make_panel(str(tiny_vae_folder))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    with qtbot.waitSignal(panel.jobFinished, timeout=WAIT, check_params_cb=lambda purpose: purpose == "encode"):
        panel.encode_image(str(bad))
    assert "Cannot read" in panel.message.text()


def test_diffusion_pair_slider_and_walk(qtbot, make_panel, tiny_sd_folder):
    panel = make_panel(str(tiny_sd_folder), plugin_id="latent-diffusion")
    assert panel.diffusion_box.isVisibleTo(panel) and not panel.quality_box.isVisibleTo(panel)
    panel.form.editor("steps").setValue(2)
    qtbot.waitUntil(lambda: panel.session.state.preview is not None, timeout=WAIT)
    before = np.asarray(panel.session.state.preview).copy()
    with qtbot.waitSignal(panel.previewShown, timeout=WAIT):
        panel.strength_slider.setValue(100)
    qtbot.waitUntil(lambda: not np.array_equal(np.asarray(panel.session.state.preview), before), timeout=WAIT)
    panel.walk_to.setText("a blue square")
    panel.frames_spin.setValue(3)
    panel.walk_button.click()
    qtbot.waitUntil(lambda: panel.strip.count() == 3, timeout=WAIT)


def test_diffusion_panel_opens_the_image_editor_on_its_model(qtbot, make_panel, tiny_sd_folder, tmp_path):
    from PIL import Image, ImageDraw

    panel = make_panel(str(tiny_sd_folder), plugin_id="latent-diffusion")
    assert panel.image_editor_button.isVisibleTo(panel)
    panel.image_editor_button.click()
    editor = panel.image_editor
    qtbot.addWidget(editor)
    assert editor.isVisible() and editor.session.model == panel.session.model
    drawing = tmp_path / "mine.png"
    image = Image.new("RGB", (64, 64), (10, 10, 10))
    ImageDraw.Draw(image).ellipse((18, 22, 42, 46), fill=(220, 30, 30))
    image.save(drawing)
    editor.session.steps = 3
    with qtbot.waitSignal(editor.session.changed, timeout=WAIT, check_params_cb=lambda n: n == "reconstruction"):
        editor.open_image(str(drawing))
    assert "PSNR" in editor.captions["reconstruction"].text()
