"""Background prewarm: the engine imports a plugin's heavy libraries on its worker thread
when idle (studio/core/jobs.py), the low-stall way (studio/core/warmup.py)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from studio.core.context import StudioContext
from studio.core.jobs import JobSpec, JobState
from studio.core.registry import Registry
from studio.core.settings import Settings
from studio.plugin_kit.warmup import dlopen_without_gil, paused_gc, responsive_gil
from tests.fixtures.toy_image_plugin import ToyImagePlugin

ROOT = Path(__file__).resolve().parents[2]


class WarmablePlugin(ToyImagePlugin):
    """The toy image plugin with a prewarm that records where and how it ran."""

    def __init__(self, fail: bool = False, warm_gate: threading.Event | None = None, log: list | None = None):
        super().__init__()
        self.fail, self.warm_gate, self.log = fail, warm_gate, log
        self.prewarms: list[dict] = []
        self.started = threading.Event()
        self.loads_after_prewarm: list[int] = []

    def prewarm(self) -> None:
        self.started.set()
        self.prewarms.append({"thread": threading.current_thread().name, "gc_enabled": gc.isenabled(),
                              "switch": sys.getswitchinterval()})
        if self.log is not None:
            self.log.append("prewarm")
        if self.warm_gate is not None:
            assert self.warm_gate.wait(10)
        if self.fail:
            raise ImportError("no such library")

    def load(self, source, options, progress):
        self.loads_after_prewarm.append(len(self.prewarms))
        return super().load(source, options, progress)


@pytest.fixture
def make_engine(tmp_path):
    made = []

    def make(plugin, *others):
        registry = Registry()
        for each in (plugin, *others):
            registry.add(each.id, lambda each=each: each)
        context = StudioContext.create(Settings(output_dir=str(tmp_path / "out")), registry)
        made.append(context)
        return context.engine

    yield make
    for context in made:
        context.close()
    gc.unfreeze()  # the engine's prewarm froze this test's objects; give them back to the collector


def _wait_warm(engine, timeout=10.0):
    deadline = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if not engine.warming:
            return
        deadline.wait(0.01)
    raise AssertionError("prewarm did not finish")


def test_prewarm_runs_once_on_the_worker_thread_with_gc_paused(make_engine):
    plugin = WarmablePlugin()
    engine = make_engine(plugin)
    switch = sys.getswitchinterval()
    assert engine.prewarm("toy") is True
    _wait_warm(engine)
    assert plugin.prewarms == [{"thread": "studio-engine", "gc_enabled": False, "switch": pytest.approx(0.001)}]
    assert gc.isenabled() and sys.getswitchinterval() == switch  # both put back
    assert engine.prewarm("toy") is False  # once per plugin
    job = engine.submit(JobSpec("toy", "toy-default", {"prompt": "x", "steps": 1, "seed": 1}))
    assert job.wait(10) and job.state is JobState.DONE
    assert len(plugin.prewarms) == 1 and plugin.loads_after_prewarm == [1]


def test_first_load_prewarms_when_the_idle_prewarm_never_ran(make_engine):
    plugin = WarmablePlugin()
    engine = make_engine(plugin)
    job = engine.submit(JobSpec("toy", "toy-default", {"prompt": "x", "steps": 1, "seed": 1}))
    assert job.wait(10) and job.state is JobState.DONE
    assert [p["thread"] for p in plugin.prewarms] == ["studio-engine"]
    assert plugin.loads_after_prewarm == [1]  # before the load, so the load's imports are the quiet kind


def test_failed_prewarm_changes_nothing(make_engine, caplog):
    plugin = WarmablePlugin(fail=True)
    engine = make_engine(plugin)
    assert engine.prewarm("toy")
    _wait_warm(engine)
    assert "prewarming plugin toy failed" in caplog.text
    assert gc.isenabled()
    job = engine.submit(JobSpec("toy", "toy-default", {"prompt": "x", "steps": 2, "seed": 1}))
    assert job.wait(10) and job.state is JobState.DONE and job.saved


def test_plugins_without_prewarm_and_unknown_ids_are_skipped(make_engine):
    engine = make_engine(ToyImagePlugin())
    assert engine.prewarm("toy") is False
    assert engine.prewarm("nope") is False
    assert not engine.warming


class OtherWarmablePlugin(WarmablePlugin):
    id = "warm"


def test_queued_jobs_run_before_a_pending_prewarm(make_engine):
    order: list[str] = []
    busy = threading.Event()
    toy = ToyImagePlugin(gate=busy)  # its steps wait for ``busy``: the worker is held in a job
    warm = OtherWarmablePlugin(log=order)
    engine = make_engine(toy, warm)
    engine.subscribe(lambda job, event: order.append(job.request["prompt"])
                     if getattr(event, "state", None) is JobState.LOADING else None)
    first = engine.submit(JobSpec("toy", "toy-default", {"prompt": "first", "steps": 1, "seed": 1}))
    assert engine.prewarm("warm")
    second = engine.submit(JobSpec("toy", "toy-default", {"prompt": "second", "steps": 1, "seed": 1}))
    busy.set()
    assert first.wait(10) and second.wait(10)
    _wait_warm(engine)
    assert order == ["first", "second", "prewarm"]


def test_shutdown_during_a_prewarm_returns(make_engine):
    gate = threading.Event()
    plugin = WarmablePlugin(warm_gate=gate)
    engine = make_engine(plugin)
    engine.prewarm("toy")
    assert plugin.started.wait(10)
    threading.Timer(0.2, gate.set).start()
    engine.shutdown(timeout=10)
    assert not engine.alive


def test_paused_gc_and_responsive_gil_restore_state():
    was = sys.getswitchinterval()
    gc.disable()
    try:
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # it was off before: stays off
    finally:
        gc.enable()
        gc.unfreeze()
    with pytest.raises(RuntimeError):
        with paused_gc(), responsive_gil(0.002):
            assert not gc.isenabled() and sys.getswitchinterval() == pytest.approx(0.002)
            raise RuntimeError
    assert gc.isenabled() and sys.getswitchinterval() == was
    assert gc.get_freeze_count() > 0
    gc.unfreeze()
    with paused_gc(freeze=False):
        pass
    assert gc.get_freeze_count() == 0 and gc.isenabled()


def test_prewarm_with_a_model_loaded_ages_instead_of_freezing(make_engine):
    toy, warm = ToyImagePlugin(), OtherWarmablePlugin()
    engine = make_engine(toy, warm)
    job = engine.submit(JobSpec("toy", "toy-default", {"prompt": "x", "steps": 1, "seed": 1}))
    assert job.wait(10) and engine.residency.loaded()
    gc.unfreeze()
    assert engine.prewarm("warm")
    _wait_warm(engine)
    assert warm.prewarms and gc.get_freeze_count() == 0  # the toy model stays collectable


def test_dlopen_without_gil_fails_softly(tmp_path):
    assert dlopen_without_gil(tmp_path / "missing.so") is False
    (tmp_path / "bogus.so").write_bytes(b"not a library")
    assert dlopen_without_gil(tmp_path / "bogus.so") is False


@pytest.mark.skipif(sys.platform == "win32", reason="no torch library preload on Windows")
def test_torch_preload_then_import_works_in_a_fresh_process():
    """Preloading torch's native libraries must leave ``import torch`` working normally."""
    script = (
        "import json, sys\n"
        "from studio.plugin_kit.warmup import preload_torch_libraries\n"
        "loaded = preload_torch_libraries()\n"
        "assert 'torch' not in sys.modules\n"
        "import torch\n"
        "x = torch.arange(6.0).reshape(2, 3)\n"
        "print('RESULT ' + json.dumps({'loaded': loaded, 'sum': float((x @ x.T).sum()),\n"
        "                              'again': preload_torch_libraries()}))\n"
    )
    pytest.importorskip("torch")  # (imported here only to skip; the check runs in the child)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", script], cwd=str(ROOT), env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert result["sum"] == 83.0
    assert result["again"] == []  # torch is imported: nothing more to do
    if sys.platform.startswith("linux"):
        assert "libtorch_cpu.so" in result["loaded"]
