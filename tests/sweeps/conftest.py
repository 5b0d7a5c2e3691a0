"""The issue's example sweep, run once per test session on the built-in image model.

Several tests look at the same local run (its files, a rerun, the Ray run's pixels), so it is
made once, in its own studio home, and shared read-only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

#: seconds for the tests that render the example (8 images x 20 steps): a few seconds on an idle
#: 2-core machine, minutes when it is shared; the session fixture's run counts toward the first.
SLOW = 900

# Exactly the file from issue #15.
EXAMPLE = '''kind = "image"                 # image | text | music | latent
model = "builtin"              # or a folder, a single file, or a hub id, as elsewhere
prompt = "a red circle on a black background"
steps = 20
seeds = [1, 2]

[[axis]]                       # X
param = "prompt"
replace = "red"                # search/replace in the prompt, like A1111's "Prompt S/R"
values = ["red", "blue"]

[[axis]]                       # Y
param = "cfg_scale"
values = [3.0, 7.0]
'''


def manifest_items(folder: Path) -> list[dict]:
    lines = (folder / "sweep-manifest.jsonl").read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r["type"] == "item"]


def files_by_key(folder: Path) -> dict[str, Path]:
    return {r["key"]: folder / r["files"][0] for r in manifest_items(folder)}


def item_files(folder: Path, suffix: str = ".png") -> list[Path]:
    """Every item output under the day folders (grids live at the top, not in these)."""
    return sorted(p for p in folder.glob("*/*") if p.suffix == suffix)


@pytest.fixture(scope="session")
def example_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sweepfile") / "example.toml"
    path.write_text(EXAMPLE, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def local_example(tmp_path_factory, example_file):
    """(output folder, stdout, studio home) of the example run on the local engine."""
    from studio.cli import main

    root = tmp_path_factory.mktemp("local-example")
    out, home = root / "out", root / "home"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STUDIO_HOME", str(home))
        capture = root / "stdout.txt"
        import contextlib

        with open(capture, "w", encoding="utf-8") as handle, contextlib.redirect_stdout(handle):
            code = main(["sweep", str(example_file), "--out", str(out)])
    assert code == 0
    return out, capture.read_text(encoding="utf-8"), home
