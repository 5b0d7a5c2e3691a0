"""`studio sweep` on the local engine: the issue's example, reruns, a killed sweep, grids."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from studio.cli import main
from studio.core.history import History
from studio.core.metadata import read_png_parameters

from .conftest import EXAMPLE, SLOW, files_by_key, item_files, manifest_items


@pytest.mark.timeout(SLOW)
def test_example_makes_8_images_and_2_labelled_grids(local_example, example_file):
    out, stdout, home = local_example
    images = item_files(out)
    assert len(images) == 8
    assert sorted(p.name for p in out.glob("grid-*.png")) == ["grid-seed1.png", "grid-seed2.png"]
    assert "0 done, 8 to run" in stdout
    # every item: A1111 parameters with the swept values, through the studio's store naming
    seen = set()
    for path in images:
        params = read_png_parameters(str(path))
        assert params["steps"] == 20 and params["width"] == 64
        seen.add((params["prompt"], params["cfg_scale"], params["seed"]))
        assert path.name.split("-")[1] == str(params["seed"])
    assert seen == {(f"a {c} circle on a black background", cfg, seed)
                    for c in ("red", "blue") for cfg in (3.0, 7.0) for seed in (1, 2)}
    # ... and in the history, like any job
    history = History(home / "history.sqlite")
    try:
        assert len(history.outputs("image")) == 8
    finally:
        history.close()
    # the grid: the sweep file embedded, 2x2 tiles that are the items themselves
    with Image.open(out / "grid-seed1.png") as grid:
        assert grid.info["sweep"] == EXAMPLE
        assert json.loads(grid.info["sweep_grid"]) == {"seed": 1, "z": None, "x": ["red", "blue"], "y": ["3", "7"]}
        pixels = np.asarray(grid.convert("RGB"))
    assert pixels.shape[0] > 2 * 192 and pixels.shape[1] > 2 * 192  # 64 px tiles enlarged 3x, plus margins
    margin = pixels[:30, :, :]
    assert (margin < 128).any(), "the header and axis labels are drawn in the margin"


@pytest.mark.timeout(SLOW)
def test_rerun_runs_nothing_and_writes_nothing(local_example, example_file, capsys):
    out, _, _ = local_example
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert main(["sweep", str(example_file), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "8 done, 0 to run" in printed
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_dry_run_prints_the_plan_and_writes_nothing(example_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", str(example_file), "--out", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "8 items" in printed and "X: Prompt S/R" in printed and "Y: CFG scale: 3, 7" in printed
    assert "0 done, 8 to run" in printed
    assert not out.exists()


def test_bad_axis_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.replace('param = "cfg_scale"', 'param = "cfg_scal"'), encoding="utf-8")
    assert main(["sweep", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "axis Y (cfg_scal): unknown parameter 'cfg_scal'" in err
    assert not (tmp_path / "out").exists()


def test_bad_value_and_bad_key_name_themselves(tmp_path, capsys):
    cases = {
        EXAMPLE.replace("values = [3.0, 7.0]", 'values = [3.0, "high"]'): "value 'high': CFG scale must be a number",
        EXAMPLE.replace("steps = 20", "stepz = 20"): "unknown parameter 'stepz'",
        EXAMPLE.replace("steps = 20", "steps = 0"): "steps = 0: Steps must be at least 1",
        EXAMPLE.replace('replace = "red"', 'replace = "green"'): "'green' does not occur in prompt",
        EXAMPLE.replace("values = [3.0, 7.0]", 'values = "1-9 [x]"'): "CFG scale must be a number, not '1-9 [x]'",
        EXAMPLE.replace("seeds = [1, 2]", "seeds = [1, 2]\nseed = 4"): "give either seeds or seed",
    }
    for text, message in cases.items():
        path = tmp_path / "case.toml"
        path.write_text(text, encoding="utf-8")
        code = main(["sweep", str(path), "--dry-run"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and message in err and len(err.splitlines()) == 1, err


def test_unreachable_ray_address_is_one_line(example_file, tmp_path, capsys):
    code = main(["sweep", str(example_file), "--out", str(tmp_path / "out"), "--ray", "127.0.0.1:9"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "no Ray cluster reachable at 127.0.0.1:9" in err


@pytest.mark.timeout(SLOW)
def test_killed_sweep_resumes_and_loses_nothing(tmp_path):
    """SIGKILL a sweep after its second item; the rerun makes only the rest.  (3 steps instead of
    20 keeps it quick; the example itself is checked above.)"""
    sweep = tmp_path / "example.toml"
    sweep.write_text(EXAMPLE.replace("steps = 20", "steps = 3"), encoding="utf-8")
    out = tmp_path / "out"
    env = {**os.environ, "STUDIO_HOME": str(tmp_path / "home")}
    process = subprocess.Popen([sys.executable, "-m", "studio", "sweep", str(sweep), "--out", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    manifest = out / "sweep-manifest.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if manifest.exists() and len(manifest_items(out)) >= 2:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the sweep ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    done_before = len(manifest_items(out))
    assert 2 <= done_before < 8

    resumed = subprocess.run([sys.executable, "-m", "studio", "sweep", str(sweep), "--out", str(out)],
                             check=False, capture_output=True, text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{done_before} done, {8 - done_before} to run" in resumed.stdout
    items = manifest_items(out)
    assert len(items) == 8 and len({r["key"] for r in items}) == 8
    assert all(path.is_file() for path in files_by_key(out).values())
    # At most the one item that was being written when the kill came is there twice.
    assert 8 <= len(item_files(out)) <= 9
    assert sorted(p.name for p in out.glob("grid-*.png")) == ["grid-seed1.png", "grid-seed2.png"]
