"""Text and music sweeps from the CLI, and how axis values are written (ranges, tables, files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.cli import main
from studio.core.audio_files import read_wav_info
from studio.core.sweeps.values import ValuesError, expand
from studio.plugin_api import Param, ParamType

from .conftest import manifest_items

STEPS = Param("steps", ParamType.INT)
CFG = Param("cfg_scale", ParamType.FLOAT)


@pytest.mark.parametrize("raw, param, expected", [
    ("1-9 [5]", STEPS, [1, 3, 5, 7, 9]),
    ("1-5", STEPS, [1, 2, 3, 4, 5]),
    ("1-9 (+2)", STEPS, [1, 3, 5, 7, 9]),
    ("10-4 [3]", STEPS, [10, 7, 4]),
    ("0.5-2.5 [5]", CFG, [0.5, 1.0, 1.5, 2.0, 2.5]),
    ("-1-1 [3]", CFG, [-1.0, 0.0, 1.0]),
    ({"start": 3, "stop": 7, "count": 3}, CFG, [3.0, 5.0, 7.0]),
    ({"start": 10, "stop": 30, "step": 10}, STEPS, [10, 20, 30]),
    ([3.0, 7.0], CFG, [3.0, 7.0]),
    ("red, blue", Param("prompt", ParamType.TEXT), ["red", "blue"]),
    ("1-9 [5]", Param("prompt", ParamType.TEXT), ["1-9 [5]"]),  # text is never a range
])
def test_values_as_written(raw, param, expected):
    assert expand(raw, param, Path(".")) == expected


@pytest.mark.parametrize("raw, message", [
    ({"start": 1, "stop": 9}, "a values table takes"),
    ("1-9 (+0)", "never gets from"),
    ("1-1000000", "the limit is"),
    ([], "values is empty"),
    ({"file": "missing.txt"}, "cannot read the values file"),
])
def test_bad_values_say_how(raw, message, tmp_path):
    with pytest.raises(ValuesError, match=message):
        expand(raw, STEPS, tmp_path)


def test_prompts_from_a_file_one_per_line(tmp_path, capsys):
    (tmp_path / "prompts.txt").write_text("a red circle\n\n  a blue square  \na green triangle\n", encoding="utf-8")
    sweep = tmp_path / "batch.toml"
    sweep.write_text('kind = "image"\nseeds = [4]\n[[axis]]\nparam = "prompt"\nvalues = { file = "prompts.txt" }\n',
                     encoding="utf-8")
    assert main(["sweep", str(sweep), "--dry-run"]) == 0
    assert "X: Prompt: a red circle, a blue square, a green triangle" in capsys.readouterr().out


def test_text_sweep_saves_text_with_json_metadata(tmp_path):
    sweep = tmp_path / "text.toml"
    sweep.write_text('kind = "text"\nprompt = "It is a truth universally acknowledged"\nmax_new_tokens = 6\n'
                     'seeds = [1]\n[[axis]]\nparam = "temperature"\nvalues = [0.5, 1.0]\n', encoding="utf-8")
    out = tmp_path / "out"
    assert main(["sweep", str(sweep), "--out", str(out)]) == 0
    items = manifest_items(out)
    assert len(items) == 2
    temperatures = set()
    for item in items:
        text, twin = (out / f for f in item["files"])
        assert text.suffix == ".txt" and twin.suffix == ".json" and twin.stem == text.stem
        document = json.loads(twin.read_text(encoding="utf-8"))
        assert document["text"] == text.read_text(encoding="utf-8") and document["seed"] == 1
        assert document["parameters"]["mode"] == "notebook" and document["parameters"]["max_new_tokens"] == 6
        temperatures.add(document["parameters"]["temperature"])
    assert temperatures == {0.5, 1.0}


def test_music_sweep_saves_tagged_wavs(tmp_path):
    sweep = tmp_path / "music.toml"
    sweep.write_text('kind = "music"\nprompt = "a slow chorale in D minor, organ"\nseconds = 1.0\nseeds = [3]\n'
                     '[[axis]]\nparam = "tempo"\nvalues = "60-120 [2]"\n', encoding="utf-8")
    out = tmp_path / "out"
    assert main(["sweep", str(sweep), "--out", str(out)]) == 0
    tempos = set()
    for item in manifest_items(out):
        wav = out / item["files"][0]
        assert wav.suffix == ".wav" and wav.with_suffix(".mid").is_file()
        tags = read_wav_info(wav.read_bytes())
        assert tags["INAM"] == "a slow chorale in D minor, organ"
        tempos.add(json.loads(tags["ICMT"])["tempo"])
    assert tempos == {60.0, 120.0}


def test_a_mode_the_plugin_does_not_have_is_named(tmp_path, capsys):
    sweep = tmp_path / "music.toml"
    sweep.write_text('kind = "music"\nmode = "fast"\nseeds = [1]\n', encoding="utf-8")
    assert main(["sweep", str(sweep), "--dry-run"]) == 2
    assert "the chorale plugin has no run modes; remove mode = 'fast'" in capsys.readouterr().err
    sweep.write_text('kind = "image"\nmode = "fast"\nseeds = [1]\n', encoding="utf-8")
    assert main(["sweep", str(sweep), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "mode must be one of txt2img, img2img" in err and "(got 'fast')" in err
