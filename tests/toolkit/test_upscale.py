"""Upscaling: ESRGAN-architecture (RRDBNet) files built here, tiling, the pickle rule, plugin and CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402
from studio_upscale import UpscalePlugin  # noqa: E402

from studio.plugin_api import CancelToken, Kind, LoadOptions, ParamError, Progress, Result  # noqa: E402
from studio.plugin_kit.upscale import files, models, rrdb, tiles  # noqa: E402
from tests.fixtures import tiny_upscalers  # noqa: E402


@pytest.fixture(scope="module")
def state():
    return tiny_upscalers.rrdb_state()


@pytest.fixture
def picture(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "in.png"
    Image.fromarray((rng.random((40, 56, 3)) * 255).astype(np.uint8)).save(path)
    return path


def test_both_state_dict_layouts_load_the_same_network(state):
    new, old = rrdb.from_state_dict(state), rrdb.from_state_dict(tiny_upscalers.old_layout(state))
    x = torch.rand(1, 3, 12, 10)
    assert new.scale == 4 and torch.equal(new(x), old(x)) and new(x).shape == (1, 3, 48, 40)
    x2 = rrdb.from_state_dict(tiny_upscalers.rrdb_state(unshuffle=2))  # Real-ESRGAN x2plus layout
    assert x2.scale == 2 and x2(x).shape == (1, 3, 24, 20)


def test_tiles_join_without_seams(state):
    net = rrdb.from_state_dict(state)
    image = Image.fromarray((np.random.default_rng(1).random((50, 70, 3)) * 255).astype(np.uint8))
    whole = np.asarray(tiles.run_tiled(net, image, 4, tile=1024))
    seen = []
    tiled = np.asarray(tiles.run_tiled(net, image, 4, tile=24, overlap=16, on_tile=lambda d, t: seen.append((d, t))))
    assert tiled.shape == (200, 280, 3) and seen[-1] == (9, 9)
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1
    assert len(tiles.tile_boxes(70, 50, 24)) == 9


def test_pickle_refused_unless_allowed(tmp_path, state):
    pth = tiny_upscalers.save_pickle(state, tmp_path / "esrgan.pth")
    plugin = UpscalePlugin()
    with pytest.raises(ParamError, match="pickle"):
        plugin.load(str(pth), LoadOptions(), lambda m: None)
    model = plugin.load(str(pth), LoadOptions(allow_pickle=True), lambda m: None)
    assert model.upscaler.scale == 4


def test_other_architectures_say_what_is_missing(tmp_path):
    path = tiny_upscalers.save_safetensors({"weird.weight": torch.zeros(2, 2)}, tmp_path / "swinir.safetensors")
    if models.spandrel_available() is None:
        pytest.skip("spandrel is importable here: it reads any architecture")
    with pytest.raises(files.UpscalerFileError, match="spandrel"):
        models.load(path)


def run_model(model, request, cancel=None):
    events = list(model.run(request, cancel or CancelToken()))
    assert isinstance(events[-1], Result)
    return events


def test_plugin_upscales_with_the_models_factor_then_lanczos(tmp_path, state, picture):
    path = tiny_upscalers.save_safetensors(state, tmp_path / "4x-tiny.safetensors")
    model = UpscalePlugin().load(str(path), LoadOptions(), lambda m: None)
    events = run_model(model, {"image": str(picture), "tile": 16})
    image = events[-1].artifacts[0].image
    assert image.size == (224, 160)  # the model's own x4
    assert sum(isinstance(e, Progress) for e in events) == 12  # 4x3 tiles of 16 px reported live
    params = events[-1].artifacts[0].parameters
    assert params["postprocess_upscaler"] == "4x-tiny" and params["postprocess_upscale_by"] == 4
    events = run_model(model, {"image": str(picture), "scale": 2.0})
    assert events[-1].artifacts[0].image.size == (112, 80)
    lanczos = UpscalePlugin().load("lanczos", LoadOptions(), lambda m: None)
    assert run_model(lanczos, {"image": str(picture), "scale": 3})[-1].artifacts[0].image.size == (168, 120)


def test_cancel_between_tiles(tmp_path, state, picture):
    from studio.plugin_api import Cancelled

    path = tiny_upscalers.save_safetensors(state, tmp_path / "4x.safetensors")
    model = UpscalePlugin().load(str(path), LoadOptions(), lambda m: None)
    cancel = CancelToken()
    gen = model.run({"image": str(picture), "tile": 8}, cancel)
    assert isinstance(next(gen), Progress)
    cancel.cancel()
    with pytest.raises(Cancelled):
        list(gen)


def _entry_point_dist(root: Path) -> None:
    """Register the upscale entry point without pip (the shared venv's install predates it)."""
    info = root / "studio_upscale_ep-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: studio-upscale-ep\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[studio.plugins]\nupscale = studio_upscale:UpscalePlugin\n")


