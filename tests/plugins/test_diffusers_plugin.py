"""The diffusers plugin against tiny random-weight pipelines of real architectures.

The pipelines are built from configs (tests/fixtures/tiny_diffusers.py), saved with
save_pretrained and loaded back through the plugin's own ``load`` -- diffusers is never mocked.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from PIL import Image

from studio.plugin_api import (
    ArtifactReady,
    Cancelled,
    CancelToken,
    Kind,
    LoadOptions,
    Log,
    ParamError,
    Plugin,
    Preview,
    Progress,
    Result,
    validate_request,
)
from studio_diffusers import DiffusersPlugin, default_model_folder
from tests.fixtures import tiny_diffusers

SIZE = (64, 64)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads only add contention on a shared machine
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def plugin():
    return DiffusersPlugin()


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory):
    return tiny_diffusers.build_sd(tmp_path_factory.mktemp("sd") / "tiny-sd")


@pytest.fixture(scope="module")
def sd(plugin, sd_folder):
    messages = []
    model = plugin.load(str(sd_folder), LoadOptions(), messages.append)
    assert messages, "load should report progress"
    yield model
    model.unload()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    init = folder / "init.png"
    Image.fromarray((rng.random((48, 80, 3)) * 255).astype(np.uint8)).save(init)  # not the output size
    mask = folder / "mask.png"
    m = np.zeros((64, 64), np.uint8)
    m[16:48, 16:48] = 255
    Image.fromarray(m).save(mask)
    return {"init": str(init), "mask": str(mask)}


def request(plugin, mode="txt2img", **values):
    raw = {"prompt": "a red circle", "seed": 1234, "steps": 3, "size": SIZE, "preview_every": 0}
    raw.update(values)
    return validate_request(plugin.parameters(), raw, mode)


def run_all(model, req, cancel=None):
    return list(model.run(req, cancel or CancelToken()))


def pixels(event: Result, i: int = 0) -> np.ndarray:
    return np.asarray(event.artifacts[i].image, dtype=np.int16)


# ---------------------------------------------------------------------------- plugin object


def test_entry_point_import_does_not_import_torch():
    code = ("import sys, studio_diffusers; p = studio_diffusers.DiffusersPlugin(); p.parameters(); p.models(); "
            "assert 'torch' not in sys.modules and 'diffusers' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, env=_subprocess_env(), timeout=60)


def _subprocess_env():
    import os

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root), str(root / "plugins"), env.get("PYTHONPATH", "")])
    return env


def test_plugin_declares_itself(plugin):
    assert isinstance(plugin, Plugin)
    assert (plugin.id, plugin.label, plugin.kind) == ("diffusers", "Diffusers", Kind.IMAGE)
    assert tuple(plugin.modes()) == ("txt2img", "img2img", "inpaint", "edit")
    params = {p.name: p for p in plugin.parameters()}
    assert {"prompt", "negative_prompt", "seed", "steps", "cfg_scale", "size", "batch_count", "scheduler",
            "init_image", "strength", "mask_image", "loras", "preview_every"} <= set(params)
    assert params["size"].multiple_of == 8 and params["steps"].default == 20
    assert "Euler a" in params["scheduler"].choices and "DPM++ 2M Karras" in params["scheduler"].choices
    assert "strength" not in validate_request(plugin.parameters(), {"prompt": "x"}, "txt2img")
    models = plugin.models()
    assert [m.source for m in models] == ([str(default_model_folder())]
                                          if (default_model_folder() / "model_index.json").is_file() else [])


def test_loaded_model_facts(sd):
    assert sd.device == "cpu"
    assert sd.memory_bytes > 1_000_000
    assert sd.defaults["size"] == SIZE  # sample_size 32 x vae factor 2
    assert sd.choices["scheduler"][0] == "default" and "Euler" in sd.choices["scheduler"]


# ---------------------------------------------------------------------------- txt2img


def test_txt2img_events(plugin, sd):
    events = run_all(sd, request(plugin, steps=3, preview_every=1))
    progress = [e for e in events if isinstance(e, Progress)]
    previews = [e for e in events if isinstance(e, Preview)]
    assert [(p.step, p.total) for p in progress] == [(1, 3), (2, 3), (3, 3)]
    assert len(previews) == 3 and all(p.image.size == SIZE and p.image.mode == "RGB" for p in previews)
    assert all(isinstance(e, (Progress, Preview, Log)) for e in events[:-1])
    result = events[-1]
    assert isinstance(result, Result) and not result.interrupted and len(result.artifacts) == 1
    art = result.artifacts[0]
    assert art.kind is Kind.IMAGE and art.image.size == SIZE and art.image.mode == "RGB" and art.seed == 1234
    p = art.parameters
    assert {k: p[k] for k in ("prompt", "negative_prompt", "steps", "sampler", "cfg_scale", "seed", "width",
                              "height", "model", "mode", "loras", "batch_index")} == {
        "prompt": "a red circle", "negative_prompt": "", "steps": 3, "sampler": "PNDM", "cfg_scale": 7.0,
        "seed": 1234, "width": 64, "height": 64, "model": "tiny-sd", "mode": "txt2img", "loras": [],
        "batch_index": 0}
    assert len(p["model_hash"]) == 10 and int(p["model_hash"], 16) >= 0
    assert "denoising_strength" not in p


def test_seeds_reproduce_and_differ(plugin, sd):
    a = run_all(sd, request(plugin, seed=7))[-1]
    b = run_all(sd, request(plugin, seed=7))[-1]
    c = run_all(sd, request(plugin, seed=8))[-1]
    assert np.array_equal(pixels(a), pixels(b))
    assert np.abs(pixels(a) - pixels(c)).mean() > 1.0


def test_random_seed_is_reported(plugin, sd):
    result = run_all(sd, request(plugin, seed=-1, steps=1))[-1]
    seed = result.artifacts[0].seed
    assert isinstance(seed, int) and 0 <= seed < 2**32 and result.artifacts[0].parameters["seed"] == seed
    again = run_all(sd, request(plugin, seed=seed, steps=1))[-1]
    assert np.array_equal(pixels(result), pixels(again))


def test_batch_uses_seed_plus_index(plugin, sd):
    events = run_all(sd, request(plugin, seed=20, batch_count=2, steps=2))
    progress = [e for e in events if isinstance(e, Progress)]
    assert [(p.step, p.total) for p in progress] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    result = events[-1]
    assert [a.seed for a in result.artifacts] == [20, 21]
    assert [a.parameters["batch_index"] for a in result.artifacts] == [0, 1]
    # each image is handed over as soon as it is done (the engine saves it then), before the next
    ready = [i for i, e in enumerate(events) if isinstance(e, ArtifactReady)]
    assert [events[i].artifact for i in ready] == list(result.artifacts)
    assert ready[0] < next(i for i, e in enumerate(events) if isinstance(e, Progress) and e.step == 3)
    single = run_all(sd, request(plugin, seed=21, steps=2))[-1]
    assert np.array_equal(pixels(result, 1), pixels(single))


# ---------------------------------------------------------------------------- img2img / inpaint


def test_img2img(plugin, sd, images):
    events = run_all(sd, request(plugin, "img2img", init_image=images["init"], strength=0.5, steps=4))
    assert sum(isinstance(e, Progress) for e in events) == 2  # int(4 * 0.5) steps actually run
    art = events[-1].artifacts[0]
    assert art.image.size == SIZE and art.parameters["denoising_strength"] == 0.5
    assert art.parameters["mode"] == "img2img"


def test_inpaint_with_plain_unet(plugin, sd, images):
    events = run_all(sd, request(plugin, "inpaint", init_image=images["init"], mask_image=images["mask"],
                                 strength=1.0, steps=2))
    assert type(sd.pipe_for("inpaint")).__name__ == "StableDiffusionInpaintPipeline"
    assert sd.pipe_for("inpaint").unet is sd.pipe.unet  # from_pipe shares the weights
    assert events[-1].artifacts[0].image.size == SIZE


def test_inpainting_model_runs_every_mode(plugin, tmp_path, images):
    folder = tiny_diffusers.build_sd(tmp_path / "tiny-inpaint", inpaint_unet=True)
    model = plugin.load(str(folder), LoadOptions(), lambda _m: None)
    try:
        assert model.inpaint_model and type(model.pipe).__name__ == "StableDiffusionInpaintPipeline"
        for mode, extra in (("inpaint", {"init_image": images["init"], "mask_image": images["mask"]}),
                            ("img2img", {"init_image": images["init"]}), ("txt2img", {})):
            result = run_all(model, request(plugin, mode, steps=2, **extra))[-1]
            assert result.artifacts[0].image.size == SIZE, mode
    finally:
        model.unload()


def test_missing_or_unreadable_images(plugin, sd, tmp_path):
    with pytest.raises(ParamError, match="nope.png"):
        run_all(sd, request(plugin, "img2img", init_image=str(tmp_path / "nope.png")))
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(ParamError, match="junk.png"):
        run_all(sd, request(plugin, "inpaint", init_image=str(junk), mask_image=str(junk)))


def test_size_must_fit_the_model(plugin, sd):
    req = dict(request(plugin), size=(65, 65))  # run() is called directly here, past the engine's check
    with pytest.raises(ParamError, match="multiple of 8"):
        run_all(sd, req)
    result = run_all(sd, dict(request(plugin), size=(72, 40)))[-1]
    assert result.artifacts[0].image.size == (72, 40)


# ---------------------------------------------------------------------------- stopping


def _stop_after(model, req, steps_before_stop, stop):
    cancel = CancelToken()
    events = []
    gen = model.run(req, cancel)
    for event in gen:
        events.append(event)
        if isinstance(event, Progress) and event.step == steps_before_stop:
            stop(cancel)
    return events


def test_interrupt_keeps_partial_within_one_step(plugin, sd):
    events = _stop_after(sd, request(plugin, steps=8, preview_every=1), 2, CancelToken.interrupt)
    progress = [e for e in events if isinstance(e, Progress)]
    # The token is checked after every step: at most the step already running when we
    # interrupted finishes (the pipeline does not wait for us between steps).
    assert 2 <= len(progress) <= 3
    result = events[-1]
    assert isinstance(result, Result) and result.interrupted
    assert len(result.artifacts) == 1 and result.artifacts[0].image.size == SIZE


def test_cancel_raises_cancelled(plugin, sd):
    seen = []
    with pytest.raises(Cancelled):
        for event in sd.run(request(plugin, steps=8), token := CancelToken()):
            seen.append(event)
            if isinstance(event, Progress) and event.step == 2:
                token.cancel()
    assert 2 <= sum(isinstance(e, Progress) for e in seen) <= 3  # within one step
    assert not any(isinstance(e, Result) for e in seen)
    assert run_all(sd, request(plugin, steps=1))[-1].artifacts  # the model still works afterwards


def test_interrupt_in_batch_keeps_finished_images(plugin, sd):
    events = _stop_after(sd, request(plugin, steps=2, batch_count=3), 3, CancelToken.interrupt)
    result = events[-1]
    assert result.interrupted and [a.seed for a in result.artifacts] == [1234, 1235]


# ---------------------------------------------------------------------------- schedulers, LoRA, SDXL


def test_every_compatible_scheduler_runs(plugin, sd):
    original = sd.pipe_for("txt2img").scheduler
    for name in sd.choices["scheduler"]:
        events = run_all(sd, request(plugin, steps=2, scheduler=name, preview_every=1))
        assert sum(isinstance(e, Progress) for e in events) == 2, name
        result = events[-1]
        assert result.artifacts[0].image.size == SIZE, name
        if name != "default":
            assert result.artifacts[0].parameters["sampler"] == name
        assert np.isfinite(np.asarray(result.artifacts[0].image, np.float32)).all()
    assert sd.pipe_for("txt2img").scheduler is original  # restored after each run
    with pytest.raises(ParamError, match="Sampler"):
        run_all(sd, dict(request(plugin), scheduler="LCM"))


def test_lora(plugin, sd, sd_folder, tmp_path):
    lora = tiny_diffusers.build_lora(tmp_path / "lora", sd_folder)
    base = pixels(run_all(sd, request(plugin, steps=2))[-1])
    full = run_all(sd, request(plugin, steps=2, loras=[{"path": str(lora), "weight": 1.0}]))[-1]
    zero = run_all(sd, request(plugin, steps=2, loras=[{"path": str(lora), "weight": 0.0}]))[-1]
    assert np.abs(pixels(full) - base).mean() > 1.0
    assert np.abs(pixels(zero) - base).max() <= 1
    assert full.artifacts[0].parameters["loras"] == [("tiny_lora", 1.0)]
    after = pixels(run_all(sd, request(plugin, steps=2))[-1])  # not requested -> unloaded
    assert np.abs(after - base).max() <= 1 and not sd._loras.adapters
    pickled = tmp_path / "evil.ckpt"
    pickled.write_bytes(b"\x80\x04.")
    with pytest.raises(ParamError, match="pickle"):
        run_all(sd, request(plugin, loras=[{"path": str(pickled), "weight": 1.0}]))
    with pytest.raises(ParamError, match="not found"):
        run_all(sd, request(plugin, loras=[{"path": str(tmp_path / "gone.safetensors")}]))


def test_sdxl_txt2img(plugin, tmp_path):
    folder = tiny_diffusers.build_sdxl(tmp_path / "tiny-sdxl")
    model = plugin.load(str(folder), LoadOptions(), lambda _m: None)
    try:
        assert type(model.pipe).__name__ == "StableDiffusionXLPipeline"
        assert model.defaults["size"] == SIZE and "Euler a" in model.choices["scheduler"]
        events = run_all(model, request(plugin, steps=2, preview_every=1, negative_prompt="blurry"))
        assert sum(isinstance(e, Progress) for e in events) == 2
        assert any(isinstance(e, Preview) for e in events)
        result = events[-1]
        assert result.artifacts[0].image.size == SIZE and result.artifacts[0].parameters["sampler"] == "Euler"
    finally:
        model.unload()


# ---------------------------------------------------------------------------- loading errors


def test_missing_source_is_a_clear_error(plugin, tmp_path):
    with pytest.raises(FileNotFoundError, match="Model not found"):
        plugin.load(str(tmp_path / "no-such-model"), LoadOptions(), lambda _m: None)
    with pytest.raises(ValueError, match="model_index.json"):
        plugin.load(str(tmp_path), LoadOptions(), lambda _m: None)


def test_pickle_checkpoint_refused(plugin, tmp_path):
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"\x80\x04.")
    with pytest.raises(ValueError, match="pickle"):
        plugin.load(str(ckpt), LoadOptions(), lambda _m: None)


def test_single_file_without_local_config_explains_offline(plugin, tmp_path, monkeypatch):
    from safetensors.torch import save_file

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    file = tmp_path / "lonely.safetensors"
    save_file({"model.diffusion_model.x": torch.zeros(2)}, str(file))
    with pytest.raises(RuntimeError, match="config folder .* named 'lonely'"):
        plugin.load(str(file), LoadOptions(), lambda _m: None)


def test_uncached_hub_id_offline(plugin, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(FileNotFoundError, match="Model not found: studio-test/not-there"):
        plugin.load("studio-test/not-there", LoadOptions(allow_download=False), lambda _m: None)


# ---------------------------------------------------------------------------- previews


def test_preview_map_tracks_the_vae_decode():
    """On a (briefly trained) tiny VAE the fitted linear map must follow the real decode.

    A random-weight VAE is no autoencoder, so no linear map can follow its decoder; a few
    seconds of training make it one, and then the least-squares map fitted from the encoder
    alone must correlate with the decoder's output on held-out images' latents.
    """
    from studio_diffusers.previews import correlation, fit_latent_rgb

    vae = tiny_diffusers.train_tiny_vae(steps=120)
    rgb = fit_latent_rgb(vae)
    held_out = tiny_diffusers.block_images(4, seed=99)
    with torch.no_grad():
        latents = vae.encode(held_out * 2 - 1).latent_dist.mode() * vae.config.scaling_factor
        decoded = ((vae.decode(latents / vae.config.scaling_factor).sample + 1) / 2).clamp(0, 1)
    pooled = torch.nn.functional.adaptive_avg_pool2d(decoded, latents.shape[-2:]).permute(0, 2, 3, 1).numpy()
    scores = [correlation(rgb.to_array(latents[i]), pooled[i]) for i in range(len(latents))]
    assert np.mean(scores) > 0.5, scores
    image = rgb.to_image(latents[0], (40, 24))
    assert image.size == (40, 24) and image.mode == "RGB"


@pytest.mark.skipif(not (default_model_folder() / "model_index.json").is_file(),
                    reason="the shipped shapes-sd model is not built")
def test_preview_matches_decode_on_shipped_model(plugin):
    from studio_diffusers.previews import correlation

    model = plugin.load(str(default_model_folder()), LoadOptions(device="cpu"), lambda _m: None)
    try:
        pipe = model.pipe
        w, h = model.defaults["size"]
        latents = pipe("a red circle", num_inference_steps=8, height=h, width=w, output_type="latent",
                       generator=torch.Generator("cpu").manual_seed(0)).images
        with torch.no_grad():
            decoded = ((pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample + 1) / 2).clamp(0, 1)
        approx = np.asarray(model.latent_rgb().to_image(latents[0], (w, h)), np.float32) / 255
        assert correlation(approx, decoded[0].permute(1, 2, 0).numpy()) > 0.5
    finally:
        model.unload()


def test_contract_with_the_plugin_author_test_kit(plugin, sd_folder):
    from studio.plugin_kit.testing import check_plugin

    report = check_plugin(plugin, source=str(sd_folder), mode="txt2img",
                          request={"prompt": "a red circle", "seed": 1, "steps": 2, "size": SIZE, "preview_every": 0})
    assert report.capabilities == ["Prewarms", "MapsA1111"] and report.model_capabilities == ["ModelHints"]
    assert report.result is not None and report.result.artifacts[0].image.size == tuple(SIZE)


def test_model_hints_and_a1111_mapping(plugin, sd):
    from studio.plugin_api import MapsA1111, ModelHints

    assert isinstance(sd, ModelHints) and tuple(sd.modes) == ("txt2img", "img2img", "inpaint")
    assert "default" in sd.choices["scheduler"] and sd.defaults["steps"] == 20
    assert isinstance(plugin, MapsA1111)
    values, ignored = plugin.from_a1111({"prompt": "a cat", "steps": 12, "sampler": "Euler a", "width": 64,
                                         "height": 48, "cfg_scale": 6.5, "denoising_strength": 0.4,
                                         "model": "x", "model_hash": "abc", "mode": "img2img", "batch_size": 2,
                                         "schedule_type": "Karras"})
    assert values == {"prompt": "a cat", "steps": 12, "scheduler": "Euler a", "size": (64, 48), "cfg_scale": 6.5,
                      "strength": 0.4}
    assert ignored == ["batch_size", "schedule_type"]
    values, ignored = plugin.from_a1111({"sampler": "No Such Sampler"})
    assert values == {} and ignored == ["sampler 'No Such Sampler'"]
