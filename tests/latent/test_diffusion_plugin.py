"""The diffusion latent plugin on a tiny random SD pipeline of the real architecture (built
from configs, saved, loaded through the image plugin's loader) -- diffusers is never mocked."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from PIL import Image

from studio.plugin_api import CancelToken, Kind, LoadOptions, ParamError, Preview, Result, validate_request
from studio.plugin_kit.latent import directions as dirfile
from studio_latent import DiffusionLatentPlugin

STEPS = 3


@pytest.fixture(scope="module")
def plugin():
    return DiffusionLatentPlugin()


@pytest.fixture(scope="module")
def model(plugin, tiny_sd_folder):
    m = plugin.load(str(tiny_sd_folder), LoadOptions(), lambda s: None)
    yield m
    m.unload()


def events(plugin, model, mode, **values):
    values.setdefault("steps", STEPS)
    return list(model.run(validate_request(plugin.parameters(), values, mode), CancelToken()))


def run(plugin, model, mode, **values) -> Result:
    out = events(plugin, model, mode, **values)
    assert isinstance(out[-1], Result)
    return out[-1]


def px(result: Result, i: int = 0) -> np.ndarray:
    return np.asarray(result.artifacts[i].image, dtype=np.float64)


def test_info(plugin, model):
    info = run(plugin, model, "info").info
    assert info["space"] == "text-embedding" and info["latent_shape"] == [77, 32]
    assert info["native_size"] == [64, 64] and plugin.kind is Kind.LATENT


def test_seed_walk_is_smooth_and_ends_on_the_seeds(plugin, model):
    out = events(plugin, model, "walk", prompt="a red circle", seed=1, seed_to=2, frames=8)
    result = out[-1]
    assert len(result.artifacts) == 8 and sum(isinstance(e, Preview) for e in out) == 8
    assert result.info["smoothness"]["jump_ratio"] <= 3.0, result.info["smoothness"]
    start = run(plugin, model, "edit", prompt="a red circle", seed=1)
    end = run(plugin, model, "edit", prompt="a red circle", seed=2)
    assert np.abs(px(result, 0) - px(start)).max() <= 1
    assert np.abs(px(result, 7) - px(end)).max() <= 1


def test_prompt_walk_and_both_at_once(plugin, model):
    r = run(plugin, model, "walk", prompt="a red circle", prompt_to="a blue square", seed=3, frames=8)
    assert r.info["smoothness"]["jump_ratio"] <= 3.0, r.info["smoothness"]
    end = run(plugin, model, "edit", prompt="a blue square", seed=3)
    assert np.abs(px(r, 7) - px(end)).max() <= 1
    both = run(plugin, model, "walk", prompt="a red circle", prompt_to="a blue square", seed=3, seed_to=9, frames=4)
    assert len(both.artifacts) == 4


def test_prompt_pair_direction_with_strength(plugin, model, tmp_path):
    base = run(plugin, model, "edit", prompt="a red circle", seed=4)
    zero = run(plugin, model, "edit", prompt="a red circle", seed=4, pairs=[["red", "blue", 0.0]])
    assert np.array_equal(px(zero), px(base))
    full = run(plugin, model, "edit", prompt="a red circle", seed=4, pairs=[["red", "blue", 1.0]],
               save_direction=str(tmp_path / "rb.safetensors"))
    target = run(plugin, model, "edit", prompt="a blue circle", seed=4)
    assert np.abs(px(full) - px(target)).max() <= 1  # strength 1 lands on the replaced prompt
    half = run(plugin, model, "edit", prompt="a red circle", seed=4, pairs=[["red", "blue", 0.5]])
    d_half, d_full = np.abs(px(half) - px(base)).mean(), np.abs(px(full) - px(base)).mean()
    assert 0 < d_half < d_full
    # saved as a shareable file, usable as an ordinary direction
    dset = dirfile.load(full.info["saved_direction"])
    assert dset.space == "text-embedding" and dset.latent_shape == (77, 32)
    name = dset.names()[0]
    via_file = run(plugin, model, "edit", prompt="a red circle", seed=4,
                   direction_files=[str(tmp_path / "rb.safetensors")],
                   edits=[[name, 1.0]])
    assert np.abs(px(via_file) - px(target)).max() <= 1
    # a pair whose word is not in the prompt still moves the image
    other = run(plugin, model, "edit", prompt="a square", seed=4, pairs=[["small", "large", 1.0]])
    assert np.abs(px(other) - px(run(plugin, model, "edit", prompt="a square", seed=4))).mean() > 0


def test_unknown_direction_is_a_param_error(plugin, model):
    with pytest.raises(ParamError, match="Unknown direction"):
        run(plugin, model, "edit", prompt="x", edits=[["nope", 1.0]])
    with pytest.raises(ParamError, match="prompt pair"):
        run(plugin, model, "edit", prompt="x", pairs=[["red"]])


@pytest.mark.parametrize("method", ["ddim-inversion", "img2img"])
def test_encode_your_own_image_then_edit(plugin, model, tmp_path, method):
    rng = np.random.default_rng(0)
    path = tmp_path / "mine.png"
    Image.fromarray((rng.random((48, 80, 3)) * 255).astype(np.uint8)).save(path)  # not the model's size
    enc = run(plugin, model, "encode", image=str(path), encode_method=method, prompt="a red circle")
    w, h = enc.info["original"].size  # worked at its own 5:3 shape, about the model's native area
    assert np.isfinite(enc.info["psnr"]) and enc.artifacts[0].image.size == (w, h) and abs(w / h - 80 / 48) < 0.15
    zero = run(plugin, model, "edit", image=str(path), encode_method=method, prompt="a red circle",
               pairs=[["red", "blue", 0.0]])
    assert np.abs(px(zero) - px(enc)).max() <= 1  # amount 0 reproduces the reconstruction
    moved = run(plugin, model, "edit", image=str(path), encode_method=method, prompt="a red circle",
                pairs=[["red", "blue", 1.0]])
    assert np.abs(px(moved) - px(enc)).mean() > 0


def test_ddim_inversion_round_trip_on_the_pipelines_own_image(plugin, model, tmp_path):
    """Invert an image the pipeline made itself: DDIM regenerates it far better than chance."""
    made = run(plugin, model, "edit", prompt="a red circle", seed=5, cfg_scale=1.0, steps=10)
    path = tmp_path / "made.png"
    made.artifacts[0].image.save(path)
    enc = run(plugin, model, "encode", image=str(path), prompt="a red circle", steps=10)
    noise = np.random.default_rng(1).random((64, 64, 3)) * 255
    from studio.plugin_kit.latent import metrics

    chance = metrics.psnr(np.asarray(made.artifacts[0].image), noise)
    assert enc.info["psnr"] > chance + 3


def test_contract_with_the_plugin_author_test_kit(plugin, tiny_sd_folder):
    from studio.plugin_kit.testing import check_plugin

    report = check_plugin(plugin, source=str(tiny_sd_folder), mode="info", request={})
    assert report.model_capabilities == ["ModelHints"] and report.result is not None
