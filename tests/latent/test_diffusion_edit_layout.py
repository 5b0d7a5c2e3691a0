"""The "reshape" layout of diffusion edits on the user's own image (issue #13, edit quality):
inside each text edit's box the stored residuals give way to fresh noise while the region's low
frequencies are held, so a new shape can take room the old one did not.

The sampler is checked on a tiny random SD 1.5 pipeline of the real architecture; the shape edit
itself on the built-in shapes-sd model with held-out PIL-drawn scenes (skipped if it is not shipped)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from PIL import Image, ImageDraw  # noqa: E402

from studio.plugin_api import CancelToken, LoadOptions, ParamError, Result, validate_request  # noqa: E402
from studio_latent import ddpm_edit, image_edit  # noqa: E402
from studio_latent import diffusion_quality as dq  # noqa: E402

STEPS = 6


@pytest.fixture
def drawing(tmp_path):
    image = Image.new("RGB", (64, 64), (10, 10, 10))
    ImageDraw.Draw(image).ellipse((18, 22, 42, 46), fill=(220, 30, 30))
    image.save(tmp_path / "mine.png")
    return tmp_path / "mine.png"


def run(plugin, model, mode, **values) -> Result:
    values.setdefault("steps", STEPS)
    if mode in ("edit", "encode"):
        values.setdefault("refine", 5)
    out = list(model.run(validate_request(plugin.parameters(), values, mode), CancelToken()))
    assert isinstance(out[-1], Result)
    return out[-1]


def px(result: Result) -> np.ndarray:
    return np.asarray(result.artifacts[0].image, dtype=np.float64)


# ------------------------------------------------------------------------------ the sampler
def test_boxed_gives_each_part_its_own_grown_box():
    mask = torch.zeros((1, 1, 16, 16))
    mask[..., 3, 4:6] = 1.0
    mask[..., 4, 3:7] = 1.0  # a small plus-like blob
    mask[..., 12, 12] = 1.0  # a second part far away
    box = ddpm_edit.boxed(mask, grow=1)
    assert box[0, 0, 2:6, 2:8].eq(1).all() and box[0, 0, 11:14, 11:14].eq(1).all()
    assert int(box.sum()) == 4 * 6 + 3 * 3  # two boxes, not one covering both parts
    assert ddpm_edit.boxed(torch.zeros((1, 1, 8, 8))).sum() == 0


def test_reshape_redraws_inside_the_mask_only_and_holds_low_frequencies(sd):
    from studio_latent.denoiser import Conditions, Denoiser

    x0 = torch.randn((1, 4, 32, 32), generator=torch.Generator().manual_seed(0))
    schedule = ddpm_edit.Schedule.from_config(sd.pipe.scheduler.config, 8)
    conds = Conditions(sd.pipe, (64, 64), False, ["a red circle"])
    inv = ddpm_edit.invert(Denoiser(sd.pipe.unet, conds, only=0), schedule, x0, skip=0.0, seed=3)
    other = conds.add("a red square")
    model = Denoiser(sd.pipe.unet, conds)
    mask = torch.zeros((1, 1, 32, 32))
    mask[..., 8:20, 8:20] = 1.0

    def edit(amount, reshape, m=mask):
        return ddpm_edit.sample(model, schedule, inv, [ddpm_edit.Guide(other, 0, amount, m, reshape, full=4.0)])

    kept, redrawn = edit(4.0, 0.0), edit(4.0, 1.0)
    # outside the mask both stay exactly on the inverted chain; inside, fresh noise changes the picture
    assert torch.equal(redrawn[..., 24:, :], x0[..., 24:, :]) and torch.equal(kept[..., 24:, :], x0[..., 24:, :])
    inside = (redrawn - kept).abs()[..., 8:20, 8:20].mean()
    assert inside > 1e-2
    # ... but the held low frequencies keep the region's coarse content closer to the source than its detail
    low = (ddpm_edit.blur(redrawn, ddpm_edit.HOLD_SIGMA) - ddpm_edit.blur(x0, ddpm_edit.HOLD_SIGMA))
    assert low.abs()[..., 10:18, 10:18].mean() < (redrawn - x0).abs()[..., 10:18, 10:18].mean()
    # the same edit draws the same picture; amount 0 is the reconstruction; a weaker one mixes less noise
    assert torch.equal(edit(4.0, 1.0), redrawn)
    assert edit(0.0, 1.0) is inv.x0
    weak = edit(1.0, 1.0)
    assert (weak - edit(1.0, 0.0)).abs()[..., 8:20, 8:20].mean() < inside


# ------------------------------------------------------------------------------ through the plugin
def test_layout_is_applied_recorded_and_reverses(plugin, sd, drawing):
    enc = run(plugin, sd, "encode", image=str(drawing))
    zero = run(plugin, sd, "edit", image=str(drawing), pairs=[["circle", "square", 0.0]], layout="reshape")
    assert np.array_equal(px(zero), px(enc))  # amount 0 is still the reconstruction
    values = {"image": str(drawing), "prompt": "a red circle", "pairs": [["circle", "square", 1.0]]}
    keep = run(plugin, sd, "edit", layout="keep", **values)
    reshaped = run(plugin, sd, "edit", layout="reshape", **values)
    assert keep.info["layout"] == ["circle->square: keep"] and keep.info["recipe"]["layout"] == "keep"
    assert reshaped.info["layout"] == ["circle->square: reshape"] and reshaped.info["recipe"]["layout"] == "reshape"
    assert not np.array_equal(px(keep), px(reshaped))
    # auto (the default) measures how broad the predicted change is, and says what it chose
    auto = run(plugin, sd, "edit", **values)
    (share,) = auto.info["broad_share"]
    assert 0.0 <= share <= 1.0 and auto.info["recipe"]["layout"] == "auto"
    chosen = "reshape" if share < image_edit.AUTO_BROAD else "keep"
    assert auto.info["layout"] == [f"circle->square: {chosen}"]
    assert np.array_equal(px(auto), px(reshaped if chosen == "reshape" else keep))
    # several at once, and negative strength reverses (no prompt, masks off: the same guidance, sign flipped)
    both = run(plugin, sd, "edit", image=str(drawing), pairs=[["circle", "square", 1.0], ["red", "blue", 1.0]],
               layout="reshape", concepts=[["stripes", 0.0]])
    assert both.info["layout"] == ["circle->square: reshape", "red->blue: reshape"]  # no entry for a 0 concept
    assert both.info["applied"] == ["circle->square x1", "red->blue x1"] and len(both.info["mask_share"]) == 3
    rev = run(plugin, sd, "edit", image=str(drawing), pairs=[["circle", "square", -1.0]], masks=False,
              layout="reshape")
    flip = run(plugin, sd, "edit", image=str(drawing), pairs=[["square", "circle", 1.0]], masks=False,
               layout="reshape")
    assert np.array_equal(px(rev), px(flip)) and not np.array_equal(px(rev), px(enc))
    with pytest.raises(ParamError):
        run(plugin, sd, "edit", image=str(drawing), pairs=[["circle", "square", 1.0]], layout="sideways")


def test_quality_measures_a_background_edit_and_names_the_layout(plugin, sd):
    case = dq.parse_case("Black background -> white background")
    assert (case.attribute, case.source, case.target) == ("background", "black", "white")
    assert case.words == ("black background", "white background")
    scenes = dq.scenes_for(case, 3, seed=5)
    assert all(sc.background == "black" and dq.read(sc.image)["background"] == "black" for sc in scenes)
    assert dq.parse_case("triangle->circle").attribute == "shape"
    assert dq.parse_case("green->yellow").attribute == "color"
    with pytest.raises(ValueError, match="background"):
        dq.parse_case("black background->black background")
    r = run(plugin, sd, "quality", scenes=1, strengths=[0.0, 1.0], steps=3, refine=0, layout="reshape")
    assert set(r.info["quality"]) == {"reconstruction", *dq.DEFAULT_CASES}
    assert "layout reshape" in r.info["method"]


# ------------------------------------------------------------------------------ the built-in model
def test_shape_edits_on_held_out_drawings_become_the_new_shape(plugin, tmp_path):
    """circle->square and triangle->circle on drawn scenes of seeds used nowhere else (not the tuning
    seed 1 nor the reported 100 / 200), the layout left to "auto": it must reshape them, and they must
    read back as the new shape with colour, position and background kept (4 of 6 when written; the
    stored residuals alone, layout keep: 1 of 6, the rest still the old shape).  A colour edit on the
    same kind of scene must keep the layout."""
    from studio_latent import default_sd_folder

    if not (default_sd_folder() / "model_index.json").is_file():
        pytest.skip("the built-in shapes-sd model is not shipped here")
    model = plugin.load(str(default_sd_folder()), LoadOptions(), lambda s: None)
    try:
        done, layouts = 0, {}
        for text, seed in (("circle->square", 31), ("triangle->circle", 32), ("red->blue", 33)):
            case = dq.parse_case(text)
            for i, sc in enumerate(dq.scenes_for(case, 3 if case.attribute == "shape" else 2, seed)):
                path = tmp_path / f"{case.source}{i}.png"
                sc.image.save(path)
                result = run(plugin, model, "edit", image=str(path), prompt=sc.prompt, steps=20, refine=30,
                             pairs=[[case.source, case.target, 1.0]])
                layouts.setdefault(case.attribute, set()).update(result.info["layout"])
                before, after = dq.read(sc.image), dq.read(result.artifacts[0].image)
                kept = dq.kept(before, after, ignore=(case.attribute, "size"))
                if case.attribute == "shape":
                    done += after is not None and after["shape"] == case.target and all(kept.values())
        assert layouts == {"shape": {"circle->square: reshape", "triangle->circle: reshape"},
                           "color": {"red->blue: keep"}}
        assert done >= 3, f"only {done} of 6 held-out shape edits came out clean"
    finally:
        model.unload()
