"""The Image panel end to end: form → engine → bridge → widgets, with the tiny in-test plugin."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication
from PySide6.QtWidgets import QApplication

from studio.core.jobs import JobState
from studio.core.metadata import read_png_parameters

TIMEOUT = 15000


def wait_finished(qtbot, panel, job, timeout=TIMEOUT):
    """Wait until ``job`` finished and the bridge delivered its last state to the GUI."""
    qtbot.waitUntil(lambda: job.done.is_set(), timeout=timeout)
    # ``done`` is set after the final StateChanged was emitted, so it is in the bridge's inbox.
    panel.bridge.flush()
    QApplication.processEvents()
    assert panel.active_job is not job


def click_generate(qtbot, panel):
    qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    return panel.last_job


def write_png(path: Path, text: str | None, size=(64, 48)) -> Path:
    info = PngInfo()
    if text is not None:
        info.add_text("parameters", text)
    Image.new("RGB", size, (40, 90, 200)).save(path, pnginfo=info)
    return path


# --------------------------------------------------------------------------- generate


def test_prompt_generate_previews_result_gallery_png(make_window, qtbot, tiny_plugin):
    window = make_window()
    panel = window.image_panel
    main_thread = threading.current_thread()
    previews, progress_texts, threads = [], [], set()

    def on_preview(job, event):
        previews.append(event.step)
        threads.add(threading.current_thread())

    panel.bridge.preview.connect(on_preview)
    panel.bridge.progress.connect(lambda job, event: progress_texts.append(panel.progress.format()))
    qtbot.keyClicks(panel.form.editor("prompt"), "a red circle")
    panel.form.editor("steps").setValue(5)

    with qtbot.waitSignal(panel.imageSaved, timeout=TIMEOUT) as saved:
        job = click_generate(qtbot, panel)
    wait_finished(qtbot, panel, job)

    assert job.state is JobState.DONE
    assert previews, "no Preview reached the GUI"
    assert threads == {main_thread}, "widgets must only be touched on the GUI thread"
    assert any(re.match(r"\d+/5", text) for text in progress_texts)
    assert any("ETA" in text for text in progress_texts)
    assert panel.progress.format().startswith("Done")

    _job, event = saved.args
    path = Path(event.path)
    assert path.exists() and path.suffix == ".png"
    with Image.open(path) as image:
        text = image.info["parameters"]
    assert "a red circle" in text and "Seed:" in text
    assert f"Seed: {event.artifact.seed}" in text

    assert panel.gallery.count() == 1
    assert panel.gallery.records()[0].path == str(path)
    assert panel.image_view.has_image()
    assert str(event.artifact.seed) in panel.run_info.text()  # the seed actually used
    seed_editor = panel.form.editor("seed")
    assert seed_editor.value() is None and seed_editor.last_seed == event.artifact.seed

    # The gallery is persisted through the history: a fresh window sees the result.
    again = make_window()
    assert again.image_panel.gallery.count() == 1


def test_generate_never_blocks_the_ui(make_panel, qtbot, tiny_plugin):
    tiny_plugin.load_delay = 1.0  # a slow model load happens on the engine thread
    panel = make_panel()
    start = time.perf_counter()
    job = click_generate(qtbot, panel)
    assert time.perf_counter() - start < 0.5
    ticks = []
    timer_start = time.perf_counter()
    qtbot.waitUntil(lambda: ticks.append(time.perf_counter()) or job.done.is_set(), timeout=TIMEOUT)
    gaps = [b - a for a, b in zip([timer_start, *ticks], ticks, strict=False)]
    assert max(gaps) < 0.5, f"event loop stalled for {max(gaps):.2f}s"
    wait_finished(qtbot, panel, job)


def test_interrupt_keeps_partial_result(make_panel, qtbot, tiny_plugin):
    tiny_plugin.step_delay = 0.05
    panel = make_panel()
    panel.form.set_values({"prompt": "slow one", "steps": 60})
    with qtbot.waitSignal(panel.bridge.progress, timeout=TIMEOUT,
                          check_params_cb=lambda job, event: event.step >= 2):
        job = click_generate(qtbot, panel)
    assert panel.interrupt_button.isEnabled()
    with qtbot.waitSignal(panel.imageSaved, timeout=TIMEOUT) as saved:
        qtbot.mouseClick(panel.interrupt_button, Qt.MouseButton.LeftButton)
    wait_finished(qtbot, panel, job)
    assert job.state is JobState.INTERRUPTED
    assert job.result is not None and job.result.interrupted
    _job, event = saved.args
    assert Path(event.path).exists()
    assert event.artifact.parameters["interrupted_at"] < 60
    assert panel.gallery.count() == 1
    assert "partial" in panel.progress.format()
    assert not panel.interrupt_button.isEnabled()


def test_queue_two_jobs_then_remove_one(make_window, qtbot, tiny_plugin):
    window = make_window()
    panel = window.image_panel
    engine = window.context.engine
    tiny_plugin.gate.clear()  # hold the first job between steps
    panel.form.set_values({"prompt": "first"})
    first = click_generate(qtbot, panel)
    qtbot.waitUntil(lambda: engine.current is first and first.state is JobState.RUNNING, timeout=TIMEOUT)
    panel.form.set_values({"prompt": "second"})
    second = click_generate(qtbot, panel)
    panel.form.set_values({"prompt": "third"})
    third = click_generate(qtbot, panel)

    qtbot.waitUntil(lambda: len(panel.queue_view.rows) == 2, timeout=TIMEOUT)
    assert [row.job for row in panel.queue_view.rows] == [second, third]
    assert panel.generate_button.text() == "Add to queue"
    qtbot.waitUntil(lambda: window.queue_label.text() == "Queue: 2 · 1 running", timeout=TIMEOUT)

    qtbot.mouseClick(panel.queue_view.rows[1].remove_button, Qt.MouseButton.LeftButton)
    assert engine.queued() == [second]
    qtbot.waitUntil(lambda: len(panel.queue_view.rows) == 1, timeout=TIMEOUT)

    tiny_plugin.gate.set()
    wait_finished(qtbot, panel, second)
    assert first.state is JobState.DONE and second.state is JobState.DONE
    assert third.state is JobState.CANCELLED
    assert [run["prompt"] for run in tiny_plugin.runs] == ["first", "second"]
    qtbot.waitUntil(lambda: panel.queue_view.isHidden(), timeout=TIMEOUT)
    assert panel.gallery.count() == 2
    assert panel.generate_button.text() == "Generate"


# --------------------------------------------------------------------------- errors


def test_param_error_shows_message_and_queues_nothing(make_panel, qtbot, tiny_plugin):
    panel = make_panel()
    engine = panel.context.engine
    # a size the spin boxes allow but the spec rejects (not a multiple of 8)
    panel.form.editor("size").width_box.setValue(65)
    assert click_generate(qtbot, panel) is None
    assert "multiple of 8" in panel.message.text()
    assert panel.message.isVisible() and panel.message.kind == "error"
    assert panel.form.invalid_fields() == ["size"]
    assert engine.queued() == [] and engine.current is None
    assert panel.context.history.unfinished() == []

    # editing the field clears the outline
    panel.form.editor("size").width_box.setValue(64)
    assert panel.form.invalid_fields() == []

    # img2img without an init image
    panel.set_mode("img2img")
    assert click_generate(qtbot, panel) is None
    assert "Init image is required" in panel.message.text()
    assert panel.form.invalid_fields() == ["init_image"]

    # no model
    panel.set_mode("txt2img")
    panel.model_picker.combo.setEditText("")
    assert click_generate(qtbot, panel) is None
    assert "Choose a model" in panel.message.text()
    assert engine.queued() == [] and tiny_plugin.runs == []


def test_steps_out_of_range_cannot_be_entered(make_panel):
    panel = make_panel()
    notes = panel.form.set_values({"steps": 0})
    assert panel.form.values()["steps"] == 1
    assert notes and "out of range" in notes[0]


def test_load_failure_is_shown_in_the_panel(make_panel, qtbot):
    panel = make_panel()
    panel.model_picker.combo.setEditText("missing-model")
    with qtbot.waitSignal(panel.bridge.failed, timeout=TIMEOUT):
        job = click_generate(qtbot, panel)
    wait_finished(qtbot, panel, job)
    assert job.state is JobState.FAILED
    assert "Could not load the model" in panel.message.text()
    assert "missing-model" in panel.message.text()
    assert panel.progress.format() == "Failed"


# --------------------------------------------------------------------------- restore


PNG_TEXT = ("a blue square\nNegative prompt: blurry\n"
            "Steps: 7, Sampler: Euler a, CFG scale: 4.5, Seed: 1234, Size: 64x48, Model: tiny-default, "
            "Clip skip: 2")


def _drop(target, path: Path):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, enter)
    drop = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, drop)
    return enter, drop


def _assert_restored(panel):
    values = panel.form.values()
    assert values["prompt"] == "a blue square"
    assert values["negative_prompt"] == "blurry"
    assert values["steps"] == 7
    assert values["cfg_scale"] == pytest.approx(4.5)
    assert values["seed"] == 1234
    assert values["size"] == (64, 48)
    assert values["scheduler"] == "Euler a"


def test_drop_png_restores_parameters(make_panel, tmp_path):
    panel = make_panel()
    png = write_png(tmp_path / "from-a1111.png", PNG_TEXT)
    panel.form.set_values({"prompt": "something else", "steps": 20})
    enter, drop = _drop(panel, png)
    assert enter.isAccepted() and drop.isAccepted()
    _assert_restored(panel)
    assert "Restored" in panel.message.text()
    assert "Clip skip" in panel.message.text()  # what was ignored is said
    assert panel.model_source() == "tiny-default"
    assert panel.image_view.has_image()


def test_drop_on_the_prompt_field_restores_instead_of_pasting_the_path(make_panel, tmp_path):
    panel = make_panel()
    png = write_png(tmp_path / "onto-prompt.png", PNG_TEXT)
    _drop(panel.form.editor("prompt").viewport(), png)
    _assert_restored(panel)


def test_drop_on_the_init_image_field_sets_the_init_image(make_panel, tmp_path):
    panel = make_panel()
    panel.set_mode("inpaint")
    png = write_png(tmp_path / "init.png", PNG_TEXT)
    _drop(panel.form.editor("init_image").line, png)
    assert panel.form.values()["init_image"] == str(png)
    assert panel.form.values()["prompt"] == ""  # nothing restored
    assert panel.mask_canvas.image is not None
    other = write_png(tmp_path / "other.png", None, size=(32, 32))
    _drop(panel.mask_canvas.surface, other)
    assert panel.form.values()["init_image"] == str(other)
    assert panel.mask_canvas.image.width() == 32


def test_drop_png_without_parameters_says_so(make_panel, tmp_path):
    panel = make_panel()
    png = write_png(tmp_path / "plain.png", None)
    _drop(panel, png)
    assert "no generation parameters" in panel.message.text()


def test_file_open_restores_parameters(make_window, tmp_path, monkeypatch):
    window = make_window()
    png = write_png(tmp_path / "open-me.png", PNG_TEXT)
    monkeypatch.setattr("studio.qt.main_window.QFileDialog.getOpenFileName",
                        staticmethod(lambda *args, **kwargs: (str(png), "")))
    window.tabs.setCurrentIndex(1)
    window.open_action.trigger()
    assert window.tabs.currentWidget() is window.image_panel
    _assert_restored(window.image_panel)


def test_gallery_click_restores_and_shows(make_panel, qtbot):
    panel = make_panel()
    panel.form.set_values({"prompt": "alpha", "seed": 42, "steps": 3})
    with qtbot.waitSignal(panel.imageSaved, timeout=TIMEOUT):
        job = click_generate(qtbot, panel)
    wait_finished(qtbot, panel, job)
    panel.form.set_values({"prompt": "beta", "seed": None, "steps": 9})
    panel.image_view.clear()

    item = panel.gallery.item(0)
    rect = panel.gallery.visualItemRect(item)
    qtbot.mouseClick(panel.gallery.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    values = panel.form.values()
    assert values["prompt"] == "alpha" and values["seed"] == 42 and values["steps"] == 3
    assert panel.image_view.has_image()

    record = panel.gallery.records()[0]
    text = panel.gallery.copy_parameters(record)
    assert "alpha" in text and "Seed: 42" in text
    assert QGuiApplication.clipboard().text() == text


# --------------------------------------------------------------------------- inpaint and LoRA


def test_inpaint_mask_is_painted_and_passed(make_panel, qtbot, tiny_plugin, tmp_path):
    panel = make_panel()
    init = write_png(tmp_path / "init.png", None, size=(64, 64))
    panel.set_mode("inpaint")
    assert panel.tabs.currentWidget() is panel.mask_canvas
    panel.form.editor("init_image").set_value(str(init))
    assert panel.mask_canvas.image is not None and panel.mask_canvas.image.width() == 64

    assert click_generate(qtbot, panel) is None
    assert "mask is empty" in panel.message.text()

    panel.mask_canvas.set_brush_size(8)
    surface = panel.mask_canvas.surface
    qtbot.mousePress(surface, Qt.MouseButton.LeftButton, pos=surface.rect().center())
    qtbot.mouseRelease(surface, Qt.MouseButton.LeftButton, pos=surface.rect().center())
    panel.mask_canvas.stroke(QPointF(4, 4), QPointF(12, 4))
    assert not panel.mask_canvas.is_empty()

    with qtbot.waitSignal(panel.imageSaved, timeout=TIMEOUT):
        job = click_generate(qtbot, panel)
    wait_finished(qtbot, panel, job)
    request = tiny_plugin.runs[0]
    assert request["mode"] == "inpaint" and request["init_image"] == str(init)
    with Image.open(request["mask_image"]) as mask:
        mask = mask.convert("L")
        assert mask.size == (64, 64)
        assert mask.getpixel((32, 32)) > 200  # the click in the middle
        assert mask.getpixel((8, 4)) > 200  # the stroke
        assert mask.getpixel((60, 60)) == 0
    panel.mask_canvas.clear()
    assert panel.mask_canvas.is_empty()


def test_lora_list_feeds_the_loras_param(make_panel, qtbot, tiny_plugin, tmp_path):
    panel = make_panel()
    first, second = tmp_path / "ink-style.safetensors", tmp_path / "watercolor.safetensors"
    first.write_bytes(b"x")
    second.write_bytes(b"y")
    panel.lora_list.add(str(first), 0.8)
    panel.lora_list.add(str(second))
    assert panel.form.values()["loras"] == [{"path": str(first), "weight": 0.8},
                                            {"path": str(second), "weight": 1.0}]
    with qtbot.waitSignal(panel.imageSaved, timeout=TIMEOUT) as saved:
        job = click_generate(qtbot, panel)
    wait_finished(qtbot, panel, job)
    assert tiny_plugin.runs[0]["loras"] == [{"path": str(first), "weight": 0.8},
                                            {"path": str(second), "weight": 1.0}]
    parsed = read_png_parameters(str(saved.args[1].path))
    assert "ink-style" in parsed["lora_hashes"]
    panel.lora_list.remove(panel.lora_list._rows[0])
    assert panel.form.values()["loras"] == [{"path": str(second), "weight": 1.0}]


def test_use_as_init_switches_to_img2img(make_panel, qtbot):
    panel = make_panel()
    with qtbot.waitSignal(panel.imageSaved, timeout=TIMEOUT):
        job = click_generate(qtbot, panel)
    wait_finished(qtbot, panel, job)
    record = panel.gallery.records()[0]
    panel.use_as_init(record)
    assert panel.mode() == "img2img"
    assert panel.form.values()["init_image"] == record.path
    assert panel.form.is_shown("strength")


def test_panel_starts_with_the_models_own_defaults(make_panel):
    """A model that says what suits it (its native size) gets it in the form before it loads."""
    from studio.plugin_api import ModelChoice
    from tests.qt.tiny_plugin import TinyImagePlugin

    class NativeSizePlugin(TinyImagePlugin):
        def models(self):
            return [ModelChoice("tiny-64", "Tiny 64", defaults={"size": (64, 48)}),
                    ModelChoice("tiny-plain", "Tiny plain")]

    panel = make_panel(plugin=NativeSizePlugin())
    assert panel.form.values()["size"] == (64, 48)


def test_modes_the_loaded_model_lacks_are_disabled(make_panel, qtbot):
    from tests.qt.tiny_plugin import TinyImagePlugin, TinyModel

    class TextOnlyPlugin(TinyImagePlugin):
        def load(self, source, options, progress):
            model = TinyModel(self, source)
            model.modes = ("txt2img",)  # with defaults and choices: the ModelHints capability
            return model

    panel = make_panel(plugin=TextOnlyPlugin())
    assert panel.mode_buttons["inpaint"].isEnabled()  # nothing loaded yet: every mode is offered
    job = click_generate(qtbot, panel)
    wait_finished(qtbot, panel, job)
    assert panel.mode_buttons["txt2img"].isEnabled()
    assert not panel.mode_buttons["img2img"].isEnabled() and not panel.mode_buttons["inpaint"].isEnabled()
    assert "not supported" in panel.mode_buttons["inpaint"].toolTip()


def test_controls_the_loaded_model_ignores_are_hidden_and_its_load_cost_is_shown(make_window, qtbot):
    """A plugin's ReportsUnsupported / ReportsLoadMemory reach the form and the status bar."""
    from tests.qt.tiny_plugin import TinyImagePlugin, TinyModel

    class NoCfgPlugin(TinyImagePlugin):
        def load(self, source, options, progress):
            model = TinyModel(self, source)
            model.unsupported = {"cfg_scale": "this painter has no guidance"}
            model.load_memory = {"peak_rss_bytes": 3 * 2**30, "peak_vram_bytes": 1536 * 2**20, "seconds": 0.5}
            return model

    window = make_window(plugin=NoCfgPlugin())
    panel = window.image_panel
    assert panel.form.is_shown("cfg_scale") and not window.memory_label.isVisible()
    job = click_generate(qtbot, panel)
    wait_finished(qtbot, panel, job)
    assert not panel.form.is_shown("cfg_scale") and not panel.form.editor("cfg_scale").isVisible()
    assert panel.form.is_shown("negative_prompt") and panel.form.editor("steps").isVisible()
    assert panel.form.unsupported_note.text() == "Not used by this model: CFG scale."
    assert panel.form.unsupported_note.toolTip() == "CFG scale: this painter has no guidance"
    assert window.memory_label.isVisible()
    assert window.memory_label.text() == "Load: peak RSS 3 GiB · VRAM 1.5 GiB"
    assert "Load time: 0.5 s" in window.memory_label.toolTip()
    # Another model: nothing is known about it until it loads, so every control is back.
    panel.set_model_source("tiny-other")
    assert panel.form.is_shown("cfg_scale") and not panel.form.unsupported_note.isVisible()
