"""ControlNet beyond SD 1.5: SDXL (plain and ControlNet-Union), Flux.1 (plain and union) and SD3, each a tiny
random ControlNet of the real class built from a tiny pipeline's config, saved with save_pretrained and loaded
through the plugin; the class comes from the folder's config.  Each family runs through the plugin (weight 0
gives the image without control, weight 1 changes it), the Image panel's session and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from studio.plugin_api import CancelToken, LoadOptions, Log, ParamError, Result  # noqa: E402
from studio_diffusers import DiffusersPlugin  # noqa: E402
from tests.fixtures import families, tiny_controlnets, tiny_diffusers  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("cnf")
    xl = tiny_diffusers.build_sdxl(root / "xl")
    flux = families.build_flux(root / "flux")
    sd3 = families.build_sd3(root / "sd3", layers=2)
    return {"xl": xl, "flux": flux, "sd3": sd3,
            "xl_cn": tiny_controlnets.build_controlnet(root / "xl-cn", xl),
            "xl_union": tiny_controlnets.build_union_controlnet(root / "xl-union", xl),
            "flux_cn": tiny_controlnets.build_flux_controlnet(root / "flux-cn", flux),
            "flux_cn2": tiny_controlnets.build_flux_controlnet(root / "flux-cn2", flux, seed=3),
            "flux_union": tiny_controlnets.build_flux_controlnet(root / "flux-union", flux, modes=7),
            "sd3_cn": tiny_controlnets.build_sd3_controlnet(root / "sd3-cn", sd3),
            "sketch": tiny_controlnets.scribble(root / "sketch.png", 128)}


@pytest.fixture(scope="module")
def models(built):
    plugin = DiffusersPlugin()
    loaded = {name: plugin.load(str(built[name]), LoadOptions(), lambda m: None) for name in ("xl", "flux", "sd3")}
    yield loaded
    for model in loaded.values():
        model.unload()


def pixels(model, **request):
    request = {"mode": "txt2img", "prompt": "a cat", "seed": 4, "steps": 2, "size": (64, 64), "preview_every": 0,
               **request}
    events = list(model.run(request, CancelToken()))
    assert isinstance(events[-1], Result)
    return np.asarray(events[-1].artifacts[0].image, dtype=float), events[-1].artifacts[0].parameters


def control(built, net, weight=1.0, kind="canny", **extra):
    return [{"kind": kind, "image": str(built["sketch"]), "model": str(built[net]), "weight": weight, **extra}]


@pytest.mark.parametrize(("family", "net"), [("xl", "xl_union"), ("flux", "flux_cn"), ("flux", "flux_union"),
                                             ("sd3", "sd3_cn")])
def test_weight_changes_the_image_and_zero_gives_the_plain_one(models, built, family, net):
    model = models[family]
    plain, _ = pixels(model)
    zero, _ = pixels(model, controls=control(built, net, 0.0))
    full, params = pixels(model, controls=control(built, net, 1.0))
    half, _ = pixels(model, controls=control(built, net, 0.5))
    assert np.abs(zero - plain).max() <= 1.0  # weight 0: the image without control (rounding at most)
    assert np.abs(full - plain).mean() > 1.0
    assert 0 < np.abs(half - plain).mean() < np.abs(full - plain).mean() + 1e-6
    assert params["controlnets"][0].startswith(f"Module: canny, Model: {built[net].name}, Weight: 1")
    again, _ = pixels(model, controls=control(built, net, 1.0))
    assert np.array_equal(again, full)  # the same seed gives the same controlled image


def test_union_models_take_a_control_mode_from_the_map_type_or_the_user(models, built):
    xl, flux = models["xl"], models["flux"]
    # SDXL union (xinsir table): canny edges -> 3, scribble -> 2; the mode changes the image
    edges, params = pixels(xl, controls=control(built, "xl_union"))
    assert params["controlnets"][0].endswith("Control Mode: 3")
    as_pose, params = pixels(xl, controls=control(built, "xl_union", control_mode=0))
    assert params["controlnets"][0].endswith("Control Mode: 0") and np.abs(edges - as_pose).mean() > 0.5
    _, params = pixels(xl, controls=control(built, "xl_union", kind="scribble"))
    assert params["controlnets"][0].endswith("Control Mode: 2")
    # the union pipeline's img2img sibling: weight 0 is plain img2img, weight 1 is not
    image = {"mode": "img2img", "init_image": str(built["sketch"]), "strength": 0.7}
    plain, _ = pixels(xl, **image)
    zero, _ = pixels(xl, **image, controls=control(built, "xl_union", 0.0))
    full, params = pixels(xl, **image, controls=control(built, "xl_union"))
    assert np.abs(zero - plain).max() <= 1.0 and np.abs(full - plain).mean() > 1.0 and params["mode"] == "img2img"
    # Flux union (InstantX table) has no scribble mode: the user is asked for one, and it is checked
    with pytest.raises(ParamError, match="give the control mode"):
        pixels(flux, controls=control(built, "flux_union", kind="scribble"))
    with pytest.raises(ParamError, match="outside this union ControlNet's 0-6"):
        pixels(flux, controls=control(built, "flux_union", control_mode=9))
    _, params = pixels(flux, controls=control(built, "flux_union", kind="scribble", control_mode=5))
    assert params["controlnets"][0].endswith("Control Mode: 5")
    # a plain ControlNet has no modes: nothing is recorded, and a mode given for one is said to be ignored
    events = list(flux.run({"mode": "txt2img", "prompt": "a cat", "seed": 4, "steps": 2, "size": (64, 64),
                            "preview_every": 0, "controls": control(built, "flux_cn", control_mode=1)}, CancelToken()))
    assert "Control Mode" not in events[-1].artifacts[0].parameters["controlnets"][0]
    warnings = [e.message for e in events if isinstance(e, Log) and e.level == "warning"]
    said = "Control input 1: control mode 1 was ignored: flux-cn is not a union ControlNet (it has no modes)."
    assert said in warnings


def test_several_flux_controlnets_and_flux_img2img_and_inpaint(models, built, tmp_path):
    flux = models["flux"]
    one, _ = pixels(flux, controls=control(built, "flux_cn"))
    two, params = pixels(flux, controls=control(built, "flux_cn") + control(built, "flux_cn2", 0.8))
    assert np.abs(one - two).mean() > 0.5 and len(params["controlnets"]) == 2
    from PIL import Image

    init = tmp_path / "init.png"
    Image.fromarray((np.random.default_rng(1).random((64, 64, 3)) * 255).astype(np.uint8)).save(init)
    mask = tmp_path / "mask.png"
    Image.fromarray(np.pad(np.full((32, 32), 255, np.uint8), 16)).save(mask)
    for mode, extra in (("img2img", {}), ("inpaint", {"mask_image": str(mask)})):
        request = {"mode": mode, "init_image": str(init), "strength": 0.8, **extra}
        plain, _ = pixels(flux, **request)
        zero, _ = pixels(flux, **request, controls=control(built, "flux_cn", 0.0))
        controlled, params = pixels(flux, **request, controls=control(built, "flux_cn"))
        assert params["mode"] == mode and np.abs(controlled - plain).mean() > 1.0, mode
        assert np.abs(zero - plain).max() <= 1.0, mode  # the control image's encoding draws apart


def test_the_config_decides_the_class_and_the_family_must_match(models, built):
    with pytest.raises(ParamError, match=r"flux-cn is a Flux.1 ControlNet \(FluxControlNetModel\).*"
                                         r"StableDiffusion3Pipeline, which takes SD3ControlNetModel"):
        pixels(models["sd3"], controls=control(built, "flux_cn"))
    with pytest.raises(ParamError, match="takes ControlNetModel or ControlNetUnionModel"):
        pixels(models["xl"], controls=control(built, "sd3_cn"))
    with pytest.raises(ParamError, match="run txt2img in this diffusers, not img2img"):
        pixels(models["sd3"], mode="img2img", init_image=str(built["sketch"]), controls=control(built, "sd3_cn"))
    with pytest.raises(ParamError, match="cannot run together"):
        pixels(models["xl"], controls=control(built, "xl_cn") + control(built, "xl_union"))
    # the name says nothing: a Flux ControlNet in a folder called like an SDXL one is still read as Flux
    renamed = built["flux_cn"].with_name("controlnet-sdxl-canny")
    if not renamed.exists():
        renamed.symlink_to(built["flux_cn"], target_is_directory=True)
    full, _ = pixels(models["flux"], controls=[{"kind": "canny", "image": str(built["sketch"]),
                                                "model": str(renamed)}])
    assert full.shape == (64, 64, 3)


def test_each_family_through_the_panel_session(built, tmp_path, monkeypatch):
    from studio.core.context import StudioContext
    from studio.core.jobs import JobState
    from studio.core.metadata import read_png_parameters
    from studio.core.registry import Registry
    from studio.core.sessions.image import ImageSession
    from studio.core.settings import Settings
    from tests.fixtures.session_driver import run_through

    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    registry = Registry()
    registry.add("diffusers", DiffusersPlugin)
    context = StudioContext.create(Settings(device="cpu", output_dir=str(tmp_path / "out")), registry)
    session = ImageSession(context)
    try:
        for family, net in (("xl", "xl_cn"), ("xl", "xl_union"), ("flux", "flux_union"), ("sd3", "sd3_cn")):
            session.set_model(str(built[family]))
            session.set_values({"prompt": "a circle", "seed": 2, "steps": 2, "size": (64, 64), "preview_every": 0,
                                "controls": control(built, net, 0.7, kind="scribble", control_mode=2)})
            said: list[str] = []
            session.message.connect(lambda level, text, said=said: said.append(text))
            run_through(session, session.generate, timeout=240)
            job = session.last_job
            if net == "xl_cn":  # a plain ControlNet: the mode was not applied, and the panel says so
                assert any("control mode 2 was ignored" in text for text in said), said
            assert job is not None and job.state is JobState.DONE, family
            meta = read_png_parameters(session.results[0].path)
            assert meta["ControlNet 0"].startswith(f"Module: scribble, Model: {built[net].name}, Weight: 0.7"), meta
            assert ("Control Mode: 2" in meta["ControlNet 0"]) == (net in ("xl_union", "flux_union"))
    finally:
        context.close()


@pytest.mark.parametrize(("family", "net", "extra"), [
    ("xl", "xl_cn", []), ("xl", "xl_union", ["--control-mode", "1"]), ("flux", "flux_cn", []), ("sd3", "sd3_cn", [])])
def test_cli(tmp_path, built, family, net, extra):
    from studio.core.metadata import read_png_parameters

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins")]))
    args = [sys.executable, "-m", "studio", "image", "a cat", "--model", str(built[family]), "--steps", "2",
            "--size", "64x64", "--seed", "1", "--out", str(tmp_path / "out"),
            "--control", f"canny:{built['sketch']}", "--control-model", str(built[net]),
            "--control-weight", "0.6", "--control-range", "0-0.9", *extra]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    meta = read_png_parameters(done.stdout.strip().splitlines()[-1])
    assert "Weight: 0.6" in meta["ControlNet 0"] and "Guidance End: 0.9" in meta["ControlNet 0"]
    assert ("Control Mode: 1" in meta["ControlNet 0"]) == bool(extra)
