"""``--out``: a path with the kind's suffix is the file to write (a batch adds -1, -2...), anything
else a folder; the same for every subcommand that writes."""

from __future__ import annotations

import sqlite3

import pytest
from PIL import Image

from studio.cli import main
from studio.core.out_paths import numbered, plan_out
from studio.plugin_api import ParamError


def test_plan_for_files_batches_and_folders(tmp_path):
    assert plan_out(str(tmp_path / "a.png")).files == (tmp_path / "a.png",)
    assert plan_out(str(tmp_path / "a.png"), 3).files == tuple(tmp_path / f"a-{i}.png" for i in (1, 2, 3))
    assert plan_out(str(tmp_path / "pictures")).folder == tmp_path / "pictures"
    assert (tmp_path / "pictures").is_dir()  # checked by really creating it
    assert plan_out(str(tmp_path / "clip.wav"), 1, (".wav",)).files == (tmp_path / "clip.wav",)
    (tmp_path / "a-2.png").write_bytes(b"x")
    with pytest.raises(ParamError, match="a-2.png already exists"):
        plan_out(str(tmp_path / "a.png"), 3)
    assert numbered(tmp_path / "x.png", 1) == [tmp_path / "x.png"]


def _builtin_image_model():
    from studio_diffusers import DiffusersPlugin

    if not DiffusersPlugin().models():
        pytest.skip("no built-in image model in assets/models")


def test_image_out_file_and_batch(tmp_path, studio_home, capsys):
    _builtin_image_model()
    assert main(["image", "a red circle", "--steps", "1", "--seed", "3", "--out", str(tmp_path / "one.png")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "one.png")
    assert main(["image", "a red circle", "--steps", "1", "--seed", "3", "--batch", "2",
                 "--out", str(tmp_path / "pic.png")]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / "pic-1.png"), str(tmp_path / "pic-2.png")]
    for path in printed:
        with Image.open(path) as image:
            assert "parameters" in image.info
    rows = {r[0] for r in sqlite3.connect(studio_home / "history.sqlite").execute("SELECT path FROM outputs")}
    assert rows == {str(tmp_path / "one.png"), *printed}  # the history points at the files written
    assert not (tmp_path / "pic.png").exists()


def test_music_out_file_and_folder(tmp_path, capsys):
    assert main(["music", "a chorale in G major, organ", "--seconds", "2", "--seed", "1",
                 "--out", str(tmp_path / "clip.wav")]) == 0
    assert (tmp_path / "clip.wav").read_bytes()[:4] == b"RIFF"
    assert (tmp_path / "clip.mid").read_bytes()[:4] == b"MThd"  # the notes beside it, same stem
    capsys.readouterr()
    assert main(["music", "a chorale", "--seconds", "2", "--seed", "1", "--out", str(tmp_path / "clips")]) == 0
    assert len(list((tmp_path / "clips").rglob("*.wav"))) == 1
