"""`studio music ...`: success paths and one-line refusals with exit status 2."""

from __future__ import annotations

import json

import pytest

from studio.cli import main
from studio.core.audio_files import read_wav_info


def test_chorale_to_wav_and_midi(tmp_path, capsys):
    out, midi = tmp_path / "c.wav", tmp_path / "c.mid"
    code = main(["music", "a slow chorale in D minor, organ", "--seconds", "3", "--seed", "4", "--out", str(out),
                 "--midi", str(midi)])
    assert code == 0, capsys.readouterr().err
    params = json.loads(read_wav_info(out.read_bytes())["ICMT"])
    assert params["seed"] == 4 and params["key"] == "D" and params["scale"] == "minor" and params["tempo"] == 60
    assert midi.read_bytes().startswith(b"MThd")
    printed = capsys.readouterr().out.split()
    assert str(out) in printed and str(midi) in printed and printed[0].endswith(".wav")


def test_musicgen_folder_is_picked_from_the_model(tiny_musicgen, tmp_path, capsys):
    out = tmp_path / "m.wav"
    code = main(["music", "a slow chorale", "--model", str(tiny_musicgen), "--seconds", "1", "--top-k", "20",
                 "--cfg", "2", "--seed", "1", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    params = json.loads(read_wav_info(out.read_bytes())["ICMT"])
    assert params["plugin"] == "musicgen" and params["top_k"] == 20 and params["guidance"] == 2.0


@pytest.mark.parametrize("args, message", [
    (["--seconds", "0"], "--seconds must be more than 0"),
    (["--seconds", "-3"], "--seconds must be more than 0"),
    (["--seconds", "5000"], "at most 180"),
    (["--continue", "/nonexistent/clip.mid"], "cannot read clip"),
    (["--model", "/nonexistent/model"], "model not found"),
    (["--seconds", "abc"], "invalid float"),
])
def test_bad_input_is_one_line_and_status_2(args, message, capsys):
    assert main(["music", "x", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_unreadable_clip_contents(tmp_path, capsys):
    junk = tmp_path / "junk.mid"
    junk.write_bytes(b"hello there")
    assert main(["music", "x", "--continue", str(junk)]) == 2
    assert "not a MIDI or WAV" in capsys.readouterr().err


def test_folder_without_a_model(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["music", "x", "--model", str(empty), "--seconds", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no chorale model" in err and len(err.splitlines()) == 1


def test_midi_with_musicgen_is_refused(tiny_musicgen, tmp_path, capsys):
    assert main(["music", "x", "--model", str(tiny_musicgen), "--midi", str(tmp_path / "x.mid")]) == 2
    assert "symbolic" in capsys.readouterr().err


def test_plugin_choice_follows_capabilities_not_ids(tmp_path, tiny_musicgen):
    """Renamed plugins are chosen the same way: by what they declare and what the model is."""
    from studio.cli.common import UsageError
    from studio.cli.music import choose_plugin
    from studio.core.context import StudioContext
    from studio.core.registry import Registry
    from studio.core.settings import Settings
    from studio_music import EMBEDDED, ChoralePlugin
    from studio_musicgen import MusicGenPlugin

    class Symbolic(ChoralePlugin):
        id = "my-symbolic"

    class Audio(MusicGenPlugin):
        id = "my-audio"

    registry = Registry()
    registry.add("a", Audio)  # registered first: order alone must not decide
    registry.add("s", Symbolic)
    context = StudioContext.create(Settings(output_dir=str(tmp_path / "out")), registry)
    try:
        assert choose_plugin(context, None, None).id == "my-symbolic"  # its model is on disk
        assert choose_plugin(context, str(EMBEDDED), None).id == "my-symbolic"
        assert choose_plugin(context, str(tiny_musicgen), None).id == "my-audio"  # a transformers folder
        assert choose_plugin(context, "someone/some-musicgen", None).id == "my-audio"  # a hub id
        assert choose_plugin(context, None, "my-audio").id == "my-audio"
        with pytest.raises(UsageError, match="No plugin 'nope'"):
            choose_plugin(context, None, "nope")
    finally:
        context.close()
