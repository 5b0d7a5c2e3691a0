"""Inpainting options (mask blur, only masked with padding, masked content) on a tiny SD pipeline."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from PIL import Image  # noqa: E402

from studio.plugin_api import CancelToken, LoadOptions, ParamError, Result  # noqa: E402
from studio_diffusers import DiffusersPlugin, inpaint_options  # noqa: E402
from tests.fixtures import tiny_diffusers  # noqa: E402


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("inp")
    rng = np.random.default_rng(0)
    big = (rng.random((160, 240, 3)) * 255).astype(np.uint8)
    Image.fromarray(big).save(root / "init.png")
    mask = np.zeros((160, 240), dtype=np.uint8)
    mask[60:80, 150:170] = 255  # a small hole, off-centre
    Image.fromarray(mask).save(root / "mask.png")
    Image.fromarray(np.zeros((160, 240), dtype=np.uint8)).save(root / "empty.png")
    return {"init": root / "init.png", "mask": root / "mask.png", "empty": root / "empty.png",
            "sd": tiny_diffusers.build_sd(root / "sd")}


@pytest.fixture(scope="module")
def sd(files):
    torch.set_num_threads(1)
    model = DiffusersPlugin().load(str(files["sd"]), LoadOptions(), lambda m: None)
    yield model
    model.unload()


def run(model, files, **extra):
    request = {"mode": "inpaint", "prompt": "x", "seed": 1, "steps": 4, "size": (64, 64), "strength": 1.0,
               "preview_every": 0, "init_image": str(files["init"]), "mask_image": str(files["mask"]), **extra}
    events = list(model.run(request, CancelToken()))
    assert isinstance(events[-1], Result)
    return events[-1].artifacts[0]


def test_only_masked_keeps_the_full_size_and_every_pixel_outside(sd, files):
    artifact = run(sd, files, inpaint_area="Only masked", masked_padding=8, mask_blur=0)
    out = np.asarray(artifact.image, dtype=int)
    source = np.asarray(Image.open(files["init"]), dtype=int)
    assert out.shape == source.shape  # pasted back into the 240x160 original
    outside = np.ones(source.shape[:2], dtype=bool)
    outside[60:80, 150:170] = False
    assert np.array_equal(out[outside], source[outside])
    assert np.abs(out[60:80, 150:170] - source[60:80, 150:170]).mean() > 5
    params = artifact.parameters
    assert params["inpaint_area"] == "Only masked" and params["masked_padding"] == 8 and params["mask_blur"] == 0


def test_crop_box_has_padding_and_the_output_aspect():
    mask = Image.new("L", (240, 160))
    mask.paste(255, (150, 60, 170, 80))
    box = inpaint_options._crop_box(mask, 8, (64, 64))
    assert box == (142, 52, 178, 88)  # 20 px + 2 x 8 padding, square like the 64x64 output
    wide = inpaint_options._crop_box(mask, 8, (128, 64))
    assert (wide[2] - wide[0]) == 2 * (wide[3] - wide[1])
    corner = inpaint_options._crop_box(mask, 200, (64, 64))
    assert corner[0] >= 0 and corner[1] >= 0 and corner[2] <= 240 and corner[3] <= 160


def test_mask_blur_softens_the_edge_and_content_modes_differ(sd, files):
    hard = inpaint_options.prepare({"init_image": str(files["init"]), "mask_image": str(files["mask"]),
                                    "mask_blur": 0}, (64, 64), 0)
    soft = inpaint_options.prepare({"init_image": str(files["init"]), "mask_image": str(files["mask"]),
                                    "mask_blur": 6}, (64, 64), 0)
    assert len(np.unique(np.asarray(soft.mask))) > len(np.unique(np.asarray(hard.mask)))
    starts = {c: np.asarray(inpaint_options.prepare({"init_image": str(files["init"]),
                                                     "mask_image": str(files["mask"]), "masked_content": c},
                                                    (64, 64), 0).init, dtype=int)
              for c in inpaint_options.CONTENTS}
    assert not np.array_equal(starts["fill"], starts["original"])
    assert not np.array_equal(starts["latent noise"], starts["fill"])
    # fill is smooth inside the hole: far less variation than the random original there
    original = np.asarray(Image.open(files["init"]), dtype=float)[60:80, 150:170]
    filled = np.asarray(inpaint_options._content(Image.open(files["init"]), Image.open(files["mask"]).convert("L"),
                                                 "fill", 0), dtype=float)[60:80, 150:170]
    assert filled.std() < original.std() / 3
    images = {c: np.asarray(run(sd, files, masked_content=c, strength=0.6).image, dtype=int) for c in
              ("original", "fill")}
    assert not np.array_equal(images["original"], images["fill"])


def test_empty_mask_with_only_masked_is_refused(sd, files):
    with pytest.raises(ParamError, match="mask is empty"):
        run(sd, files, mask_image=str(files["empty"]), inpaint_area="Only masked")
