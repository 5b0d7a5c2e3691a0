"""One end-to-end run of the Image panel on the real diffusers plugin, with a tiny random-weight
SD pipeline built offline (tests/fixtures/tiny_diffusers.py).  Skipped when the plugin or its
libraries are not installed.  This is the only GUI test that imports the heavy libraries,
and it does so on the engine's worker thread, as the app does."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from PIL import Image

from studio.core.jobs import JobState

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in ("studio_diffusers", "diffusers", "torch")),
    reason="the diffusers plugin or its libraries are not installed")

TIMEOUT = 240_000


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory) -> Path:
    from tests.fixtures.tiny_diffusers import build_sd

    return build_sd(tmp_path_factory.mktemp("tiny-sd") / "sd")


def test_panel_runs_the_diffusers_plugin(qtbot, tiny_sd):
    from studio.core.context import StudioContext
    from studio.core.registry import Registry
    from studio.core.settings import Settings
    from studio.qt.main_window import MainWindow

    registry = Registry.discover()
    entry = next((e for e in registry.entries if e.name == "diffusers"), None)
    if entry is None or not entry.ok:
        pytest.skip(f"diffusers plugin unavailable: {entry.error if entry else 'not registered'}")
    context = StudioContext.create(Settings(device="cpu"), registry)
    window = MainWindow(context)
    window.confirm_close = False
    qtbot.addWidget(window)
    try:
        panel = window.image_panel
        assert panel.session.plugin.id == "diffusers"
        panel.set_model_source(str(tiny_sd))
        panel.form.set_values({"prompt": "a red circle", "steps": 3, "size": (64, 64), "seed": 5})
        previews = []
        panel.bridge.preview.connect(lambda job, event: previews.append(event.step))
        with qtbot.waitSignal(panel.imageSaved, timeout=TIMEOUT) as saved:
            panel.generate()
        job = panel.last_job
        qtbot.waitUntil(lambda: job.done.is_set(), timeout=TIMEOUT)
        panel.bridge.flush()
        assert job.state is JobState.DONE, panel.message.text()
        assert previews
        path = Path(saved.args[1].path)
        with Image.open(path) as image:
            assert image.size == (64, 64)
            assert "a red circle" in image.info["parameters"] and "Seed: 5" in image.info["parameters"]
        assert window.device_label.text() == "Device: CPU"
        # the loaded model's compatible samplers now limit the sampler list
        sampler = panel.form.editor("scheduler")
        assert sampler.count() >= 1
    finally:
        window.shutdown()
