"""Latent tests: tiny real models built once per session (a briefly trained vector VAE and a
tiny random SD pipeline of the real architecture), and the shipped models when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[2]
#: the shipped Shapes VAE; STUDIO_TEST_SHAPES_VAE points the checks at another export (e.g. a checkpoint)
SHIPPED_VAE = Path(os.environ.get("STUDIO_TEST_SHAPES_VAE") or REPO / "assets" / "models" / "shapes-vae")


@pytest.fixture(scope="session")
def one_thread():
    torch = pytest.importorskip("torch")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models on a shared 2-core machine: threads only add contention
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_vae_folder(tmp_path_factory, one_thread) -> Path:
    from tests.latent.tiny_vae import build_tiny_vae

    return build_tiny_vae(tmp_path_factory.mktemp("vae") / "tiny-vae", steps=120)


@pytest.fixture(scope="session")
def tiny_sd_folder(tmp_path_factory, one_thread) -> Path:
    pytest.importorskip("diffusers")
    from tests.fixtures import tiny_diffusers

    return tiny_diffusers.build_sd(tmp_path_factory.mktemp("sd") / "tiny-sd")


@pytest.fixture(scope="session")
def tiny_sdxl_folder(tmp_path_factory, one_thread) -> Path:
    pytest.importorskip("diffusers")
    from tests.fixtures import tiny_diffusers

    return tiny_diffusers.build_sdxl(tmp_path_factory.mktemp("sdxl") / "tiny-sdxl")


@pytest.fixture(scope="module")
def plugin():
    """The diffusion latent plugin (modules that test another plugin define their own ``plugin``)."""
    from studio_latent import DiffusionLatentPlugin

    return DiffusionLatentPlugin()


@pytest.fixture(scope="module")
def sd(plugin, tiny_sd_folder):
    """The tiny random SD 1.5 pipeline, loaded through the plugin."""
    from studio.plugin_api import LoadOptions

    m = plugin.load(str(tiny_sd_folder), LoadOptions(), lambda s: None)
    yield m
    m.unload()


@pytest.fixture(scope="session")
def shipped_vae_folder() -> Path:
    if not (SHIPPED_VAE / "model.safetensors").is_file():
        pytest.skip("assets/models/shapes-vae is not shipped yet (the vector VAE is still training); "
                    "these checks run once it is exported")
    return SHIPPED_VAE


@pytest.fixture
def scene_png(tmp_path):
    """A rendered Shapes scene saved as PNG (a black-background circle)."""
    from studio.shapes import world

    scene = world.Scene("black", (world.continuous_object("circle", 26.0, 34.0, 8.0, 0.3),))
    path = tmp_path / "scene.png"
    world.render_pil(scene).save(path)
    return path
