"""Implicit edit masks snapped to the image's own regions (issue #13: a colour edit recolours the
object, not half of it and the background beside it).

The snapping is checked on drawn pictures with cues placed off the object the way a small model's
cue drifts; the whole edit on the built-in shapes-sd model with held-out PIL-drawn scenes."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skimage")

from PIL import Image, ImageDraw  # noqa: E402

from studio_latent import mask_snap  # noqa: E402


def drawing(size=(64, 64), background=(12, 12, 12), objects=(((14, 20, 36, 42), (220, 30, 30), "ellipse"),)):
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    for box, fill, kind in objects:
        (draw.ellipse if kind == "ellipse" else draw.rectangle)(box, fill=fill)
    return image


def latent_share(image: Image.Image, colour, latent=(16, 16)) -> torch.Tensor:
    """[1,1,h,w]: share of each latent pixel's image pixels that have ``colour``."""
    arr = np.all(np.asarray(image) == np.array(colour), axis=-1).astype(np.float32)
    return torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(arr)[None, None], latent)


def blob(cy: float, cx: float, radius: float, shape=(16, 16)) -> torch.Tensor:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    cue = ((yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2).astype(np.float32)
    return torch.from_numpy(cue)[None, None]


def test_an_offset_cue_snaps_to_the_whole_object_and_no_background():
    image = drawing()  # a red disc centred at (25, 31) px: latent (6.2, 7.7)
    obj = latent_share(image, (220, 30, 30))
    cue = blob(9.5, 9.0, 3.0)  # where a drifting model pictures it: 3 latent px down-right, half on background
    assert float((cue * obj).sum() / obj.sum()) < 0.6  # the raw cue misses much of the object
    mask = mask_snap.snap(cue, mask_snap.segments(image))
    assert mask is not None and mask.shape == cue.shape
    hard = mask >= 0.99
    inside = obj >= 0.5
    assert bool(hard[inside].all()), "every latent pixel mostly on the object is in the mask"
    assert int((hard & (obj == 0)).sum()) == 0, "no latent pixel of pure background is fully in the mask"


def test_a_background_cue_gives_the_background_and_not_the_object():
    image = drawing(background=(240, 240, 240))
    obj = latent_share(image, (220, 30, 30))
    cue = 1.0 - blob(7.0, 8.0, 4.5)  # everywhere but around the disc
    mask = mask_snap.snap(cue, mask_snap.segments(image))
    assert mask is not None
    assert float(mask[obj >= 0.99].max()) < 1.0, "the object stays out of a background edit's hard mask"
    assert float((mask >= 0.99)[obj == 0].float().mean()) > 0.9


def test_of_two_objects_the_cue_picks_the_one_it_points_at():
    image = drawing(objects=(((4, 4, 24, 24), (220, 30, 30), "rect"), ((38, 36, 60, 58), (30, 200, 40), "ellipse")))
    red, green = latent_share(image, (220, 30, 30)), latent_share(image, (30, 200, 40))
    mask = mask_snap.snap(blob(12.5, 12.0, 3.0), mask_snap.segments(image))  # near the green disc, off its middle
    assert mask is not None
    assert bool((mask >= 0.99)[green >= 0.5].all())
    assert float(mask[red > 0].max()) == 0.0


def test_regions_run_together_leave_the_cue_as_it_was():
    """A soft object on a gradient that the segmentation cannot tell apart from its background:
    the "region" the cue points at is the whole picture, so the cue is kept instead."""
    ramp = np.linspace(90, 160, 64)
    arr = np.stack([np.add.outer(ramp, ramp) / 2] * 3, axis=-1)
    yy, xx = np.mgrid[:64, :64]
    arr[(yy - 30) ** 2 + (xx - 34) ** 2 <= 64] += 6  # a faint disc, well within the merge distance
    image = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
    labels = mask_snap.segments(image)
    assert len(np.unique(labels)) <= 2, "the picture is (nearly) one region"
    assert mask_snap.snap(blob(7.5, 8.5, 2.5), labels) is None


def test_an_empty_cue_is_left_alone():
    image = drawing()
    assert mask_snap.snap(torch.zeros((1, 1, 16, 16)), mask_snap.segments(image)) is None


def test_a_large_picture_is_segmented_small_and_the_mask_comes_back_at_latent_size():
    image = drawing(size=(768, 512), objects=(((200, 150, 420, 370), (40, 60, 220), "ellipse"),))
    labels = mask_snap.segments(image)
    assert max(labels.shape) <= mask_snap.MAX_SIDE
    obj = latent_share(image, (40, 60, 220), latent=(64, 96))
    mask = mask_snap.snap(blob(40.0, 42.0, 9.0, shape=(64, 96)), labels)
    assert mask is not None and mask.shape == (1, 1, 64, 96)
    assert float((mask >= 0.99)[obj >= 0.9].float().mean()) > 0.95
    assert float((mask >= 0.99)[obj == 0].float().mean()) < 0.02


# ------------------------------------------------------------------------------ the whole edit
def test_colour_edits_on_the_builtin_model_follow_the_drawn_object(tmp_path):
    """Held-out drawn scenes (quality seed 41: neither the tuning seeds 2-8 nor the reported 100 / 200)
    on the built-in model: the edit's mask comes from the picture's regions and says so in the
    metadata, the colour edit reads back blue with shape, place and background kept, and pixels far
    from the object barely move (the masked chain holds their latent exactly)."""
    from studio.plugin_api import CancelToken, LoadOptions, Result, validate_request
    from studio_latent import DiffusionLatentPlugin, default_sd_folder
    from studio_latent import diffusion_quality as dq

    if not (default_sd_folder() / "model_index.json").is_file():
        pytest.skip("the built-in shapes-sd model is not shipped here")
    plugin = DiffusionLatentPlugin()
    model = plugin.load(str(default_sd_folder()), LoadOptions(), lambda s: None)
    try:
        clean = 0
        case = dq.parse_case("red->blue")
        scenes = dq.scenes_for(case, 8, 41)
        for i, sc in enumerate(scenes):
            path = tmp_path / f"scene{i}.png"
            sc.image.save(path)
            request = validate_request(plugin.parameters(), {"image": str(path), "prompt": sc.prompt, "steps": 20,
                                                             "pairs": [["red", "blue", 1.0]]}, "edit")
            result = list(model.run(request, CancelToken()))[-1]
            assert isinstance(result, Result)
            assert result.info["edit_masks"] == ["implicit, image regions"]
            assert result.artifacts[0].parameters["edit_masks"] == ["implicit, image regions"]
            before, after = dq.read(sc.image), dq.read(result.artifacts[0].image)
            clean += (after is not None and after["color"] == "blue"
                      and all(dq.kept(before, after, ignore=("color", "size")).values()))
            far = np.ones((64, 64), dtype=bool)  # 8 px (two latent pixels) beyond the drawn object's box
            far[max(0, int(sc.cy - sc.half) - 8):int(sc.cy + sc.half) + 9,
                max(0, int(sc.cx - sc.half) - 8):int(sc.cx + sc.half) + 9] = False
            rec = np.asarray(result.info["reconstruction"], dtype=np.float64)
            out = np.asarray(result.artifacts[0].image, dtype=np.float64)
            change = np.abs(out - rec).mean(-1)
            # the latent there is the reconstruction's exactly; only the decoder's reach moves a pixel a little
            # measured 0.7-4.6 (of 255; the most on white) against 87-143 on the object; a background
            # the edit reached would move by tens
            assert change[far].mean() < 8.0, "the background away from the object is kept"
        # 7 of 8 when written (the miss: a small yellow-ish circle on white); 80% is the target
        assert clean >= 6, f"only {clean} of {len(scenes)} held-out colour edits came out clean"
    finally:
        model.unload()
