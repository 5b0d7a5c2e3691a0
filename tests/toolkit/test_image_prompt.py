"""Image prompts (IP-Adapter) on a tiny SD 1.5 pipeline with a tiny image encoder built here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from PIL import Image  # noqa: E402

from studio.plugin_api import CancelToken, LoadOptions, ParamError, Result  # noqa: E402
from studio_diffusers import DiffusersPlugin  # noqa: E402
from tests.fixtures import tiny_diffusers, tiny_ip_adapter  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("ip")
    sd = tiny_diffusers.build_sd(root / "sd")
    reference = root / "reference.png"
    Image.fromarray((np.random.default_rng(3).random((48, 48, 3)) * 255).astype(np.uint8)).save(reference)
    return {"sd": sd, "adapter": tiny_ip_adapter.build_ip_adapter(root / "ip", sd), "reference": reference}


@pytest.fixture(scope="module")
def sd(built):
    model = DiffusersPlugin().load(str(built["sd"]), LoadOptions(), lambda m: None)
    yield model
    model.unload()


def pixels(model, **request):
    request = {"mode": "txt2img", "prompt": "a cat", "seed": 2, "steps": 3, "size": (64, 64), "preview_every": 0,
               **request}
    events = list(model.run(request, CancelToken()))
    assert isinstance(events[-1], Result)
    return np.asarray(events[-1].artifacts[0].image, dtype=float), events[-1].artifacts[0].parameters


def test_image_prompt_changes_the_image_and_weight_zero_does_not(sd, built):
    plain, _ = pixels(sd)

    def with_weight(weight):
        return pixels(sd, image_prompts=[{"image": str(built["reference"]), "weight": weight}],
                      image_prompt_model=str(built["adapter"]))

    zero, _ = with_weight(0.0)
    full, params = with_weight(1.0)
    assert np.abs(zero - plain).max() <= 1.0
    assert np.abs(full - plain).mean() > 1.0
    assert params["image_prompt_weight"] == 1.0 and params["image_prompt_model"] == "ip-adapter_tiny"
    again, _ = pixels(sd)  # the adapter is unloaded for a request without an image prompt
    assert np.array_equal(again, plain)
    hires, _ = pixels(sd, image_prompts=[{"image": str(built["reference"]), "weight": 0.8}],
                      image_prompt_model=str(built["adapter"]), hires_scale=2.0, hires_upscaler="Lanczos")
    assert hires.shape == (128, 128, 3)


def test_image_prompt_inputs_are_checked(sd, built, tmp_path):
    with pytest.raises(ParamError, match="needs an image prompt model"):
        pixels(sd, image_prompts=[{"image": str(built["reference"])}])
    lonely = tmp_path / "ip.safetensors"
    lonely.write_bytes(Path(built["adapter"]).read_bytes())
    with pytest.raises(ParamError, match="No image encoder"):
        pixels(sd, image_prompts=[{"image": str(built["reference"])}], image_prompt_model=str(lonely))
    with pytest.raises(ParamError, match="between 0 and 2"):
        pixels(sd, image_prompts=[{"image": str(built["reference"]), "weight": 3}],
               image_prompt_model=str(built["adapter"]))


def test_cli_image_prompt(tmp_path, built):
    from studio.core.metadata import read_png_parameters

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins")]))
    done = subprocess.run([sys.executable, "-m", "studio", "image", "a cat", "--model", str(built["sd"]),
                           "--steps", "2", "--size", "64x64", "--out", str(tmp_path / "o"),
                           "--image-prompt", f"{built['reference']}:0.6", "--image-prompt-model",
                           str(built["adapter"])], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    meta = read_png_parameters(done.stdout.strip().splitlines()[-1])
    assert meta["image_prompt_weight"] == 0.6 and meta["image_prompt_model"] == "ip-adapter_tiny"
