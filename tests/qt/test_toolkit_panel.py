"""The Image panel with the real diffusers plugin: a sketch through a ControlNet, a reference image, hires fix
and a weighted prompt, all from the form; the control map preview; the saved PNG's metadata read back."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.core.jobs import JobState

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in ("studio_diffusers", "diffusers", "torch")),
    reason="the diffusers plugin or its libraries are not installed")

TIMEOUT = 240_000


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from tests.fixtures import tiny_controlnets, tiny_diffusers, tiny_ip_adapter

    root = tmp_path_factory.mktemp("toolkit-panel")
    sd = tiny_diffusers.build_sd(root / "sd")
    reference = root / "reference.png"
    Image.fromarray((np.random.default_rng(3).random((48, 48, 3)) * 255).astype(np.uint8)).save(reference)
    return {"sd": sd, "cn": tiny_controlnets.build_controlnet(root / "cn", sd),
            "sketch": tiny_controlnets.scribble(root / "sketch.png", 128),
            "adapter": tiny_ip_adapter.build_ip_adapter(root / "ip", sd), "reference": reference}


def test_sketch_reference_hires_and_weights_from_the_panel(qtbot, built):
    from studio.core.context import StudioContext
    from studio.core.metadata import read_png_parameters
    from studio.core.registry import Registry
    from studio.core.settings import Settings
    from studio.qt.main_window import MainWindow
    from studio_diffusers import DiffusersPlugin

    registry = Registry()
    registry.add("diffusers", DiffusersPlugin)
    context = StudioContext.create(Settings(device="cpu"), registry)
    window = MainWindow(context)
    window.confirm_close = False
    qtbot.addWidget(window)
    try:
        panel = window.image_panel
        panel.set_model_source(str(built["sd"]))
        row = panel.control_list.add({"kind": "scribble", "image": str(built["sketch"]), "model": str(built["cn"]),
                                      "weight": 0.9})
        assert row.refresh_preview() == "" and not row.preview.pixmap().isNull()
        map_pixels = np.asarray(row.processed)
        assert map_pixels[0, 0].tolist() == [0, 0, 0] and map_pixels.max() == 255  # white strokes on black
        panel.image_prompt_list.add({"image": str(built["reference"]), "weight": 0.5})
        panel.form.set_values({"prompt": "a (red:1.4) circle", "steps": 3, "size": (64, 64), "seed": 5,
                               "hires_scale": 2.0, "hires_strength": 0.5, "hires_upscaler": "Lanczos",
                               "image_prompt_model": str(built["adapter"])})
        with qtbot.waitSignal(panel.imageSaved, timeout=TIMEOUT) as saved:
            panel.generate()
        job = panel.last_job
        qtbot.waitUntil(lambda: job.done.is_set(), timeout=TIMEOUT)
        panel.bridge.flush()
        assert job.state is JobState.DONE, panel.message.text()
        path = Path(saved.args[1].path)
        with Image.open(path) as image:
            assert image.size == (128, 128)
        meta = read_png_parameters(str(path))
        assert meta["prompt"] == "a (red:1.4) circle" and meta["hires_upscale"] == 2.0
        assert meta["ControlNet 0"].startswith("Module: scribble") and "Weight: 0.9" in meta["ControlNet 0"]
        assert meta["image_prompt_weight"] == 0.5
    finally:
        window.shutdown()
