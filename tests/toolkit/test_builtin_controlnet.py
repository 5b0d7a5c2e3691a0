"""The scribble ControlNet that ships for the built-in Shapes model: sketch a shape, get it where it was
drawn, with no control model named and no download (issue #16, item 7)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from studio.shapes import scorer

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "assets" / "models" / "shapes-controlnet-scribble"


def _sketch(path: Path, shape: str, cx: float, cy: float, half: float) -> Path:
    """A user's drawing: a black outline on white paper (the scribble preprocessor inverts it)."""
    image = Image.new("RGB", (64, 64), "white")
    draw = ImageDraw.Draw(image)
    if shape == "square":
        draw.rectangle([cx - half, cy - half, cx + half, cy + half], outline="black", width=2)
    else:
        draw.polygon([(cx, cy - half), (cx + half, cy + half), (cx - half, cy + half)], outline="black", width=2)
    image.save(path)
    return path


def _run(tmp_path: Path, prompt: str, extra: list[str]) -> Path:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins")]),
               STUDIO_HOME=str(tmp_path / "home"))
    args = [sys.executable, "-m", "studio", "image", prompt, "--steps", "20", "--seed", "7",
            "--out", str(tmp_path / "out"), *extra]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return Path(done.stdout.strip().splitlines()[-1])


def test_the_builtin_controlnet_ships_as_a_diffusers_folder():
    config = (FOLDER / "config.json").read_text()
    assert '"_class_name": "ControlNetModel"' in config
    assert (FOLDER / "diffusion_pytorch_model.safetensors").is_file()
    assert (FOLDER / "README.md").is_file()  # the model card: data, time, figures


def test_a_sketched_shape_lands_where_it_was_drawn(tmp_path):
    from studio.core.metadata import read_png_parameters

    # off the 3x3 grid the model was trained on: without the sketch it would not draw it here
    sketch = _sketch(tmp_path / "sketch.png", "square", 18, 44, 8)
    with_sketch = _run(tmp_path, "a red square on a black background", ["--control", f"scribble:{sketch}"])
    meta = read_png_parameters(with_sketch)
    assert "shapes-controlnet-scribble" in meta["ControlNet 0"]
    found = scorer.read_image(np.asarray(Image.open(with_sketch).convert("RGB"))).objects
    assert len(found) == 1, found
    assert found[0].shape == "square" and abs(found[0].cx - 18) <= 4 and abs(found[0].cy - 44) <= 4, found[0]
    plain = _run(tmp_path, "a red square on a black background", [])
    unguided = scorer.read_image(np.asarray(Image.open(plain).convert("RGB"))).objects
    assert not any(abs(o.cx - 18) <= 4 and abs(o.cy - 44) <= 4 for o in unguided), unguided
