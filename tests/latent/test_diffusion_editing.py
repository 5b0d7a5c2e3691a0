"""Editing the user's own image on diffusion pipelines (issue #13): edit-friendly DDPM inversion,
semantic-guidance text edits with implicit masks, discovered directions, smooth walks, quality.

Tiny random SD 1.5 and SDXL pipelines of the real architectures (built from configs, saved,
loaded through the studio's loader); the images are drawn here with PIL."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from PIL import Image, ImageDraw  # noqa: E402

from studio.plugin_api import CancelToken, LoadOptions, ParamError, Result, validate_request  # noqa: E402
from studio.plugin_kit.latent import directions as dirfile  # noqa: E402
from studio_latent import ddpm_edit  # noqa: E402

STEPS = 6


def draw(path, shape="circle", fill=(220, 30, 30), background=(10, 10, 10), box=(18, 22, 42, 46)):
    image = Image.new("RGB", (64, 64), background)
    d = ImageDraw.Draw(image)
    if shape == "circle":
        d.ellipse(box, fill=fill)
    else:
        d.rectangle(box, fill=fill)
    image.save(path)
    return path


@pytest.fixture(scope="module")
def sdxl(plugin, tmp_path_factory, one_thread):
    from tests.fixtures import tiny_diffusers

    folder = tiny_diffusers.build_sdxl(tmp_path_factory.mktemp("sdxl") / "tiny-sdxl")
    m = plugin.load(str(folder), LoadOptions(), lambda s: None)
    yield m
    m.unload()


@pytest.fixture
def drawing(tmp_path):
    return draw(tmp_path / "mine.png")


def run(plugin, model, mode, **values) -> Result:
    values.setdefault("steps", STEPS)
    if mode in ("edit", "encode"):
        values.setdefault("refine", 5)
    out = list(model.run(validate_request(plugin.parameters(), values, mode), CancelToken()))
    assert isinstance(out[-1], Result)
    return out[-1]


def px(result: Result) -> np.ndarray:
    return np.asarray(result.artifacts[0].image, dtype=np.float64)


# ------------------------------------------------------------------------------ the sampler itself
def test_inverted_chain_walks_back_to_the_latent_exactly(sd):
    """A full re-sampling with a guide that adds nothing still lands on x0 (the residuals carry it)."""
    from studio_latent.denoiser import Conditions, Denoiser

    x0 = torch.randn((1, 4, 32, 32), generator=torch.Generator().manual_seed(0))
    schedule = ddpm_edit.Schedule.from_config(sd.pipe.scheduler.config, 8)
    conds = Conditions(sd.pipe, (64, 64), False, ["a red circle"])
    inv = ddpm_edit.invert(Denoiser(sd.pipe.unet, conds, only=0), schedule, x0, skip=0.25, seed=3)
    assert len(inv.steps) == 6  # 8 steps, the noisiest quarter skipped
    out = ddpm_edit.sample(Denoiser(sd.pipe.unet, conds), schedule, inv, [ddpm_edit.Guide(0, 0, 1.0)])
    assert out is not inv.x0 and torch.allclose(out, x0, atol=1e-4)
    # a real edit moves it, and a mask keeps the latent outside it exactly
    other = conds.add("a blue square")
    mask = torch.zeros((1, 1, 32, 32))
    mask[..., 8:20, 8:20] = 1.0
    moved = ddpm_edit.sample(Denoiser(sd.pipe.unet, conds), schedule, inv, [ddpm_edit.Guide(other, 0, 5.0, mask)])
    assert (moved - x0).abs()[..., 8:20, 8:20].mean() > 1e-3
    assert torch.equal(moved[..., 24:, :], x0[..., 24:, :])


# ------------------------------------------------------------------------------ through the plugin
def test_amount_zero_gives_the_reconstruction_with_or_without_a_prompt(plugin, sd, drawing):
    enc = run(plugin, sd, "encode", image=str(drawing))
    assert enc.info["method"] == "ddpm-inversion" and np.isfinite(enc.info["psnr"])
    for prompt in ("", "a red circle"):
        zero = run(plugin, sd, "edit", image=str(drawing), prompt=prompt, pairs=[["red", "blue", 0.0]])
        assert np.array_equal(px(zero), px(enc))
        assert zero.info["psnr"] == enc.info["psnr"]
    # refinement fits the latent to the drawing: better than the encoder alone
    plain = run(plugin, sd, "encode", image=str(drawing), refine=0)
    assert enc.info["psnr"] > plain.info["psnr"]


def test_inversion_is_cached_by_content_not_file_name(plugin, sd, drawing, tmp_path):
    run(plugin, sd, "edit", image=str(drawing), pairs=[["red", "blue", 1.0]])
    cached = len(sd.editor._cache)
    copy = tmp_path / "copy.png"
    copy.write_bytes(drawing.read_bytes())
    run(plugin, sd, "edit", image=str(copy), pairs=[["red", "blue", 1.0]])
    assert len(sd.editor._cache) == cached
    draw(tmp_path / "other.png", fill=(30, 200, 30))
    run(plugin, sd, "encode", image=str(tmp_path / "other.png"))
    assert len(sd.editor._cache) == cached + 1


def test_text_edits_several_at_once_reverse_with_negative_strength(plugin, sd, drawing):
    base = px(run(plugin, sd, "edit", image=str(drawing)))
    one = run(plugin, sd, "edit", image=str(drawing), pairs=[["red", "blue", 1.5]])
    assert np.abs(px(one) - base).mean() > 0.5
    assert one.info["applied"] == ["red->blue x1.5"] and len(one.info["mask_share"]) == 1
    both = run(plugin, sd, "edit", image=str(drawing), pairs=[["red", "blue", 1.5]], concepts=[["stripes", 1.0]])
    assert not np.array_equal(px(both), px(one)) and len(both.info["mask_share"]) == 2
    # with no prompt, red->blue at -s is blue->red at +s (masks off: the same guidance, sign flipped)
    rev = run(plugin, sd, "edit", image=str(drawing), pairs=[["red", "blue", -1.0]], masks=False)
    flip = run(plugin, sd, "edit", image=str(drawing), pairs=[["blue", "red", 1.0]], masks=False)
    assert np.array_equal(px(rev), px(flip)) and not np.array_equal(px(rev), base)
    removed = run(plugin, sd, "edit", image=str(drawing), concepts=[["circle", -1.0]])
    assert removed.info["applied"] == ["-circle x1"]


def test_recipe_and_draft(plugin, sd, drawing):
    full = run(plugin, sd, "edit", image=str(drawing), prompt="a red circle", pairs=[["red", "blue", 1.0]], steps=12)
    draft = run(plugin, sd, "edit", image=str(drawing), prompt="a red circle", pairs=[["red", "blue", 1.0]], steps=12,
                draft=True)
    assert full.info["recipe"]["steps"] == 12 and draft.info["recipe"]["steps"] == 8
    assert draft.info["recipe"]["draft"] is True and not np.array_equal(px(full), px(draft))
    recipe = full.info["recipe"]
    assert recipe["pairs"] == [["red", "blue", 1.0]] and recipe["prompt"] == "a red circle"
    assert recipe["encode_method"] == "ddpm-inversion" and len(recipe["image_sha256"]) == 20


def test_concepts_need_an_image(plugin, sd):
    with pytest.raises(ParamError, match="your own image"):
        run(plugin, sd, "edit", prompt="x", concepts=[["hat", 1.0]])
    with pytest.raises(ParamError, match="concept"):
        run(plugin, sd, "edit", image="x.png", concepts=[[1.0]])


def test_h_space_pca_directions_saved_renamed_and_reused(plugin, sd, drawing, tmp_path):
    path = tmp_path / "h.safetensors"
    found = run(plugin, sd, "discover", source="h-space", count=8, steps=3, components=3, names=["wider"],
                output=str(path))
    names = [d["name"] for d in found.info["directions"]]
    assert names == ["wider", "pc2", "pc3"] and found.info["space"] == "unet-h"
    ratios = [d["score"] for d in found.info["directions"]]
    assert ratios == sorted(ratios, reverse=True) and 0 < sum(ratios) <= 1.0 + 1e-6
    dset = dirfile.load(path)
    assert dset.space == "unet-h" and dset.names() == names
    files = {"direction_files": [str(path)]}
    info = run(plugin, sd, "info", **files).info
    assert {"wider", "pc2"} <= {d["name"] for d in info["directions"] if d["space"] == "unet-h"}
    base = px(run(plugin, sd, "edit", image=str(drawing), **files))
    zero = run(plugin, sd, "edit", image=str(drawing), edits=[["wider", 0.0]], **files)
    moved = run(plugin, sd, "edit", image=str(drawing), edits=[["wider", 3.0]], **files)
    assert np.array_equal(px(zero), base) and np.abs(px(moved) - base).mean() > 0.1
    # reused on a generated image (no inversion) too
    gen = run(plugin, sd, "edit", prompt="a red circle", seed=1, edits=[["pc2", 3.0]], **files)
    plain = run(plugin, sd, "edit", prompt="a red circle", seed=1)
    assert not np.array_equal(px(gen), px(plain))


def test_text_embedding_pca(plugin, sd, drawing, tmp_path):
    found = run(plugin, sd, "discover", source="text", prompt="a circle", components=2,
                variations=["red", "blue", "green", "small"], output=str(tmp_path / "t.json"))
    assert found.info["space"] == "text-embedding" and len(found.info["directions"]) == 2
    files = {"direction_files": [str(tmp_path / "t.json")]}
    moved = run(plugin, sd, "edit", image=str(drawing), edits=[["pc1", 2.0]], **files)
    assert moved.info["applied"] == ["pc1 x" + f"{2.0 * found.info['directions'][0]['scale']:g}"]
    with pytest.raises(ParamError, match="three"):
        run(plugin, sd, "discover", source="text", variations=["a", "b"])


@pytest.mark.parametrize("kind", ["prompt", "seed"])
def test_walks_are_even(plugin, sd, kind):
    values = {"prompt": "a red circle on a black background", "seed": 3, "frames": 6, "steps": 4}
    if kind == "prompt":
        values["prompt_to"] = "a blue square on a white background"
    else:
        values["seed_to"] = 11
    r = run(plugin, sd, "walk", **values)
    assert len(r.artifacts) == 6
    assert r.info["smoothness"]["jump_ratio"] <= 3.0, r.info
    assert r.info["positions"][0] == 0.0 and r.info["positions"][-1] == 1.0


def test_quality_mode_reports_every_figure(plugin, sd):
    r = run(plugin, sd, "quality", scenes=2, strengths=[0.0, 1.0], measure=["red->blue"], steps=4, refine=2)
    q = r.info["quality"]
    assert q["reconstruction"]["n"] == 2 and np.isfinite(q["reconstruction"]["median_psnr"])
    row = q["red->blue"]
    assert row["n"] <= 2 and 0.0 <= row["success"] <= 1.0 and row["grade"] in ("clean", "fair", "entangled")
    assert "drawn scenes" in r.info["method"]
    with pytest.raises(ParamError, match="colour, shape or background"):
        run(plugin, sd, "quality", scenes=1, measure=["happy->sad"])


def test_sdxl_inversion_edit_and_walk(plugin, sdxl, drawing):
    enc = run(plugin, sdxl, "encode", image=str(drawing))
    zero = run(plugin, sdxl, "edit", image=str(drawing), pairs=[["red", "blue", 0.0]])
    assert np.array_equal(px(zero), px(enc))
    moved = run(plugin, sdxl, "edit", image=str(drawing), prompt="a red circle", pairs=[["red", "blue", 2.0]],
                concepts=[["hat", 1.0]])
    assert np.abs(px(moved) - px(enc)).mean() > 0.1
    walk = run(plugin, sdxl, "walk", prompt="a red circle", prompt_to="a blue square", frames=4, steps=3)
    assert len(walk.artifacts) == 4


# ------------------------------------------------------------------------------ the CLI
def _cli(capsys, *argv):
    from studio.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_prompt_walk_without_model_uses_the_built_in_image_model(capsys, tmp_path, monkeypatch):
    from studio_latent import default_sd_folder

    if not (default_sd_folder() / "model_index.json").is_file():
        pytest.skip("the built-in shapes-sd model is not shipped here")
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    code, out, err = _cli(capsys, "latent", "walk", "--from", "a red circle on a black background", "--to",
                          "a blue square on a white background", "--frames", "3", "--steps", "2",
                          "--out", str(tmp_path / "w.gif"))
    assert code == 0, err
    with Image.open(tmp_path / "w.gif") as gif:
        assert gif.n_frames == 3


def test_cli_edit_several_at_once_quality_and_discover(capsys, tiny_sd_folder, drawing, tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    model = ("--model", str(tiny_sd_folder))
    out_png = tmp_path / "e.png"
    code, out, err = _cli(capsys, "latent", "edit", str(drawing), "--direction", "red->blue", "--amount", "1",
                          "--also", "+stripes=0.5", "--also", "circle->square=1", "--steps", "4", *model,
                          "--out", str(out_png))
    assert code == 0, err
    assert "red->blue x1" in err and "+stripes x0.5" in err and "circle->square x1" in err
    with Image.open(out_png) as saved:
        from studio.core.store import RECIPE_CHUNK

        assert '"concepts": [["stripes", 0.5]]' in saved.text[RECIPE_CHUNK]
    code, out, err = _cli(capsys, "latent", "edit", str(drawing), "--direction", "red->blue", "--amount", "1",
                          "--also", "oops", *model, "--out", str(tmp_path / "f.png"))
    assert code == 2 and "--also" in err
    code, out, err = _cli(capsys, "latent", "quality", "--scenes", "1", "--edit", "red->blue", "--steps", "3", *model)
    assert code == 0, err
    assert "reconstruction (strength 0)  median PSNR" in out and "red->blue" in out and "drawn scenes" in out
    code, out, err = _cli(capsys, "latent", "discover", "--source", "text", "--prompt", "a circle", "--components",
                          "2", "--name", "warmth", *model, "--out", str(tmp_path / "d.json"))
    assert code == 0, err
    assert out.splitlines()[0].startswith("warmth") and (tmp_path / "d.json").is_file()


def test_cli_recipe_replays_an_edit(capsys, tiny_sd_folder, drawing, tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    model = ("--model", str(tiny_sd_folder))
    first, again = tmp_path / "first.png", tmp_path / "again.png"
    code, _, err = _cli(capsys, "latent", "edit", str(drawing), "--direction", "red->blue", "--amount", "1.5",
                        "--also=-stripes=0.5", "--prompt", "a red circle", "--steps", "4", *model,
                        "--out", str(first))
    assert code == 0, err
    code, _, err = _cli(capsys, "latent", "edit", str(drawing), "--recipe", str(first), *model, "--out", str(again))
    assert code == 0, err
    assert np.array_equal(np.asarray(Image.open(first)), np.asarray(Image.open(again)))
    code, _, err = _cli(capsys, "latent", "edit", str(drawing), "--recipe", str(drawing), *model,
                        "--out", str(tmp_path / "x.png"))
    assert code == 2 and "no diffusion edit recipe" in err


def test_cli_recipe_replays_direction_edits_with_their_files(capsys, tiny_sd_folder, drawing, tmp_path, monkeypatch):
    """A found direction's edit replays from the PNG's recipe: the recipe names its direction file,
    which is loaded again; a file that has moved is one sentence, and --directions points at it."""
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    model = ("--model", str(tiny_sd_folder))
    found = tmp_path / "found.json"
    code, _, err = _cli(capsys, "latent", "discover", "--source", "text", "--prompt", "a circle", "--components",
                        "2", "--name", "warmth", *model, "--out", str(found))
    assert code == 0, err
    first, again = tmp_path / "first.png", tmp_path / "again.png"
    code, _, err = _cli(capsys, "latent", "edit", str(drawing), "--direction", "warmth", "--amount", "2",
                        "--directions", str(found), "--prompt", "a red circle", "--steps", "4", *model,
                        "--out", str(first))
    assert code == 0, err
    assert "warmth" in err  # "applied: warmth x2"
    code, _, err = _cli(capsys, "latent", "edit", str(drawing), "--recipe", str(first), *model, "--out", str(again))
    assert code == 0, err
    replayed = np.asarray(Image.open(again), dtype=np.int16)
    assert np.array_equal(np.asarray(Image.open(first), dtype=np.int16), replayed)
    code, _, err = _cli(capsys, "latent", "edit", str(drawing), "--direction", "warmth", "--amount", "0",
                        "--directions", str(found), "--prompt", "a red circle", "--steps", "4", *model,
                        "--out", str(tmp_path / "zero.png"))
    assert code == 0, err  # amount 0 is the reconstruction; the replayed edit is not
    assert np.abs(replayed - np.asarray(Image.open(tmp_path / "zero.png"), dtype=np.int16)).max() > 0
    moved = tmp_path / "elsewhere.json"
    found.rename(moved)
    code, _, err = _cli(capsys, "latent", "edit", str(drawing), "--recipe", str(first), *model,
                        "--out", str(tmp_path / "x.png"))
    assert code == 2 and str(found) in err and "--directions" in err and len(err.strip().splitlines()) == 1
    code, _, err = _cli(capsys, "latent", "edit", str(drawing), "--recipe", str(first), "--directions", str(moved),
                        *model, "--out", str(tmp_path / "y.png"))
    assert code == 0, err
    assert np.array_equal(np.asarray(Image.open(tmp_path / "y.png"), dtype=np.int16), replayed)
