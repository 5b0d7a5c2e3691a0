import threading
import time

import pytest

from studio.core.context import StudioContext
from studio.core.jobs import Failed, JobSpec, JobState, ModelLoaded, Saved, StateChanged
from studio.core.metadata import read_png_parameters
from studio.core.registry import Registry
from studio.core.residency import Residency
from studio.core.settings import Settings
from studio.plugin_api import LoadOptions, Log, ParamError, Preview, Progress, Result
from tests.fixtures.toy_image_plugin import ToyImagePlugin


@pytest.fixture
def make_context(tmp_path):
    made = []

    def make(plugin=None, budget_gb=6.0):
        registry = Registry()
        plugin = plugin or ToyImagePlugin()
        registry.add("toy", lambda: plugin)
        context = StudioContext.create(Settings(output_dir=str(tmp_path / "out"), memory_budget_gb=budget_gb),
                                       registry)
        made.append(context)
        return context, plugin

    yield make
    for context in made:
        context.close()
        assert not context.engine.alive, "engine thread leaked"


def _record(engine):
    events = []
    lock = threading.Lock()

    def listen(job, event):
        with lock:
            events.append((job.id, event))

    engine.subscribe(listen)
    return events


def test_event_order_and_saved_file(make_context):
    context, _ = make_context()
    events = _record(context.engine)
    job = context.engine.submit(JobSpec("toy", "toy-default", {"prompt": "a red circle", "steps": 3, "seed": 9}))
    assert job.wait(10)
    kinds = [type(e).__name__ for jid, e in events if jid == job.id]
    states = [e.state for _, e in events if isinstance(e, StateChanged)]
    assert states == [JobState.QUEUED, JobState.LOADING, JobState.RUNNING, JobState.DONE]
    assert kinds.count("Progress") == 3 and kinds.count("Preview") == 3
    # Files are on disk (Saved) before the Result that views show is sent.
    assert kinds.index("Saved") < kinds.index("Result") < len(kinds) - 1
    saved = [e for _, e in events if isinstance(e, Saved)]
    assert saved[0].path.exists()
    parsed = read_png_parameters(str(saved[0].path))
    assert parsed["prompt"] == "a red circle" and parsed["seed"] == 9
    assert context.history.outputs("image")[0].path == str(saved[0].path)


def test_bad_request_rejected_at_submit_nothing_queued(make_context):
    context, _ = make_context()
    with pytest.raises(ParamError, match="Steps must be at least 1"):
        context.engine.submit(JobSpec("toy", "toy-default", {"prompt": "x", "steps": 0}))
    with pytest.raises(ParamError, match="No plugin 'nope'"):
        context.engine.submit(JobSpec("nope", "m", {}))
    assert context.engine.queued() == [] and context.history.unfinished() == []


def test_failures_are_events_with_sentences(make_context):
    context, _ = make_context()
    events = _record(context.engine)
    boom = context.engine.submit(JobSpec("toy", "toy-default", {"prompt": "explode"}))
    missing = context.engine.submit(JobSpec("toy", "missing-model", {"prompt": "x"}))
    assert boom.wait(10) and missing.wait(10)
    failures = {jid: e for jid, e in events if isinstance(e, Failed)}
    # one sentence; it names the log file when one is set up (studio.core.logs)
    assert failures[boom.id].message.startswith("the toy model exploded") and failures[boom.id].stage == "run"
    assert failures[boom.id].message.endswith(".") and "\n" not in failures[boom.id].message
    assert failures[missing.id].stage == "load" and "missing-model" in failures[missing.id].message
    assert "Traceback" in failures[boom.id].detail
    # The engine keeps working after failures.
    ok = context.engine.submit(JobSpec("toy", "toy-default", {"prompt": "fine"}))
    assert ok.wait(10) and ok.state is JobState.DONE


def test_queue_two_jobs_and_drop_queued(make_context):
    gate = threading.Event()
    context, _ = make_context(ToyImagePlugin(gate=gate))
    first = context.engine.submit(JobSpec("toy", "toy-default", {"prompt": "one", "steps": 2}))
    second = context.engine.submit(JobSpec("toy", "toy-default", {"prompt": "two", "steps": 2}))
    third = context.engine.submit(JobSpec("toy", "toy-default", {"prompt": "three", "steps": 2}))
    assert [j.id for j in context.engine.queued()][-2:] == [second.id, third.id]
    assert context.engine.cancel(second.id)
    gate.set()
    assert first.wait(10) and third.wait(10) and second.wait(1)
    assert (first.state, second.state, third.state) == (JobState.DONE, JobState.CANCELLED, JobState.DONE)
    assert first.saved and third.saved and not second.saved


