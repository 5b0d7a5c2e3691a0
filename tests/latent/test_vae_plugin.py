"""The vector-VAE latent plugin on a tiny, briefly trained VectorVAE (the real module, saved
with save_vector_vae and loaded through the plugin) -- torch is never mocked."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from studio.plugin_api import CancelToken, Kind, LoadOptions, ParamError, Result, validate_request
from studio.plugin_kit.latent import directions as dirfile
from studio.plugin_kit.latent import vectors
from studio_latent import VectorLatentPlugin


@pytest.fixture(scope="module")
def plugin():
    return VectorLatentPlugin()


@pytest.fixture(scope="module")
def model(plugin, tiny_vae_folder):
    messages = []
    m = plugin.load(str(tiny_vae_folder), LoadOptions(), messages.append)
    assert any("fitting" in s.lower() for s in messages)  # no shipped directions: fitted at load
    yield m
    m.unload()


def run(plugin, model, mode, **values) -> Result:
    events = list(model.run(validate_request(plugin.parameters(), values, mode), CancelToken()))
    assert isinstance(events[-1], Result)
    return events[-1]


def test_plugin_contract(plugin):
    assert plugin.kind is Kind.LATENT and plugin.id == "latent-vae"
    assert "edit" in plugin.modes() and "walk" in plugin.modes()


def test_load_errors_are_sentences(plugin, tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        plugin.load(str(tmp_path / "nope"), LoadOptions(), lambda m: None)
    with pytest.raises(ValueError, match="not a vector-VAE folder"):
        plugin.load(str(tmp_path), LoadOptions(), lambda m: None)


def test_info_lists_named_and_pca_directions(plugin, model):
    info = run(plugin, model, "info").info
    names = [d["name"] for d in info["directions"]]
    for name in ("x", "y", "size", "hue", "pc0", "pc1"):
        assert name in names
    assert all(len(d["vector"]) == 8 for d in info["directions"])
    assert info["latent_shape"] == [8] and info["quality_available"]


def test_amount_zero_reproduces_the_reconstruction(plugin, model, scene_png):
    enc = run(plugin, model, "encode", image=str(scene_png))
    rec = np.asarray(enc.artifacts[0].image)
    assert np.isfinite(enc.info["psnr"]) and enc.info["psnr"] > 5
    zero = run(plugin, model, "edit", image=str(scene_png), edits=[["x", 0.0]])
    assert np.array_equal(np.asarray(zero.artifacts[0].image), rec)
    same = run(plugin, model, "edit", latent=enc.info["latent"])
    assert np.array_equal(np.asarray(same.artifacts[0].image), rec)
    moved = run(plugin, model, "edit", latent=enc.info["latent"], edits=[["x", 20.0]])
    assert not np.array_equal(np.asarray(moved.artifacts[0].image), rec)


def test_several_edits_combine_additively(plugin, model):
    base = np.array(run(plugin, model, "edit", seed=5).info["latent"])
    a = np.array(run(plugin, model, "edit", seed=5, edits=[["x", 10.0]]).info["latent"]) - base
    b = np.array(run(plugin, model, "edit", seed=5, edits=[["pc1", 1.0]]).info["latent"]) - base
    both = np.array(run(plugin, model, "edit", seed=5, edits=[["x", 10.0], ["pc1", 1.0]]).info["latent"]) - base
    assert np.allclose(both, a + b, atol=1e-9)


def test_keep_fixed_makes_the_edit_orthogonal(plugin, model):
    r = run(plugin, model, "edit", seed=1, edits=[["x", 10.0]], keep=["y", "size"])
    report = r.info["conditional"]["x"]
    assert any(abs(c) > 0.01 for c in report["cos_before"].values())
    assert all(abs(c) < 1e-6 for c in report["cos_after"].values())
    move = np.array(r.info["latent"]) - np.array(r.info["base_latent"])
    info = {d["name"]: np.array(d["vector"]) for d in run(plugin, model, "info").info["directions"]}
    assert abs(vectors.cosine(move, info["y"])) < 1e-6 and abs(vectors.cosine(move, info["size"])) < 1e-6


def test_unknown_direction_and_bad_latent_are_param_errors(plugin, model):
    with pytest.raises(ParamError, match="Unknown direction 'nope'"):
        run(plugin, model, "edit", edits=[["nope", 1.0]])
    with pytest.raises(ParamError, match="Unknown direction"):
        run(plugin, model, "edit", keep=["nope"])
    with pytest.raises(ParamError, match="8 finite numbers"):
        run(plugin, model, "edit", latent=[1.0, 2.0])


def test_unreadable_image_is_a_param_error(plugin, model, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ParamError, match="Cannot read"):
        run(plugin, model, "encode", image=str(bad))


def test_walk_between_two_images_has_the_frames(plugin, model, tmp_path):
    from studio.shapes import world

    paths = []
    for i, x in enumerate((16.0, 48.0)):
        p = tmp_path / f"{i}.png"
        world.render_pil(world.Scene("black", (world.continuous_object("square", x, 32.0, 8.0, 0.1),))).save(p)
        paths.append(str(p))
    r = run(plugin, model, "walk", from_image=paths[0], to_image=paths[1], frames=6)
    assert len(r.artifacts) == 6 and all(a.kind is Kind.LATENT for a in r.artifacts)
    zs = np.array(r.info["latents"])
    steps = np.linalg.norm(np.diff(zs, axis=0), axis=1)
    assert np.allclose(steps, steps[0])  # even in latent space
    with pytest.raises(ParamError, match="needs a 'to' end"):
        run(plugin, model, "walk", from_seed=1, frames=4)


def test_direction_files_add_sliders(plugin, model, tmp_path):
    rng = np.random.default_rng(0)
    path = dirfile.save(dirfile.DirectionSet([dirfile.Direction("smile", rng.standard_normal(8), scale=0.5)]),
                        tmp_path / "mine.json")
    info = run(plugin, model, "info", direction_files=[str(path)]).info
    assert "smile" in [d["name"] for d in info["directions"]]
    base = np.array(run(plugin, model, "edit", seed=2).info["latent"])
    moved = np.array(run(plugin, model, "edit", seed=2, edits=[["smile", 2.0]], direction_files=[str(path)])
                     .info["latent"])
    assert np.allclose(moved - base, 2.0 * 0.5 * dirfile.load(path).get("smile").vector, atol=1e-6)
    wrong = dirfile.save(dirfile.DirectionSet([dirfile.Direction("w", np.ones(5))]), tmp_path / "wrong.json")
    with pytest.raises(ParamError, match="shape"):
        run(plugin, model, "info", direction_files=[str(wrong)])


def test_fit_from_labelled_images_and_from_rendered_scenes(plugin, model, tmp_path):
    from studio.shapes import world

    examples = []
    rng = np.random.default_rng(4)
    for i in range(24):
        bg = "white" if i % 2 else "black"
        scene = world.Scene(bg, (world.continuous_object("circle", float(rng.uniform(16, 48)), 32.0, 8.0,
                                                         float(rng.uniform(0, 0.8))),))
        p = tmp_path / f"ex{i}.png"
        world.render_pil(scene).save(p)
        examples.append([str(p), i % 2])
    out = tmp_path / "bg.safetensors"
    r = run(plugin, model, "fit", fit_method="boundary", examples=examples, name="bg", output=str(out))
    assert r.info["score"] >= 0.9 and r.info["saved"] == str(out)
    assert dirfile.load(out).names() == ["bg"]
    r = run(plugin, model, "fit", fit_method="pca", examples=examples, name="mine")
    assert dirfile.from_json(r.info["directions_json"]).names()[0] == "mine-pc0"
    r = run(plugin, model, "fit", fit_method="regression", factor="x", count=64)
    assert r.info["score"] > 0.3  # x is linearly readable even from a barely trained encoder


def test_quality_mode_reports_every_direction(plugin, model):
    r = run(plugin, model, "quality", bases=1, sweep=3, directions=["x", "pc0"])
    assert set(r.info["quality"]) == {"x", "pc0"}
    for row in r.info["quality"].values():
        assert {"target", "selectivity", "monotonicity", "grade", "failed", "n"} <= set(row)


def test_contract_with_the_plugin_author_test_kit(plugin, tiny_vae_folder):
    from studio.plugin_kit.testing import check_plugin

    report = check_plugin(plugin, source=str(tiny_vae_folder), mode="info", request={})
    assert report.model_capabilities == ["ModelHints"] and report.result is not None