def _cli(tmp_path, *args):
    root = Path(__file__).resolve().parents[2]
    if not (tmp_path / "eps").exists():
        (tmp_path / "eps").mkdir()
        _entry_point_dist(tmp_path / "eps")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "eps"), str(root), str(root / "plugins")]))
    return subprocess.run([sys.executable, "-m", "studio", "upscale", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def test_cli_upscale_writes_result_with_metadata_and_refuses_pickle(tmp_path, state, picture):
    from studio.core.metadata import read_png_parameters

    model = tiny_upscalers.save_safetensors(state, tmp_path / "4x.safetensors")
    source = tmp_path / "src.png"
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", "a red circle\nSteps: 20, Sampler: Euler, Seed: 3, Size: 56x40")
    Image.open(picture).save(source, pnginfo=info)
    out = tmp_path / "big.png"
    done = _cli(tmp_path, str(source), "--model", str(model), "--scale", "2", "--out", str(out))
    assert done.returncode == 0, done.stderr
    with Image.open(out) as image:
        assert image.size == (112, 80)
    meta = read_png_parameters(str(out))
    assert meta["prompt"] == "a red circle" and meta["seed"] == 3
    assert meta["postprocess_upscale_by"] == 2.0 and meta["postprocess_upscaler"] == "4x"
    again = _cli(tmp_path, str(source), "--out", str(out))
    assert again.returncode == 2 and "already exists" in again.stderr
    pth = tiny_upscalers.save_pickle(state, tmp_path / "4x.pth")
    refused = _cli(tmp_path, str(source), "--model", str(pth))
    assert refused.returncode == 2 and "pickle" in refused.stderr and "Traceback" not in refused.stderr
    allowed = _cli(tmp_path, str(source), "--model", str(pth), "--allow-pickle")
    assert allowed.returncode == 0, allowed.stderr
    assert Kind.UPSCALE.value == "upscale"


def test_own_rrdbnet_matches_spandrel_where_spandrel_imports(tmp_path):
    """Where spandrel can be imported (a torch + torchvision pair), both paths give the same pixels.
    (Measured once in a throwaway venv with torch 2.14.1 + torchvision 0.29.1 + spandrel 0.4.2: max
    difference 0.0 for both key layouts and the x2plus variant.)"""
    if models.spandrel_available() is not None:
        pytest.skip(f"spandrel does not import here: {models.spandrel_available()}")
    state = tiny_upscalers.rrdb_state(feats=16, grow=32, blocks=1)  # spandrel's ESRGAN assumes 32 growth channels
    for layout in (state, tiny_upscalers.old_layout(state)):
        path = tiny_upscalers.save_safetensors(layout, tmp_path / "x4.safetensors")
        loaded = models.load(path)
        x = torch.rand(1, 3, 16, 16)
        with torch.no_grad():
            assert loaded.library == "spandrel"
            assert torch.allclose(loaded.net(x), rrdb.from_state_dict(state)(x), atol=1e-6)