def test_interrupt_keeps_partial_and_cancel_drops(make_context):
    context, plugin = make_context(ToyImagePlugin(step_delay=0.05))
    job = context.engine.submit(JobSpec("toy", "toy-default", {"prompt": "slow", "steps": 50}))
    while job.state is not JobState.RUNNING:
        time.sleep(0.01)
    time.sleep(0.12)
    context.engine.interrupt(job.id)
    assert job.wait(5)
    assert job.state is JobState.INTERRUPTED and job.result.interrupted and len(job.saved) == 1

    job = context.engine.submit(JobSpec("toy", "toy-default", {"prompt": "slow", "steps": 50}))
    while job.state is not JobState.RUNNING:
        time.sleep(0.01)
    started = time.monotonic()
    context.engine.cancel(job.id)
    assert job.wait(5)
    assert time.monotonic() - started < 0.5, "cancel must stop within about one step"
    assert job.state is JobState.CANCELLED and not job.saved
    # The generator was closed on the worker, so its finally: ran.
    assert plugin.loaded[0].closed_generators == 2


def test_residency_reuses_and_evicts_lru(make_context):
    context, plugin = make_context(ToyImagePlugin(memory_bytes=2**30), budget_gb=2.5)
    for model in ("a", "b", "a", "c"):
        job = context.engine.submit(JobSpec("toy", model, {"prompt": "x", "steps": 1}))
        assert job.wait(10)
    sources = [m.source for m in plugin.loaded]
    assert sources == ["a", "b", "c"], "a was reused, not reloaded"
    loaded = [m.source for m in context.engine.residency.loaded()]
    assert loaded == ["a", "c"], "b was least recently used and got unloaded"
    assert plugin.loaded[1].unloaded


def test_residency_key_includes_options():
    plugin = ToyImagePlugin()
    residency = Residency(budget_bytes=10**9)
    residency.get(plugin, "a", LoadOptions(), print)
    residency.get(plugin, "a", LoadOptions(attention_slicing=True), print)
    assert len(plugin.loaded) == 2


def test_unfinished_jobs_offered_after_restart(tmp_path, make_context):
    gate = threading.Event()
    context, _ = make_context(ToyImagePlugin(gate=gate))
    running = context.engine.submit(JobSpec("toy", "toy-default", {"prompt": "was running"}))
    queued = context.engine.submit(JobSpec("toy", "toy-default", {"prompt": "was queued"}))
    while running.state is not JobState.RUNNING:
        time.sleep(0.01)
    # Closing the studio mid-run keeps both jobs on offer for the next start.
    context.engine.shutdown()
    gate.set()
    context2, _ = make_context()
    offered = context2.engine.unfinished_from_last_session()
    assert {r.id for r in offered} == {running.id, queued.id}
    again = context2.engine.resubmit(next(r for r in offered if r.id == queued.id))
    assert again.wait(10) and again.state is JobState.DONE
    context2.engine.discard(next(r for r in offered if r.id == running.id))
    assert context2.engine.unfinished_from_last_session() == []


def test_results_and_logs_reach_listener(make_context):
    context, _ = make_context()
    events = _record(context.engine)
    job = context.engine.submit(JobSpec("toy", "toy-default", {"prompt": "x", "steps": 2}))
    job.wait(10)
    mine = [e for jid, e in events if jid == job.id]
    assert any(isinstance(e, Log) and "loading toy-default" in e.message for e in mine)
    loaded = [e for e in mine if isinstance(e, ModelLoaded)]
    assert len(loaded) == 1 and loaded[0].device == "cpu" and loaded[0].defaults == {"size": (16, 16)}
    assert [e.step for e in mine if isinstance(e, Progress)] == [1, 2]
    assert all(e.image.size == (16, 16) for e in mine if isinstance(e, Preview))
    assert sum(isinstance(e, Result) for e in mine) == 1


