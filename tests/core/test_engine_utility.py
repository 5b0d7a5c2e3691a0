"""Utility jobs: a short function against a loaded model, and unloading, on the worker thread."""

import threading
import time

import pytest

from studio.core.context import StudioContext
from studio.core.jobs import Answered, Failed, JobSpec, JobState, StateChanged, Unloaded
from studio.core.registry import Registry
from studio.core.settings import Settings
from studio.plugin_api import ParamError
from tests.fixtures.toy_image_plugin import ToyImagePlugin


@pytest.fixture
def make_context(tmp_path):
    made = []

    def make(plugin=None):
        registry = Registry()
        plugin = plugin or ToyImagePlugin()
        registry.add("toy", lambda: plugin)
        context = StudioContext.create(Settings(output_dir=str(tmp_path / "out")), registry)
        made.append(context)
        return context, plugin

    yield make
    for context in made:
        context.close()


def _events(engine):
    events, lock = [], threading.Lock()

    def listen(job, event):
        with lock:
            events.append((job, event))

    engine.subscribe(listen)
    return events


def _load(context):
    job = context.engine.submit(JobSpec("toy", "toy-default", action="load"))
    assert job.wait(10) and job.state is JobState.DONE


def test_call_runs_on_the_worker_against_the_loaded_model(make_context):
    context, _ = make_context()
    _load(context)
    seen = {}

    def measure(model):
        seen["thread"] = threading.current_thread().name
        return (model.source, model.memory_bytes)

    events = _events(context.engine)
    job = context.engine.call("toy", "toy-default", measure)
    assert job.wait(10) and job.state is JobState.DONE
    assert job.answer == ("toy-default", 1000) and seen["thread"] == "studio-engine"
    answers = [e for j, e in events if j is job and isinstance(e, Answered)]
    assert answers == [Answered(("toy-default", 1000), loaded=True)]
    states = [e.state for j, e in events if j is job and isinstance(e, StateChanged)]
    assert states == [JobState.QUEUED, JobState.RUNNING, JobState.DONE]  # no LOADING: a call never loads
    assert context.history.job(job.id) is None, "utility jobs stay out of the history"


def test_call_never_loads_a_model(make_context):
    context, plugin = make_context()
    calls = []
    job = context.engine.call("toy", "toy-default", calls.append)
    assert job.wait(10) and job.state is JobState.DONE
    assert calls == [] and plugin.loaded == [] and job.answer is None
    assert context.engine.residency.sources() == []


def test_call_failure_is_a_failed_event(make_context):
    context, _ = make_context()
    _load(context)
    events = _events(context.engine)

    def broken(model):
        raise ValueError("no tokenizer here")

    job = context.engine.call("toy", "toy-default", broken)
    assert job.wait(10) and job.state is JobState.FAILED
    failure = next(e for j, e in events if j is job and isinstance(e, Failed))
    assert failure.stage == "call" and "no tokenizer here" in failure.message
    with pytest.raises(ParamError, match="needs a function"):
        context.engine.submit(JobSpec("toy", "toy-default", action="call"))
    with pytest.raises(ParamError, match="Unknown job action"):
        context.engine.submit(JobSpec("toy", "toy-default", action="explode"))


def test_calls_take_the_interactive_lane_and_the_newest_wins(make_context):
    gate = threading.Event()
    context, _ = make_context(ToyImagePlugin(gate=gate))
    running = context.engine.submit(JobSpec("toy", "toy-default", {"prompt": "long"}))
    while running.state is not JobState.RUNNING:
        time.sleep(0.01)
    batch = context.engine.submit(JobSpec("toy", "toy-default", {"prompt": "batch"}))
    old = context.engine.call("toy", "toy-default", lambda model: "old", lane_key="meter")
    new = context.engine.call("toy", "toy-default", lambda model: "new", lane_key="meter")
    assert [j.id for j in context.engine.queued()] == [new.id, batch.id]  # ahead of the batch
    assert old.state is JobState.CANCELLED
    assert not new.done.is_set(), "one lane: the call waits for the running job"
    gate.set()
    assert new.wait(10) and batch.wait(10)
    assert new.answer == "new" and old.answer is None


def test_unload_is_a_job_in_queue_order(make_context):
    gate = threading.Event()
    context, plugin = make_context(ToyImagePlugin(gate=gate))
    events = _events(context.engine)
    running = context.engine.submit(JobSpec("toy", "toy-default", {"prompt": "long", "steps": 2}))
    while running.state is not JobState.RUNNING:
        time.sleep(0.01)
    unload = context.engine.unload("toy", "toy-default")
    # The model is in use: the unload waits its turn instead of freeing it under the run.
    assert not unload.done.is_set() and plugin.loaded and not plugin.loaded[0].unloaded
    gate.set()
    assert unload.wait(10) and unload.state is JobState.DONE and running.state is JobState.DONE
    assert plugin.loaded[0].unloaded and context.engine.residency.sources() == []
    assert [e for j, e in events if j is unload and isinstance(e, Unloaded)] == [Unloaded("toy-default", 1)]
    again = context.engine.unload("toy", "toy-default")
    assert again.wait(10) and again.state is JobState.DONE and "not loaded" in again.message
    assert context.history.job(unload.id) is None and context.history.unfinished() == []


def test_residency_answers_which_models_are_loaded_from_any_thread(make_context):
    context, _ = make_context()
    assert not context.engine.residency.is_loaded("toy", "toy-default")
    _load(context)
    assert context.engine.residency.is_loaded("toy", "toy-default")
    assert context.engine.residency.sources() == [("toy", "toy-default")]
