"""Image prompts (IP-Adapter) on SDXL and Flux.1: tiny adapters of the published layouts (SDXL: the UNet's
``image_proj`` / ``ip_adapter`` keys; Flux: XLabs' ``ip_adapter_proj_model`` / ``double_blocks``) with a tiny
CLIP vision encoder beside them, loaded through the plugin.  Families without an IP-Adapter Studio can load
get one sentence."""

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
from tests.fixtures import families, tiny_controlnets, tiny_diffusers, tiny_ip_adapter  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("ipf")
    xl = tiny_diffusers.build_sdxl(root / "xl")
    flux = families.build_flux(root / "flux")
    reference = root / "reference.png"
    Image.fromarray((np.random.default_rng(3).random((48, 48, 3)) * 255).astype(np.uint8)).save(reference)
    yield {"xl": xl, "flux": flux, "sd3": families.build_sd3(root / "sd3"), "reference": reference,
           "xl_adapter": tiny_ip_adapter.build_ip_adapter(root / "xl-ip", xl),
           "flux_adapter": tiny_ip_adapter.build_flux_ip_adapter(root / "flux-ip", flux),
           "flux_cn": tiny_controlnets.build_flux_controlnet(root / "flux-cn", flux)}
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def models(built):
    plugin = DiffusersPlugin()
    loaded = {name: plugin.load(str(built[name]), LoadOptions(), lambda m: None) for name in ("xl", "flux", "sd3")}
    yield loaded
    for model in loaded.values():
        model.unload()


def pixels(model, **request):
    request = {"mode": "txt2img", "prompt": "a cat", "seed": 2, "steps": 2, "size": (64, 64), "preview_every": 0,
               **request}
    events = list(model.run(request, CancelToken()))
    assert isinstance(events[-1], Result)
    return np.asarray(events[-1].artifacts[0].image, dtype=float), events[-1].artifacts[0].parameters


@pytest.mark.parametrize("family", ["xl", "flux"])
def test_image_prompt_changes_the_image_and_weight_zero_does_not(models, built, family):
    model = models[family]
    plain, _ = pixels(model)

    def with_weight(weight):
        return pixels(model, image_prompts=[{"image": str(built["reference"]), "weight": weight}],
                      image_prompt_model=str(built[f"{family}_adapter"]))

    zero, _ = with_weight(0.0)
    full, params = with_weight(1.0)
    half, _ = with_weight(0.5)
    assert np.abs(zero - plain).max() <= 1.0
    assert np.abs(full - plain).mean() > 1.0
    assert 0 < np.abs(half - plain).mean() < np.abs(full - plain).mean() + 1e-6
    assert params["image_prompt_weight"] == 1.0 and params["image_prompt_model"] == built[f"{family}_adapter"].stem
    again, _ = pixels(model)  # the adapter is unloaded for a request without an image prompt
    assert np.array_equal(again, plain)


def test_flux_image_prompt_beside_a_controlnet_and_after_it(models, built):
    flux = models["flux"]
    controls = [{"kind": "none", "image": str(built["reference"]), "model": str(built["flux_cn"])}]
    prompted = {"image_prompts": [{"image": str(built["reference"]), "weight": 1.0}],
                "image_prompt_model": str(built["flux_adapter"])}
    controlled, _ = pixels(flux, controls=controls)
    both, params = pixels(flux, controls=controls, **prompted)
    assert np.abs(both - controlled).mean() > 1.0 and params["image_prompt_weight"] == 1.0
    # Flux's ControlNet img2img pipeline has no IP-Adapter methods: it says so, and after an image prompt
    # (the adapter sits in the shared transformer) a run without one still unloads it and works
    with pytest.raises(ParamError, match="FluxControlNetImg2ImgPipeline has no IP-Adapter Studio can load"):
        pixels(flux, mode="img2img", init_image=str(built["reference"]), controls=controls, **prompted)
    pixels(flux, **prompted)
    plain_i2i, _ = pixels(flux, mode="img2img", init_image=str(built["reference"]))
    pixels(flux, **prompted)
    again, _ = pixels(flux, mode="img2img", init_image=str(built["reference"]))
    assert np.array_equal(again, plain_i2i)
    pixels(flux, **prompted)
    image, _ = pixels(flux, mode="img2img", init_image=str(built["reference"]), controls=controls)
    assert image.shape == (64, 64, 3)


def test_families_without_ip_adapter_say_so(models, built):
    with pytest.raises(ParamError, match=r"work with Stable Diffusion 1.5 / 2.x / SDXL and Flux.1 models in Studio; "
                                         r"StableDiffusion3Pipeline has no IP-Adapter Studio can load"):
        pixels(models["sd3"], image_prompts=[{"image": str(built["reference"])}],
               image_prompt_model=str(built["flux_adapter"]))


def test_flux_image_prompt_from_the_cli_and_sdxl_from_the_panel_session(built, tmp_path, monkeypatch):
    from studio.core.context import StudioContext
    from studio.core.jobs import JobState
    from studio.core.metadata import read_png_parameters
    from studio.core.registry import Registry
    from studio.core.sessions.image import ImageSession
    from studio.core.settings import Settings
    from tests.fixtures.session_driver import run_through

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins")]))
    done = subprocess.run([sys.executable, "-m", "studio", "image", "a cat", "--model", str(built["flux"]),
                           "--steps", "2", "--size", "64x64", "--out", str(tmp_path / "o"),
                           "--image-prompt", f"{built['reference']}:0.6", "--image-prompt-model",
                           str(built["flux_adapter"])], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    meta = read_png_parameters(done.stdout.strip().splitlines()[-1])
    assert meta["image_prompt_weight"] == 0.6 and meta["image_prompt_model"] == "ip_adapter_flux_tiny"

    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    registry = Registry()
    registry.add("diffusers", DiffusersPlugin)
    context = StudioContext.create(Settings(device="cpu", output_dir=str(tmp_path / "out")), registry)
    session = ImageSession(context)
    try:
        session.set_model(str(built["xl"]))
        session.set_values({"prompt": "a cat", "seed": 1, "steps": 2, "size": (64, 64), "preview_every": 0,
                            "image_prompts": [{"image": str(built["reference"]), "weight": 0.4}],
                            "image_prompt_model": str(built["xl_adapter"])})
        run_through(session, session.generate, timeout=240)
        assert session.last_job is not None and session.last_job.state is JobState.DONE
        meta = read_png_parameters(session.results[0].path)
        assert meta["image_prompt_weight"] == 0.4 and meta["image_prompt_model"] == "ip-adapter_tiny"
    finally:
        context.close()
