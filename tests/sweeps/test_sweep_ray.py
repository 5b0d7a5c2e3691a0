"""The Ray backend on one local Ray instance shared by this module (a 2-core CI box starts Ray
in seconds, and two workers each load the built-in model once)."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
from PIL import Image

from studio.cli import main
from studio.core.history import History

from .conftest import SLOW, files_by_key, item_files, manifest_items

ray = pytest.importorskip("ray", reason="the Ray backend needs the 'cluster' extra")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    from studio.core.sweeps.ray_backend import LOCAL_OBJECT_STORE

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             object_store_memory=LOCAL_OBJECT_STORE)
    yield
    ray.shutdown()


@pytest.mark.timeout(SLOW)
def test_ray_gives_the_same_8_images_pixel_for_pixel(local_example, example_file, tmp_path, capsys):
    reference, _, reference_home = local_example
    out = tmp_path / "out"
    assert main(["sweep", str(example_file), "--out", str(out), "--ray", "--workers", "2"]) == 0
    assert "0 done, 8 to run" in capsys.readouterr().out
    ours, theirs = files_by_key(out), files_by_key(reference)
    assert len(ours) == 8 and ours.keys() == theirs.keys()
    for key, path in ours.items():
        with Image.open(path) as mine, Image.open(theirs[key]) as local:
            assert np.array_equal(np.asarray(mine), np.asarray(local)), path.name
            assert mine.info["parameters"] == local.info["parameters"]  # same A1111 metadata
    assert sorted(p.name for p in out.glob("grid-*.png")) == ["grid-seed1.png", "grid-seed2.png"]
    assert {r["backend"] for r in manifest_items(out)} == {"ray"}
    # The driver saved them into the history exactly as the engine does.
    mine, local = History(os.environ["STUDIO_HOME"] + "/history.sqlite"), History(reference_home / "history.sqlite")
    try:
        def rows(history):
            # load_memory is what loading the model cost in that process: a measurement, not a setting
            return sorted((r.kind, r.seed, json.dumps({k: v for k, v in r.parameters.items() if k != "load_memory"},
                                                      sort_keys=True, default=str))
                          for r in history.outputs("image"))
        assert rows(mine) == rows(local)
        jobs = {r.job_id for r in mine.outputs("image")}
        assert {record.state for record in map(mine.job, jobs)} == {"done"}
    finally:
        mine.close()
        local.close()


@pytest.mark.timeout(SLOW)
def test_a_worker_killed_mid_sweep_loses_and_duplicates_nothing(example_file, tmp_path):
    from studio.core.context import StudioContext
    from studio.core.registry import Registry
    from studio.core.settings import Settings
    from studio.core.sweeps.plan import build
    from studio.core.sweeps.ray_backend import RaySweep
    from studio.core.sweeps.runner import SweepRunner
    from studio.core.sweeps.spec import read

    out = tmp_path / "out"
    registry = Registry.discover()
    runner = SweepRunner(build(read(example_file), registry), out)
    settings = Settings(output_dir=str(out))
    context = StudioContext.create(settings, registry)
    messages: list[str] = []
    sweep = RaySweep(runner, context.store, context.history, context.load_options(), workers=2,
                     notify=messages.append)
    killed: list[int] = []

    def kill_a_busy_worker(item, done):
        if not killed:
            victim = sweep.busy_worker_pids()[0]
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    runner.listeners.append(kill_a_busy_worker)
    runner.begin()
    try:
        outcome = sweep.run()
    finally:
        runner.end()
        context.close()
    assert killed and outcome.ok, outcome.message
    assert any("died" in m for m in messages), messages
    items = manifest_items(out)
    assert sorted(r["index"] for r in items) == list(range(8))  # every item once
    files = item_files(out)
    assert len(files) == 8 and {out / r["files"][0] for r in items} == set(files)  # nothing saved twice
    history = History(os.environ["STUDIO_HOME"] + "/history.sqlite")
    try:
        assert len(history.outputs("image")) == 8
    finally:
        history.close()
