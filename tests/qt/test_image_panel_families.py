"""The Image panel on the real diffusers plugin with tiny family models: the form shows only what
the loaded model honours, the transformer / UNet weights picker reaches the load and the
metadata, and the status bar shows what the load cost.  The models are built in the test
process (tests/fixtures); the Qt layer itself imports no torch — the engine's worker does."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from studio.core.jobs import JobState

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in ("studio_diffusers", "diffusers", "torch")),
    reason="the diffusers plugin or its libraries are not installed")

TIMEOUT = 240_000


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    from safetensors.torch import save_file

    from tests.fixtures import families
    from tests.fixtures.tiny_diffusers import build_sd

    root = tmp_path_factory.mktemp("panel-models")
    klein = families.build_flux2_klein(root / "klein-distilled", distilled=True)
    weights = root / "klein-transformer.safetensors"
    save_file(families.denoiser_state(klein), str(weights))
    return {"klein": klein, "klein_file": weights, "sd": build_sd(root / "sd15")}


@pytest.fixture
def window(qtbot):
    from studio.core.context import StudioContext
    from studio.core.registry import Registry
    from studio.core.settings import Settings
    from studio.qt.main_window import MainWindow
    from studio_diffusers import DiffusersPlugin

    registry = Registry()
    registry.add("diffusers", DiffusersPlugin)
    main = MainWindow(StudioContext.create(Settings(device="cpu"), registry))
    main.confirm_close = False
    qtbot.addWidget(main)
    main.show()
    qtbot.waitExposed(main)
    yield main
    main.shutdown()


def generate(qtbot, panel, values: dict) -> object:
    panel.form.set_values(values)
    with qtbot.waitSignal(panel.imageSaved, timeout=TIMEOUT):
        job = panel.generate()
    assert job is not None, panel.message.text()
    qtbot.waitUntil(lambda: job.done.is_set(), timeout=TIMEOUT)
    panel.bridge.flush()
    QApplication.processEvents()
    assert job.state is JobState.DONE, panel.message.text()
    return job


RUN = {"prompt": "a red circle", "seed": 3, "steps": 2, "size": (64, 64), "preview_every": 0}


def test_form_shows_only_what_the_loaded_model_honours(qtbot, window, models):
    panel = window.image_panel
    form = panel.form
    panel.set_model_source(str(models["klein"]))
    assert form.is_shown("cfg_scale") and form.is_shown("negative_prompt")  # nothing is known before a load
    job = generate(qtbot, panel, RUN)
    assert job.spec.request["cfg_scale"] is None  # the form's CFG 7 was never set by the user
    assert panel.message.kind != "warning" or "ignored" not in panel.message.text()

    # A step-distilled Flux.2 klein: no CFG, no negative prompt, no distilled guidance.
    for name in ("cfg_scale", "negative_prompt", "distilled_guidance"):
        assert not form.is_shown(name)
    assert not form.editor("cfg_scale").isVisible() and not form.editor("negative_prompt").isVisible()
    assert form.editor("steps").isVisible() and form.editor("prompt").isVisible()
    note = form.unsupported_note
    assert note.isVisible() and "CFG scale" in note.text() and "Negative prompt" in note.text()
    assert "step-distilled" in note.toolTip()
    # its modes: no img2img; flow-matching samplers only
    assert not panel.mode_buttons["img2img"].isEnabled() and panel.mode_buttons["edit"].isEnabled()
    sampler = form.editor("scheduler")
    offered = [sampler.itemText(i) for i in range(sampler.count())]
    assert offered and all(name in ("default", "Euler", "Euler a") for name in offered)

    # The status bar says what the load cost, in human units.
    assert window.memory_label.isVisible()
    assert window.memory_label.text().startswith("Load: peak RSS ") and "iB" in window.memory_label.text()
    assert "Peak RSS during the load" in window.memory_label.toolTip()

    # A value the user set before, now ignored by this model, is still said in the message bar.
    generate(qtbot, panel, {"negative_prompt": "blurry"})
    assert panel.message.kind == "warning" and "negative prompt was ignored" in panel.message.text()
    assert "What you set for Negative prompt is kept" in note.text()

    # SD 1.5 for contrast: CFG and negative prompt are back, img2img too, more samplers.
    panel.set_model_source(str(models["sd"]))
    assert form.is_shown("cfg_scale") and not form.unsupported_note.isVisible()
    generate(qtbot, panel, {})
    assert form.is_shown("cfg_scale") and form.is_shown("negative_prompt") and not form.is_shown("distilled_guidance")
    assert panel.mode_buttons["img2img"].isEnabled()
    assert sampler.count() > len(offered)


def test_transformer_picker_sets_the_load_option_and_is_recorded(qtbot, window, models):
    panel = window.image_panel
    picker = panel.weights_picker
    panel.set_model_source(str(models["klein"]))
    assert not picker.clear_button.isEnabled()

    # typed into the field, taken on Enter / leaving it
    picker.field.setText(str(models["klein_file"].parent / "missing.gguf"))
    picker.field.editingFinished.emit()
    assert panel.session.transformer.endswith("missing.gguf") and picker.clear_button.isEnabled()
    panel.form.set_values(RUN)
    assert panel.generate() is None
    assert panel.message.kind == "error" and "not found" in panel.message.text()

    panel.set_transformer_file(str(models["klein_file"]))
    job = generate(qtbot, panel, {})
    assert job.spec.options.transformer == str(models["klein_file"].resolve())
    assert panel.session.results[0].parameters["transformer"] == models["klein_file"].name
    assert models["klein_file"].name in window.memory_label.toolTip()

    qtbot.mouseClick(picker.clear_button, Qt.MouseButton.LeftButton)
    assert panel.session.transformer == "" and picker.field.text() == ""
    assert panel.session.job_spec().options.transformer == ""
