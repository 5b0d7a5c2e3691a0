"""The numpy side of latent editing: walks, orthogonalisation, fitting, file format, metrics, export."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from studio.core.latent import media
from studio.plugin_kit.latent import directions as dirfile
from studio.plugin_kit.latent import fitting, metrics, vectors


def test_latent_maths_imports_no_torch_or_qt():
    import subprocess

    code = ("import sys; import studio.plugin_kit.latent.vectors, studio.plugin_kit.latent.fitting, "
            "studio.plugin_kit.latent.metrics, studio.plugin_kit.latent.directions, studio.core.latent.media, "
            "studio.core.sessions.latent; "
            "print([m for m in ('torch', 'PySide6', 'diffusers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_slerp_endpoints_and_norm():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(4096), rng.standard_normal(4096)
    assert np.allclose(vectors.slerp(a, b, 0.0), a)
    assert np.allclose(vectors.slerp(a, b, 1.0), b)
    mid_s = vectors.slerp(a, b, 0.5)
    mid_l = vectors.lerp(a, b, 0.5)
    # slerp keeps Gaussian-noise norms; lerp shrinks them by ~1/sqrt(2) halfway
    assert abs(np.linalg.norm(mid_s) / np.linalg.norm(a) - 1) < 0.05
    assert np.linalg.norm(mid_l) < 0.8 * np.linalg.norm(a)
    # shape kept
    assert vectors.slerp(a.reshape(64, 64), b.reshape(64, 64), 0.3).shape == (64, 64)
    # parallel inputs fall back to lerp
    assert np.allclose(vectors.slerp(a, 2 * a, 0.5), 1.5 * a)


def test_interpolate_is_even():
    frames = vectors.interpolate(np.zeros(3), np.ones(3), 5)
    steps = [np.linalg.norm(b - a) for a, b in zip(frames[:-1], frames[1:], strict=False)]
    assert len(frames) == 5 and np.allclose(steps, steps[0])
    with pytest.raises(ValueError):
        vectors.interpolate(np.zeros(3), np.ones(3), 1)


def test_conditional_direction_is_orthogonal():
    rng = np.random.default_rng(1)
    target = rng.standard_normal(16)
    conds = [target * 0.5 + rng.standard_normal(16) for _ in range(3)]
    assert all(abs(vectors.cosine(target, c)) > 0.1 for c in conds)
    new = vectors.conditional_direction(target, conds)
    for c in conds:
        assert abs(vectors.cosine(new, c)) < 1e-9
    assert np.isclose(np.linalg.norm(new), np.linalg.norm(target))
    assert vectors.cosine(new, target) > 0  # still points the same way
    with pytest.raises(ValueError):
        vectors.conditional_direction(conds[0], [conds[0]])


def test_cosine_table_and_apply_edits():
    table = vectors.cosine_table({"a": [1, 0], "b": [1, 1], "c": [0, -2]})
    assert table.shape == (3, 3) and np.allclose(np.diag(table), 1)
    assert np.isclose(table[0, 1], 1 / np.sqrt(2)) and np.isclose(table[0, 2], 0)
    z = vectors.apply_edits(np.zeros(2), {"a": np.array([1.0, 0]), "b": np.array([0, 1.0])}, {"a": 2, "b": -1},
                            {"a": 0.5})
    assert np.allclose(z, [1.0, -1.0])


def test_linear_boundary_recovers_a_planted_normal():
    rng = np.random.default_rng(2)
    normal = vectors.unit(rng.standard_normal(12))
    z = rng.standard_normal((400, 12))
    labels = (z @ normal + 0.1 * rng.standard_normal(400) > 0.3).astype(float)
    fitted = fitting.fit_linear_boundary(z, labels)
    assert vectors.cosine(fitted.vector, normal) > 0.95
    assert fitted.score > 0.9 and fitted.scale > 0
    with pytest.raises(ValueError):
        fitting.fit_linear_boundary(z, np.ones(400))


def test_regression_direction_and_pca():
    rng = np.random.default_rng(3)
    w = rng.standard_normal(8)
    z = rng.standard_normal((300, 8))
    fitted = fitting.fit_regression_direction(z, z @ w + 5.0)
    assert vectors.cosine(fitted.vector, w) > 0.999 and fitted.score > 0.999
    assert np.isclose(fitted.scale, 1 / np.linalg.norm(w), rtol=1e-3)  # one unit of the value per slider unit
    axis = vectors.unit(rng.standard_normal(8))
    samples = rng.standard_normal((500, 8)) * 0.1 + rng.standard_normal((500, 1)) * 3 * axis
    pca = fitting.fit_pca(samples, k=3)
    assert abs(vectors.cosine(pca.components[0], axis)) > 0.99
    assert pca.std[0] > 2.5 and pca.explained_ratio[0] > 0.9
    assert np.allclose(np.linalg.norm(pca.components, axis=1), 1)


def _dset():
    return dirfile.DirectionSet([
        dirfile.Direction("x", np.arange(4.0), kind="named", scale=0.25, range=(-40, 40), units="px", score=0.9),
        dirfile.Direction("pc0", np.ones(4), kind="pca", label="PC 0"),
    ], space="vae-latent", model="toy")


@pytest.mark.parametrize("suffix", [".json", ".safetensors"])
def test_directions_file_roundtrip(tmp_path, suffix):
    path = dirfile.save(_dset(), tmp_path / f"d{suffix}")
    back = dirfile.load(path)
    assert back.names() == ["x", "pc0"] and back.latent_shape == (4,) and back.model == "toy"
    x = back.get("x")
    assert np.allclose(x.vector, np.arange(4.0)) and x.scale == 0.25 and x.range == (-40, 40)
    assert x.units == "px" and x.kind == "named" and back.get("pc0").label == "PC 0"


def test_directions_json_schema_is_documented_shape(tmp_path):
    doc = json.loads(dirfile.to_json(_dset()))
    assert doc["format"] == "studio-latent-directions" and doc["version"] == 1
    assert set(doc["directions"][0]) >= {"name", "kind", "vector", "scale", "range"}


def test_directions_file_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(dirfile.DirectionFileError):
        dirfile.load(bad)
    bad.write_text(json.dumps({"format": "other"}))
    with pytest.raises(dirfile.DirectionFileError, match="not a Studio directions file"):
        dirfile.load(bad)
    with pytest.raises(dirfile.DirectionFileError):
        dirfile.load(tmp_path / "missing.json")
    with pytest.raises(dirfile.DirectionFileError):
        dirfile.DirectionSet([dirfile.Direction("a", np.ones(3)), dirfile.Direction("b", np.ones(4))])
    with pytest.raises(dirfile.DirectionFileError):
        dirfile.Direction("bad name!", np.ones(3))


def test_plain_safetensors_is_read_as_custom_directions(tmp_path):
    from safetensors.numpy import save_file

    save_file({"smile": np.ones(4, np.float32), "age": np.zeros(4, np.float32) + 2}, str(tmp_path / "p.safetensors"))
    back = dirfile.load(tmp_path / "p.safetensors")
    assert back.names() == ["age", "smile"] and back.get("smile").kind == "custom"


def test_merge_renames_clashes():
    merged = _dset().merged(_dset(), prefix="file:")
    assert merged.names() == ["x", "pc0", "file:x", "file:pc0"]


def test_metrics():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a + 10
    assert np.isclose(metrics.psnr(a, b), 10 * np.log10(255 ** 2 / 100))
    assert metrics.psnr(a, a) == float("inf")
    even = [np.full((2, 2), v) for v in (0, 10, 20, 30)]
    assert metrics.walk_smoothness(even)["jump_ratio"] == pytest.approx(1.0)
    jump = [np.full((2, 2), v) for v in (0, 1, 2, 50)]
    assert metrics.walk_smoothness(jump)["jump_ratio"] > 2.5
    assert metrics.spearman([1, 2, 3, 4], [10, 20, 25, 100]) == pytest.approx(1.0)
    assert metrics.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    traj = {"x": [10, 20, 30, 40], "y": [5, 5, 6, 5], "shape": [0, 0, 0, 0]}
    sel = metrics.selectivity(traj, "x", {"x": 40, "y": 40, "shape": 1}, categorical=("shape",))
    assert sel == pytest.approx((30 / 40) / (30 / 40 + 2 / 40))
    assert metrics.grade(0.9, 0.95) == "clean" and metrics.grade(0.3, 0.2) == "entangled"


def test_media_exports(tmp_path):
    frames = [np.full((64, 64, 3), v, np.uint8) for v in range(0, 240, 30)]
    gif = media.export(frames, tmp_path / "w.gif")[0]
    from PIL import Image

    with Image.open(gif) as im:
        assert im.n_frames == len(frames) and im.size == (256, 256)
    pngs = media.export(frames, tmp_path / "frames")
    assert len(pngs) == len(frames) and all(p.suffix == ".png" for p in pngs)
    with pytest.raises(ValueError):
        media.export(frames, tmp_path / "w.avi")
    pytest.importorskip("imageio_ffmpeg")
    mp4 = media.export(frames, tmp_path / "w.mp4")[0]
    assert mp4.stat().st_size > 1000 and mp4.read_bytes()[4:8] == b"ftyp"
