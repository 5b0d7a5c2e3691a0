"""``studio latent directions|walk|edit`` in-process on the real engine and plugins."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from PIL import Image

from studio.cli import main
from studio.plugin_kit.latent import directions as dirfile


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_directions_lists_named_ones(capsys, tiny_vae_folder, tmp_path):
    code, out, err = cli(capsys, "latent", "directions", "--model", str(tiny_vae_folder))
    assert code == 0, err
    names = [line.split()[0] for line in out.splitlines()]
    assert {"x", "y", "size", "hue", "pc0"} <= set(names)
    extra = dirfile.save(dirfile.DirectionSet([dirfile.Direction("mine", np.ones(8))]), tmp_path / "m.json")
    code, out, _ = cli(capsys, "latent", "directions", "--model", str(tiny_vae_folder), "--directions", str(extra))
    assert code == 0 and "mine" in out


def test_edit_amount_zero_is_the_reconstruction(capsys, tiny_vae_folder, scene_png, tmp_path):
    a, b = tmp_path / "zero.png", tmp_path / "moved.png"
    code, out, err = cli(capsys, "latent", "edit", str(scene_png), "--direction", "x", "--amount", "0",
                         "--model", str(tiny_vae_folder), "--out", str(a))
    assert code == 0, err
    assert out.strip() == str(a)
    code, _, err = cli(capsys, "latent", "edit", str(scene_png), "--direction", "x", "--amount", "15",
                       "--keep", "y", "--model", str(tiny_vae_folder), "--out", str(b))
    assert code == 0, err
    from studio.plugin_api import CancelToken, LoadOptions, validate_request
    from studio_latent import VectorLatentPlugin

    plugin = VectorLatentPlugin()
    model = plugin.load(str(tiny_vae_folder), LoadOptions(), lambda m: None)
    rec = list(model.run(validate_request(plugin.parameters(), {"image": str(scene_png)}, "encode"),
                         CancelToken()))[-1]
    assert np.array_equal(np.asarray(Image.open(a)), np.asarray(rec.artifacts[0].image))
    assert not np.array_equal(np.asarray(Image.open(b)), np.asarray(Image.open(a)))


@pytest.mark.parametrize("argv, message", [
    (["--direction", "nope", "--amount", "1"], "unknown direction 'nope'"),
    (["--direction", "x", "--amount", "1", "--keep", "nope"], "unknown direction 'nope'"),
])
def test_edit_bad_direction_exits_2_with_one_line(capsys, tiny_vae_folder, scene_png, tmp_path, argv, message):
    code, out, err = cli(capsys, "latent", "edit", str(scene_png), *argv, "--model", str(tiny_vae_folder),
                         "--out", str(tmp_path / "o.png"))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and out == ""


def test_edit_unreadable_image_exits_2(capsys, tiny_vae_folder, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"garbage")
    for image in (str(bad), str(tmp_path / "missing.png")):
        code, _, err = cli(capsys, "latent", "edit", image, "--direction", "x", "--amount", "1",
                           "--model", str(tiny_vae_folder), "--out", str(tmp_path / "o.png"))
        assert code == 2 and "cannot read image" in err and len(err.strip().splitlines()) == 1


def test_other_bad_input_exits_2(capsys, tiny_vae_folder, tmp_path):
    for argv in (["latent", "walk", "--seed-from", "1", "--seed-to", "2", "--model", str(tiny_vae_folder),
                  "--out", str(tmp_path / "w.avi")],
                 ["latent", "walk", "--seed-from", "1", "--model", str(tiny_vae_folder), "--out",
                  str(tmp_path / "w.gif")],
                 ["latent", "directions", "--model", str(tmp_path / "nope")],
                 ["latent", "walk", "--out", "x.gif", "--frames", "1", "--seed-from", "1", "--seed-to", "2",
                  "--model", str(tiny_vae_folder)],
                 ["latent", "edit", "--amount", "1"]):
        code, _, err = cli(capsys, *argv)
        assert code == 2, (argv, err)
        assert len(err.strip().splitlines()) == 1, err


def test_vae_walk_gif_and_mp4(capsys, tiny_vae_folder, scene_png, tmp_path):
    gif = tmp_path / "w.gif"
    code, out, err = cli(capsys, "latent", "walk", "--seed-from", "3", "--seed-to", "11", "--frames", "6",
                         "--model", str(tiny_vae_folder), "--out", str(gif))
    assert code == 0, err
    with Image.open(gif) as im:
        assert im.n_frames == 6
    pytest.importorskip("imageio_ffmpeg")
    mp4 = tmp_path / "w.mp4"
    code, _, err = cli(capsys, "latent", "walk", "--from", str(scene_png), "--seed-to", "2", "--frames", "4",
                       "--model", str(tiny_vae_folder), "--out", str(mp4))
    assert code == 0, err
    assert mp4.stat().st_size > 0


def test_diffusion_walk_and_pair_edit(capsys, tiny_sd_folder, tmp_path):
    gif = tmp_path / "sd.gif"
    code, _, err = cli(capsys, "latent", "walk", "--from", "a red circle", "--to", "a blue square",
                       "--seed-from", "1", "--seed-to", "2", "--frames", "4", "--steps", "2",
                       "--model", str(tiny_sd_folder), "--out", str(gif))
    assert code == 0, err
    with Image.open(gif) as im:
        assert im.n_frames == 4
    src = tmp_path / "src.png"
    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(src)
    code, _, err = cli(capsys, "latent", "edit", str(src), "--direction", "red->blue", "--amount", "1",
                       "--prompt", "a red circle", "--steps", "3", "--model", str(tiny_sd_folder),
                       "--out", str(tmp_path / "e.png"))
    assert code == 0, err
    assert (tmp_path / "e.png").is_file()
    code, _, err = cli(capsys, "latent", "edit", str(src), "--direction", "nope", "--amount", "1",
                       "--model", str(tiny_sd_folder), "--out", str(tmp_path / "e2.png"))  # e.png is never replaced
    assert code == 2 and "unknown direction" in err
