"""Kept-layout edits sample with the unedited picture's self-attention maps (issue #13: a colour
edit keeps the object's shape and place).  Checked on tiny random SD 1.5 and SDXL UNets of the real
architecture, loaded from a saved pipeline folder as a user's would be."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from studio_latent import ddpm_edit  # noqa: E402
from studio_latent.denoiser import Conditions, Denoiser  # noqa: E402


@pytest.fixture(scope="module", params=["sd", "sdxl"])
def pipe(request, tiny_sd_folder, tiny_sdxl_folder):
    folder = tiny_sd_folder if request.param == "sd" else tiny_sdxl_folder
    return diffusers.DiffusionPipeline.from_pretrained(str(folder)), request.param == "sdxl"


def model_for(pipe, xl):
    p, _ = pipe
    size = (p.unet.config.sample_size * p.vae_scale_factor,) * 2
    conds = Conditions(p, size, xl, ["a red circle on a black background", "a blue circle on a black background"])
    return Denoiser(p.unet, conds), p.unet.config.in_channels, p.unet.config.sample_size


def test_rows_attend_with_the_source_rows_maps_and_processors_come_back(pipe):
    p, xl = pipe
    model, c, s = model_for(pipe, xl)
    before = {name: type(proc) for name, proc in p.unet.attn_processors.items()}
    x = torch.randn((1, c, s, s), generator=torch.Generator().manual_seed(0))
    t = torch.tensor([500])
    plain = model(x, t)
    shared = model(x, t, reference=x, keep=torch.ones((1, 1, s, s)))
    assert shared.shape == plain.shape
    # the source row is the reference's own picture and prompt: its maps are its own
    assert torch.allclose(shared[:1], plain[:1], atol=1e-5)
    # the edited prompt's row attends with the source's maps, not the ones its own words would give
    assert (shared[1:] - plain[1:]).abs().max() > 1e-4
    assert {name: type(proc) for name, proc in p.unet.attn_processors.items()} == before


def test_the_reference_layout_acts_only_where_keep_says(pipe):
    p, xl = pipe
    model, c, s = model_for(pipe, xl)
    gen = torch.Generator().manual_seed(1)
    x, ref = torch.randn((1, c, s, s), generator=gen), torch.randn((1, c, s, s), generator=gen)
    t = torch.tensor([300])
    plain = model(x, t)
    nowhere = model(x, t, reference=ref, keep=torch.zeros((1, 1, s, s)))
    everywhere = model(x, t, reference=ref, keep=torch.ones((1, 1, s, s)))
    assert torch.allclose(nowhere, plain, atol=1e-4)
    assert (everywhere - plain).abs().mean() > 1e-3, "another picture's maps change the prediction"


def test_a_structure_guide_at_amount_zero_is_the_reconstruction_and_otherwise_edits(pipe):
    p, xl = pipe
    model, c, s = model_for(pipe, xl)
    x0 = torch.randn((1, c, s, s), generator=torch.Generator().manual_seed(2))
    schedule = ddpm_edit.Schedule.from_config(p.scheduler.config, 5)
    inversion_model = Denoiser(p.unet, model.conds, only=0)
    inv = ddpm_edit.invert(inversion_model, schedule, x0, 0.2, seed=0)
    same = ddpm_edit.sample(model, schedule, inv, [ddpm_edit.Guide(1, 0, 0.0, structure=True)])
    assert torch.equal(same, x0)
    plain = ddpm_edit.sample(model, schedule, inv, [ddpm_edit.Guide(1, 0, 2.0)])
    kept = ddpm_edit.sample(model, schedule, inv, [ddpm_edit.Guide(1, 0, 2.0, structure=True)])
    assert (kept - x0).abs().mean() > 1e-4 and (kept - plain).abs().mean() > 1e-5
