"""The sweep manifest: a line torn by a kill is ignored, and one sweep at a time per folder."""

from __future__ import annotations

import json

import pytest

from studio.core.sweeps.manifest import MANIFEST, FolderBusyError, Manifest


def test_a_torn_last_line_is_ignored_and_the_next_record_starts_clean(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    manifest = Manifest(tmp_path)
    manifest.start({"file": "s.toml"})
    manifest.record("k1", 0, [tmp_path / "a.png"], 0.5, "local")
    with open(tmp_path / MANIFEST, "a", encoding="utf-8") as handle:
        handle.write('{"type": "item", "key": "k2", "ind')  # killed mid-write
    again = Manifest(tmp_path)
    assert set(again.done) == {"k1"} and again.done["k1"].files == ("a.png",)
    again.record("k3", 2, [], 0.1, "ray")
    lines = (tmp_path / MANIFEST).read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[-1])["key"] == "k3"  # on its own line, after the torn one
    assert set(Manifest(tmp_path).done) == {"k1", "k3"}
    assert Manifest(tmp_path).header["file"] == "s.toml"


def test_a_second_sweep_into_the_same_folder_is_refused(tmp_path):
    first = Manifest(tmp_path)
    first.lock()
    try:
        with pytest.raises(FolderBusyError, match="another sweep is running into"):
            Manifest(tmp_path).lock()
    finally:
        first.unlock()
    second = Manifest(tmp_path)
    second.lock()  # free again
    second.unlock()
