"""The gallery's "Upscale 2x" action: a new, twice as large gallery image with the source's metadata."""

from __future__ import annotations

from PIL import Image
from PySide6.QtWidgets import QApplication
from studio_upscale import UpscalePlugin

from studio.core.metadata import read_png_parameters

TIMEOUT = 60000


def test_gallery_upscale_action_adds_a_bigger_image(make_panel, qtbot):
    panel = make_panel(extra=[("upscale", UpscalePlugin)])
    job = panel.generate()
    assert job is not None
    qtbot.waitUntil(lambda: job.done.is_set() and panel.gallery.count() == 1, timeout=TIMEOUT)
    record = panel.gallery.records()[0]
    with Image.open(record.path) as first:
        size = first.size
    upscale = panel.upscale_output(record)
    assert upscale is not None
    qtbot.waitUntil(lambda: upscale.done.is_set(), timeout=TIMEOUT)
    panel.bridge.flush()
    QApplication.processEvents()
    qtbot.waitUntil(lambda: panel.gallery.count() == 2, timeout=TIMEOUT)
    newest = panel.gallery.records()[0]
    with Image.open(newest.path) as big:
        assert big.size == (size[0] * 2, size[1] * 2)
    meta = read_png_parameters(newest.path)
    assert meta["postprocess_upscale_by"] == 2.0 and meta["postprocess_upscaler"] == "Lanczos"
