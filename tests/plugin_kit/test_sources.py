"""The one model-source rule (studio.plugin_kit.sources) and the call sites that use it."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.plugin_kit import sources
from studio.plugin_kit.diffusion import sources as diffusion_sources


@pytest.mark.parametrize("text", ["runwayml/stable-diffusion-v1-5", "facebook/musicgen-small", "a.b/c_d-e"])
def test_hub_ids(text):
    assert sources.looks_like_hub_id(text) and not sources.looks_like_path(text)
    assert sources.classify(text) == sources.HUB
    assert sources.locate(text) == sources.Source(sources.HUB, text, text)


@pytest.mark.parametrize("text", ["./org/name", "/abs/path", "~/models/x", "C:\\models\\x", "no-slash",
                                  "a/b/c", "org/model.safetensors", "org/model.ckpt", "org/model.bin"])
def test_paths_are_never_hub_ids(text):
    assert sources.looks_like_path(text) and not sources.looks_like_hub_id(text)
    assert sources.classify(text) == sources.MISSING
    with pytest.raises(FileNotFoundError, match="not found"):
        sources.locate(text)


def test_existing_folder_and_file_win_over_the_hub_shape(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "org" / "name").mkdir(parents=True)
    (tmp_path / "org" / "file").write_bytes(b"x")
    assert sources.classify("org/name") == sources.FOLDER and not sources.looks_like_hub_id("org/name")
    assert sources.classify("org/file") == sources.FILE
    located = sources.locate("org/file")
    assert located.kind == sources.FILE and located.name == "file" and Path(located.location).is_absolute()


def test_empty_is_missing_with_a_sentence():
    assert sources.classify("  ") == sources.MISSING
    assert not sources.looks_like_hub_id("") and not sources.looks_like_path("")
    with pytest.raises(ValueError, match="No model given"):
        sources.locate("")


def test_diffusion_sources_use_the_rule(tmp_path):
    assert diffusion_sources.resolve("org/name", allow_pickle=False).kind == "hub"
    with pytest.raises(FileNotFoundError):
        diffusion_sources.resolve("org/name.safetensors", allow_pickle=False)
    ckpt = tmp_path / "m.ckpt"
    ckpt.write_bytes(b"x")
    with pytest.raises(ValueError, match="pickle"):
        diffusion_sources.resolve(str(ckpt), allow_pickle=False)
    assert diffusion_sources.resolve(str(ckpt), allow_pickle=True).kind == "single_file"


def test_text_plugin_and_cli_use_the_rule():
    from studio.cli import common
    from studio_text import sources as text_sources

    assert text_sources.resolve("org/name").kind == "hub"
    assert common.looks_like_path is sources.looks_like_path
