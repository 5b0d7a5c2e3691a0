"""Widgets on their own: the param form, the bridge's preview coalescing, the image view."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from PIL import Image

from studio.plugin_api import Param, ParamError, ParamType, Preview, Progress
from studio.qt.bridge import EngineBridge
from studio.qt.widgets.image_view import ImageView
from studio.qt.widgets.param_form import ParamForm
from tests.qt.tiny_plugin import tiny_parameters


def test_param_form_editors_modes_advanced_and_tooltips(qtbot):
    form = ParamForm(tiny_parameters())
    qtbot.addWidget(form)
    form.show()
    form.set_mode("txt2img")
    assert not form.is_shown("init_image") and not form.is_shown("strength")
    assert not form.editor("init_image").isVisible()
    assert form.editor("steps").isVisible()
    form.set_mode("img2img")
    assert form.is_shown("init_image") and form.editor("strength").isVisible()

    # advanced ones are folded away until opened
    assert form.advanced_toggle.isVisible()
    assert not form.editor("batch_count").isVisible()
    form.show_advanced(True)
    assert form.editor("batch_count").isVisible()

    steps = form.editor("steps")
    assert (steps.minimum(), steps.maximum()) == (1, 150)
    assert steps.toolTip() == "Denoising steps."
    assert form.editor("cfg_scale").singleStep() == 0.5
    size = form.editor("size")
    assert size.width_box.singleStep() == 8 and size.width_box.minimum() == 8
    assert [form.editor("scheduler").itemText(i) for i in range(form.editor("scheduler").count())] == \
        ["Euler", "Euler a", "DPM++ 2M", "DDIM"]

    values = form.values()
    assert values["steps"] == 4 and values["size"] == (64, 64) and values["seed"] is None
    assert values["init_image"] is None and values["loras"] == []

    notes = form.set_values({"prompt": "p", "steps": 12, "size": "128x96", "seed": 7, "scheduler": "DDIM",
                             "unknown_key": 1, "strength": 0.25})
    assert notes == ["unknown_key (not a setting of this model)"]
    values = form.values()
    assert (values["prompt"], values["steps"], values["size"], values["seed"], values["scheduler"]) == \
        ("p", 12, (128, 96), 7, "DDIM")
    assert form.set_values({"scheduler": "Nope"})  # not offered -> a note, value kept
    assert form.values()["scheduler"] == "DDIM"


def test_seed_field_blank_is_random_and_dice_clears(qtbot):
    form = ParamForm([Param("seed", ParamType.SEED)])
    qtbot.addWidget(form)
    seed = form.editor("seed")
    seed.set_value(99)
    assert form.values()["seed"] == 99
    seed.dice.click()
    assert form.values()["seed"] is None
    seed.line.setText("-1")
    assert form.values()["seed"] is None
    seed.set_last_seed(1234)
    seed.reuse.click()
    assert form.values()["seed"] == 1234


def test_param_form_shows_param_error_next_to_the_field(qtbot):
    form = ParamForm([Param("steps", ParamType.INT, 4, minimum=1), Param("prompt", ParamType.TEXT, "")])
    qtbot.addWidget(form)
    form.show()
    form.show_error(ParamError("Steps must be at least 1 (got 0)."))
    assert form.message.isVisible() and "at least 1" in form.message.text()
    assert form.invalid_fields() == ["steps"]
    form.editor("steps").setValue(3)
    assert form.invalid_fields() == []
    form.clear_error()
    assert not form.message.isVisible()


def test_choices_can_be_limited_by_the_loaded_model(qtbot):
    form = ParamForm([Param("scheduler", ParamType.CHOICE, "A", choices=("A", "B", "C"))])
    qtbot.addWidget(form)
    form.set_values({"scheduler": "C"})
    form.set_choices("scheduler", ["A", "B"])
    assert form.values()["scheduler"] == "A"
    form.set_choices("scheduler", None)
    assert form.editor("scheduler").count() == 3


def test_bridge_coalesces_previews_newest_wins(qtbot, make_context):
    context = make_context()
    bridge = EngineBridge(context.engine)
    received, progress, threads = [], [], set()
    bridge.preview.connect(lambda job, event: (received.append(event.step), threads.add(threading.current_thread())))
    bridge.progress.connect(lambda job, event: progress.append(event.step))
    job = SimpleNamespace(id="fake")
    image = Image.new("RGB", (8, 8))

    def worker():  # the engine's worker thread, while the GUI thread is busy
        for step in range(1, 51):
            bridge._on_engine_event(job, Progress(step, 50))
            bridge._on_engine_event(job, Preview(step, image=image))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: bool(received), timeout=5000)
    assert received == [50]  # only the newest preview, no stale backlog
    assert progress == [50]
    assert bridge.dropped_previews == 49
    assert threads == {threading.main_thread()}
    bridge.close()
    bridge._on_engine_event(job, Preview(51, image=image))  # after close: ignored
    qtbot.wait(20)
    assert received == [50]


def test_image_view_fits_and_zooms(qtbot):
    view = ImageView()
    qtbot.addWidget(view)
    view.resize(400, 300)
    view.show()
    assert not view.has_image()
    view.set_image(Image.new("RGB", (800, 600), (200, 10, 10)), "caption")
    assert view.has_image() and view.fit
    scale = view.transform().m11()
    assert 0.3 < scale < 0.6  # scaled down to fit
    view.actual_size()
    assert view.transform().m11() == 1.0 and not view.fit
    view.set_fit(True)
    assert view.transform().m11() < 1.0