def test_jobs_survive_a_hard_crash(make_context, studio_home):
    """A process killed mid-run leaves its running and queued jobs on offer at next start."""
    import os
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    code = textwrap.dedent("""
        import os, threading, time
        from studio.core.context import StudioContext
        from studio.core.jobs import JobSpec, JobState
        from studio.core.registry import Registry
        from tests.fixtures.toy_image_plugin import ToyImagePlugin
        registry = Registry()
        registry.add("toy", lambda: ToyImagePlugin(gate=threading.Event()))
        context = StudioContext.create(registry=registry)
        job = context.engine.submit(JobSpec("toy", "toy-default", {"prompt": "doomed"}))
        context.engine.submit(JobSpec("toy", "toy-default", {"prompt": "waiting"}))
        while job.state is not JobState.RUNNING:
            time.sleep(0.01)
        os._exit(9)  # no cleanup at all, as in a crash
    """)
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, env=dict(os.environ), timeout=60,
                          capture_output=True, text=True)
    assert done.returncode == 9, done.stderr
    context, _ = make_context()
    prompts = sorted(r.request["request"]["prompt"] for r in context.engine.unfinished_from_last_session())
    assert prompts == ["doomed", "waiting"]


def test_interactive_jobs_jump_the_queue_and_newest_wins(make_context):
    gate = threading.Event()
    context, _ = make_context(ToyImagePlugin(gate=gate))
    running = context.engine.submit(JobSpec("toy", "toy-default", {"prompt": "long"}))
    while running.state is not JobState.RUNNING:
        time.sleep(0.01)
    batch = context.engine.submit(JobSpec("toy", "toy-default", {"prompt": "batch"}))
    old = context.engine.submit(JobSpec("toy", "toy-default", {"prompt": "slider 1"}, interactive=True,
                                        lane_key="slider", save=False))
    new = context.engine.submit(JobSpec("toy", "toy-default", {"prompt": "slider 2"}, interactive=True,
                                        lane_key="slider", save=False))
    assert [j.id for j in context.engine.queued()] == [new.id, batch.id]
    assert old.state is JobState.CANCELLED
    order = []
    context.engine.subscribe(lambda j, e: order.append(j.id) if isinstance(e, StateChanged)
                             and e.state is JobState.RUNNING else None)
    gate.set()
    assert batch.wait(10) and new.wait(10)
    assert order == [new.id, batch.id]
    assert not new.saved and batch.saved


class _HintedToyPlugin(ToyImagePlugin):
    """The toy plugin whose loaded models declare ModelHints (defaults, choices, modes)."""

    def modes(self):
        return ["txt2img", "img2img"]

    def load(self, source, options, progress):
        model = super().load(source, options, progress)
        model.choices = {"size": [(16, 16), (32, 32)]}
        model.modes = ("txt2img",)
        return model


def test_model_loaded_carries_the_models_hints_and_modes(make_context):
    from studio.plugin_api import ModelHints

    for plugin, modes, choices in ((_HintedToyPlugin(), ["txt2img"], {"size": [(16, 16), (32, 32)]}),
                                   (ToyImagePlugin(), ["txt2img"], {})):
        context, _ = make_context(plugin)
        events = _record(context.engine)
        job = context.engine.submit(JobSpec("toy", "toy-default", {"prompt": "x", "steps": 1}, mode="txt2img"))
        assert job.wait(10) and job.state is JobState.DONE
        loaded = [e for jid, e in events if jid == job.id and isinstance(e, ModelLoaded)]
        assert len(loaded) == 1 and loaded[0].modes == modes and loaded[0].choices == choices
        # API 1.0 models (defaults only, no ModelHints) keep their defaults
        assert loaded[0].defaults == {"size": (16, 16)}
        assert isinstance(plugin.loaded[0], ModelHints) == (type(plugin) is _HintedToyPlugin)


def test_a_model_without_hints_supports_every_mode_of_its_plugin(make_context):
    class TwoModes(ToyImagePlugin):
        def modes(self):
            return ["txt2img", "img2img"]

    context, _ = make_context(TwoModes())
    events = _record(context.engine)
    job = context.engine.submit(JobSpec("toy", "toy-default", {"prompt": "x", "steps": 1}, mode="txt2img"))
    assert job.wait(10)
    loaded = [e for jid, e in events if jid == job.id and isinstance(e, ModelLoaded)]
    assert loaded[0].modes == ["txt2img", "img2img"]
