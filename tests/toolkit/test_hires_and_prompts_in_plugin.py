"""Hires fix and prompt syntax through the diffusers plugin on a tiny SD 1.5 pipeline, and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from studio.plugin_api import CancelToken, LoadOptions, ParamError, Preview, Progress, Result  # noqa: E402
from studio_diffusers import DiffusersPlugin  # noqa: E402
from studio_diffusers.prompting import Prompter  # noqa: E402
from tests.fixtures import tiny_diffusers, tiny_upscalers  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory):
    return tiny_diffusers.build_sd(tmp_path_factory.mktemp("sd") / "tiny-sd")


@pytest.fixture(scope="module")
def sd(sd_folder):
    model = DiffusersPlugin().load(str(sd_folder), LoadOptions(), lambda m: None)
    yield model
    model.unload()


def run(model, **request):
    request = {"mode": "txt2img", "seed": 3, "steps": 4, "size": (64, 64), "preview_every": 1, **request}
    events = list(model.run(request, CancelToken()))
    assert isinstance(events[-1], Result)
    return events


@pytest.mark.parametrize("upscaler", ["Latent", "Lanczos", "Model"])
def test_hires_doubles_the_size_and_records_a1111_fields(sd, upscaler, tmp_path):
    extra = {}
    if upscaler == "Model":
        x4 = tiny_upscalers.save_safetensors(tiny_upscalers.rrdb_state(), tmp_path / "x4.safetensors")
        extra["hires_model"] = str(x4)
    events = run(sd, prompt="a red cat", hires_scale=2.0, hires_strength=0.5, hires_steps=6,
                 hires_upscaler=upscaler, **extra)
    artifact = events[-1].artifacts[0]
    assert artifact.image.size == (128, 128)
    params = artifact.parameters
    assert params["hires_upscale"] == 2.0 and params["hires_steps"] == 6 and params["denoising_strength"] == 0.5
    assert params["hires_upscaler"] == ("x4" if upscaler == "Model" else upscaler)
    assert (params["width"], params["height"]) == (64, 64)  # A1111's Size is the first pass's
    progress = [(e.step, e.total) for e in events if isinstance(e, Progress)]
    assert progress == [(i, 7) for i in range(1, 8)]  # 4 first-pass steps + 3 (= 6 x 0.5) second-pass steps
    previews = [e.image.size for e in events if isinstance(e, Preview)]
    assert previews[:4] == [(64, 64)] * 4 and previews[4:] == [(128, 128)] * 3  # previews in both passes


def test_hires_second_pass_changes_the_plain_upscale(sd):
    plain = np.asarray(run(sd, prompt="a red cat")[-1].artifacts[0].image.resize((128, 128)), dtype=float)
    fixed = np.asarray(run(sd, prompt="a red cat", hires_scale=2.0, hires_upscaler="Lanczos",
                           hires_strength=0.6)[-1].artifacts[0].image, dtype=float)
    assert np.abs(plain - fixed).mean() > 1.0


def test_interrupt_in_the_second_pass_keeps_a_big_partial(sd):
    cancel = CancelToken()
    events = []
    request = {"mode": "txt2img", "seed": 3, "steps": 4, "size": (64, 64), "prompt": "x", "hires_scale": 2.0,
               "hires_strength": 1.0, "hires_steps": 4, "preview_every": 0}
    for event in sd.run(request, cancel):
        events.append(event)
        if isinstance(event, Progress) and event.step == 5:
            cancel.interrupt()
    result = events[-1]
    assert result.interrupted and result.artifacts[0].image.size == (128, 128)


def test_interrupt_in_the_first_pass_keeps_the_native_partial(sd):
    cancel = CancelToken()
    events = []
    request = {"mode": "txt2img", "seed": 3, "steps": 4, "size": (64, 64), "prompt": "x", "hires_scale": 2.0,
               "hires_upscaler": "Latent", "preview_every": 0}
    for event in sd.run(request, cancel):
        events.append(event)
        if isinstance(event, Progress) and event.step == 2:
            cancel.interrupt()
    result = events[-1]
    image = result.artifacts[0].image  # the first pass's latents, decoded: no second pass ran
    assert result.interrupted and image.size == (64, 64) and np.asarray(image).std() > 0


def test_hires_refuses_settings_that_cannot_work(sd, tmp_path):
    with pytest.raises(ParamError, match="runs no second pass"):
        run(sd, prompt="x", hires_scale=2.0, hires_strength=0.1, hires_steps=4)
    with pytest.raises(ParamError, match="needs an upscaler file"):
        run(sd, prompt="x", hires_scale=2.0, hires_upscaler="Model")
    pth = tiny_upscalers.save_pickle(tiny_upscalers.rrdb_state(), tmp_path / "x4.pth")
    with pytest.raises(ParamError, match="pickle"):
        run(sd, prompt="x", hires_scale=2.0, hires_upscaler="Model", hires_model=str(pth))


def test_weighted_prompt_changes_the_image_and_weight_one_does_not(sd):
    def pixels(prompt):
        return np.asarray(run(sd, prompt=prompt)[-1].artifacts[0].image, dtype=float)

    plain, one, heavy = pixels("a red cat"), pixels("a (red:1.0) cat"), pixels("a (red:1.8) cat")
    assert np.array_equal(plain, one)
    assert np.abs(plain - heavy).mean() > 0.5


def test_dynamic_prompt_resolved_per_image_and_recorded(sd, studio_home):
    (studio_home / "wildcards").mkdir(parents=True)
    (studio_home / "wildcards" / "animal.txt").write_text("cat\ndog\nfox\nowl\n", encoding="utf-8")
    template = "a {red|green|blue} __animal__"
    first = run(sd, prompt=template, batch_count=4, steps=2, preview_every=0)[-1].artifacts
    again = run(sd, prompt=template, batch_count=4, steps=2, preview_every=0)[-1].artifacts
    prompts = [a.parameters["prompt"] for a in first]
    assert prompts == [a.parameters["prompt"] for a in again]
    assert all(a.parameters["prompt_template"] == template for a in first)
    assert all(p.split()[1] in ("red", "green", "blue") and p.split()[2] in ("cat", "dog", "fox", "owl")
               for p in prompts)
    with pytest.raises(ParamError, match="no file nothing.txt"):
        run(sd, prompt="a __nothing__")


def test_families_without_clip_weights_get_a_notice(sd):
    class OtherFamily:  # a pipeline whose text encoders the weighting does not handle (e.g. T5-based)
        tokenizer = None

        def __call__(self, prompt=None, negative_prompt=None):
            return None

    call = Prompter().prepare(OtherFamily(), "a (red:1.4) cat", "", 0)
    assert call.kwargs["prompt"] == "a red cat"
    assert any("ignored" in n and "OtherFamily" in n for n in call.notices)
    kwargs = {"prompt": "a (red:1.4) cat", "negative_prompt": ""}  # what the family plan passes
    assert Prompter().apply(sd.pipe, kwargs, "a (red:1.4) cat", "", 0).notices == []
    assert "prompt_embeds" in kwargs and kwargs["prompt"] is None


def test_cli_hires_writes_a1111_fields(tmp_path, sd_folder):
    from studio.core.metadata import read_png_parameters

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins")]))
    done = subprocess.run([sys.executable, "-m", "studio", "image", "a (red:1.3) cat", "--model", str(sd_folder),
                           "--steps", "3", "--size", "64x64", "--seed", "5", "--hires", "2:0.7",
                           "--hires-upscaler", "lanczos", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    path = done.stdout.strip().splitlines()[-1]
    meta = read_png_parameters(path)
    assert meta["prompt"] == "a (red:1.3) cat" and meta["hires_upscale"] == 2.0
    assert meta["hires_upscaler"] == "Lanczos" and meta["denoising_strength"] == 0.7 and meta["hires_steps"] == 3
    bad = subprocess.run([sys.executable, "-m", "studio", "image", "x", "--model", str(sd_folder), "--hires", "two"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert bad.returncode == 2 and "SCALE[:STRENGTH]" in bad.stderr
