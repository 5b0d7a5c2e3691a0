"""ControlNet through the diffusers plugin: tiny random ControlNets for SD 1.5 and SDXL, the maps, the CLI."""

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
from studio.plugin_kit.control import preprocess  # noqa: E402
from studio_diffusers import DiffusersPlugin  # noqa: E402
from tests.fixtures import tiny_controlnets, tiny_diffusers  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("cn")
    sd = tiny_diffusers.build_sd(root / "sd")
    xl = tiny_diffusers.build_sdxl(root / "xl")
    return {"sd": sd, "xl": xl, "sd_cn": tiny_controlnets.build_controlnet(root / "sd-cn", sd),
            "sd_cn2": tiny_controlnets.build_controlnet(root / "sd-cn2", sd, seed=1, single_file=True),
            "xl_cn": tiny_controlnets.build_controlnet(root / "xl-cn", xl),
            "sketch": tiny_controlnets.scribble(root / "sketch.png", 128)}


@pytest.fixture(scope="module")
def models(built):
    plugin = DiffusersPlugin()
    loaded = {name: plugin.load(str(built[name]), LoadOptions(), lambda m: None) for name in ("sd", "xl")}
    yield loaded
    for model in loaded.values():
        model.unload()


def pixels(model, **request):
    request = {"mode": "txt2img", "prompt": "a cat", "seed": 4, "steps": 3, "size": (64, 64), "preview_every": 0,
               **request}
    events = list(model.run(request, CancelToken()))
    assert isinstance(events[-1], Result)
    return np.asarray(events[-1].artifacts[0].image, dtype=float), events[-1].artifacts[0].parameters


@pytest.mark.parametrize("family", ["sd", "xl"])
def test_control_weight_changes_the_image_and_zero_gives_the_plain_one(models, built, family):
    model = models[family]
    plain, _ = pixels(model)

    def control(weight):
        return [{"kind": "scribble", "image": str(built["sketch"]), "model": str(built[f"{family}_cn"]),
                 "weight": weight}]

    zero, _ = pixels(model, controls=control(0.0))
    full, params = pixels(model, controls=control(1.0))
    assert np.abs(zero - plain).max() <= 1.0  # weight 0: the image without control (rounding at most)
    assert np.abs(full - plain).mean() > 1.0
    assert params["controlnets"][0].startswith("Module: scribble, Model: ") and "Weight: 1" in params["controlnets"][0]


def test_two_controls_and_a_step_range(models, built):
    model = models["sd"]
    one, _ = pixels(model, controls=[{"kind": "scribble", "image": str(built["sketch"]), "model": str(built["sd_cn"])}])
    two, params = pixels(model, controls=[
        {"kind": "scribble", "image": str(built["sketch"]), "model": str(built["sd_cn"])},
        {"kind": "canny", "image": str(built["sketch"]), "model": str(built["sd_cn2"]), "weight": 0.8,
         "start": 0.0, "end": 0.5}])
    assert np.abs(one - two).mean() > 0.5 and len(params["controlnets"]) == 2
    assert "Guidance End: 0.5" in params["controlnets"][1]
    late, _ = pixels(model, controls=[{"kind": "scribble", "image": str(built["sketch"]),
                                       "model": str(built["sd_cn"]), "start": 0.99, "end": 1.0}])
    plain, _ = pixels(model)
    assert np.abs(late - plain).mean() < np.abs(one - plain).mean()  # active on fewer steps, less change


def test_control_inputs_are_checked(models, built, tmp_path):
    bad = [({"kind": "blur", "image": "x", "model": str(built["sd_cn"])}, "unknown kind"),
           ({"kind": "canny", "model": str(built["sd_cn"])}, "needs an image"),
           ({"kind": "canny", "image": str(built["sketch"]), "model": str(tmp_path / "no")}, "not found"),
           ({"kind": "canny", "image": str(built["sketch"]), "model": str(built["sd_cn"]), "start": 0.6,
             "end": 0.2}, "must come after"),
           ({"kind": "canny", "image": str(built["sketch"]), "model": str(built["sd_cn"]), "weight": 7}, "between")]
    for entry, message in bad:
        with pytest.raises(ParamError, match=message):
            pixels(models["sd"], controls=[entry])


def test_preprocessors_make_maps_without_downloads(built):
    drawing = Image.open(built["sketch"])
    scribble = np.asarray(preprocess.process("scribble", drawing, (64, 64)))
    assert scribble[0, 0].tolist() == [0, 0, 0] and scribble.max() == 255  # black on white became white on black
    assert set(np.unique(scribble)) <= {0, 255}
    assert 0.01 < (scribble[..., 0] > 0).mean() < 0.3  # the thin outline survived the 2x shrink
    assert scribble[13, 13, 0] == 0 and scribble[13, 6:21, 0].max() == 255  # a ring: empty centre, drawn edge
    edges = np.asarray(preprocess.process("canny", drawing, (64, 64)))
    assert edges.max() == 255 and (edges[..., 0] > 0).mean() < 0.25
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    assert np.array_equal(np.asarray(preprocess.process("depth", photo, (64, 64))), np.asarray(photo))
    with pytest.raises(ValueError, match="Unknown control preprocessor"):
        preprocess.process("openpose-with-a-model", photo, (64, 64))


def test_cli_control(tmp_path, built):
    from studio.core.metadata import read_png_parameters

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins")]))
    args = [sys.executable, "-m", "studio", "image", "a cat", "--model", str(built["sd"]), "--steps", "2",
            "--size", "64x64", "--seed", "1", "--out", str(tmp_path / "out"),
            "--control", f"scribble:{built['sketch']}", "--control-model", str(built["sd_cn"]),
            "--control-weight", "0.7", "--control-range", "0-0.8",
            "--control", f"canny:{built['sketch']}", "--control-model", str(built["sd_cn2"])]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    meta = read_png_parameters(done.stdout.strip().splitlines()[-1])
    assert "Weight: 0.7" in meta["ControlNet 0"] and "Guidance End: 0.8" in meta["ControlNet 0"]
    assert meta["ControlNet 1"].startswith("Module: canny")
    bad = subprocess.run(args[:-4] + ["--control-weight", "0.5"], capture_output=True, text=True, timeout=300,
                         env=env)
    assert bad.returncode == 2 and "--control-weight" in bad.stderr
    no_model = subprocess.run(args[:9] + ["--control", f"scribble:{built['sketch']}"], capture_output=True, text=True,
                              timeout=300, env=env)
    assert no_model.returncode == 2 and "needs a control model" in no_model.stderr
    assert "Traceback" not in no_model.stderr
