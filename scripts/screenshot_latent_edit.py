"""The README's screenshot of editing your own image: the main window at its default size, Latent
tab, "Edit your own image" on the built-in Shapes SD model, a drawn red circle, circle->square at 1 (outline
and zoom on auto / on, the defaults), red->blue, and the first two directions found in the model's bottleneck,
every slider's quality measured.

    QT_QPA_PLATFORM=offscreen python scripts/screenshot_latent_edit.py [--out docs/latent-diffusion-edit.png]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "docs" / "latent-diffusion-edit.png"))
    ap.add_argument("--timeout", type=float, default=240.0)
    args = ap.parse_args()
    from PIL import Image, ImageDraw
    from PySide6.QtWidgets import QApplication

    from studio.core.context import StudioContext
    from studio.core.settings import Settings
    from studio.qt.main_window import MainWindow
    from studio.qt.theme import apply_theme

    home = tempfile.mkdtemp(prefix="studio-shot-")
    os.environ["STUDIO_HOME"] = home
    app = QApplication.instance() or QApplication([])
    apply_theme(app)
    context = StudioContext.create(Settings())
    window = MainWindow(context)
    window.confirm_close = False
    window.show()
    panel = window.latent_panel
    window.tabs.setCurrentWidget(panel)
    panel.plugin_combo.setCurrentIndex(panel.plugin_combo.findData("latent-diffusion"))
    drawing = Path(home) / "my-drawing.png"
    image = Image.new("RGB", (64, 64), (12, 12, 12))
    ImageDraw.Draw(image).ellipse((17, 21, 43, 47), fill=(214, 38, 30))
    image.save(drawing)
    editor = panel.open_image_editor()
    session = editor.session

    def wait(condition, what: str) -> None:
        end = time.monotonic() + args.timeout
        while not condition():
            app.processEvents()
            time.sleep(0.02)
            if time.monotonic() > end:
                raise SystemExit(f"timed out waiting for {what}")

    editor.prompt.setText("a red circle on a black background")
    editor.open_image(str(drawing))
    wait(lambda: session.reconstruction is not None, "the inversion")
    for text in ("circle->square", "red->blue"):
        editor.new_edit.setText(text)
        editor._add()
    session.discover("h-space", count=16, components=2)
    wait(lambda: len(session.sliders) == 4, "the found directions")
    editor.rows[0].slider.setValue(100)
    editor.rows[0].moved.emit(1.0, False)
    wait(lambda: session.edited_artifact is not None and not session.edited_artifact.parameters["recipe"]["draft"]
         and all(s.figures is not None for s in session.sliders), "the edit and the quality figures")
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)
    out = Path(args.out)
    window.grab().save(str(out))
    print(f"{out} ({window.width()}x{window.height()}); status: {editor.status.text()}")
    for s in session.sliders:
        print(f"{s.label:<22} {s.quality}")
    window.close()
    context.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
