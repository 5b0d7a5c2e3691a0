"""The panel-session base drives a job headless: state, signals and results, no Qt."""

import threading

import pytest

from studio.core.context import StudioContext
from studio.core.registry import Registry
from studio.core.sessions.base import PanelSession
from studio.core.settings import Settings
from studio.plugin_api import Kind, ParamError
from tests.fixtures.toy_image_plugin import ToyImagePlugin


class ToySession(PanelSession):
    kind = Kind.IMAGE


@pytest.fixture
def session(tmp_path):
    plugin = ToyImagePlugin()
    registry = Registry()
    registry.add("toy", lambda: plugin)
    settings = Settings(output_dir=str(tmp_path / "out"))
    context = StudioContext.create(settings, registry)
    yield ToySession(context)
    context.close()


def _run(session: PanelSession) -> list[str]:
    """Submit the current values and feed events to the session on this thread, as the bridge would."""
    seen: list[str] = []
    session.changed.connect(seen.append)
    inbox: list[tuple[object, object]] = []
    done = threading.Event()

    def listener(job, event):
        inbox.append((job, event))
        if getattr(event, "state", None) is not None and event.state.finished:
            done.set()

    unsubscribe = session.context.engine.subscribe(listener)
    session.submit(session.job_spec())
    assert done.wait(30)
    unsubscribe()
    for job, event in inbox:
        session.handle(job, event)
    return seen


def test_a_job_runs_through_the_session(session):
    assert session.mode == "txt2img" and session.model == "toy-default"
    session.set_value("prompt", "a red circle")
    session.set_value("seed", 5)
    results: list[int] = []
    session.results_changed.connect(lambda: results.append(1))
    seen = _run(session)
    assert "job" in seen and "progress" in seen
    assert session.active_job is None and session.last_job is not None
    assert session.last_job.request["prompt"] == "a red circle"
    assert session.last_job.saved and results, "the saved image reached the results list"
    assert session.clock.step == session.clock.total > 0


def test_values_signal_only_on_change(session):
    seen: list[str] = []
    session.changed.connect(seen.append)
    session.set_value("steps", 4)  # already the default
    assert seen == []
    session.set_value("steps", 6)
    assert seen == ["values"]


def test_unknown_mode_is_one_sentence(session):
    with pytest.raises(ParamError, match="Unknown mode 'outpaint'"):
        session.set_mode("outpaint")


def test_bad_values_are_refused_at_submit(session):
    session.set_value("steps", 0)
    with pytest.raises(ParamError, match="at least 1"):
        session.submit(session.job_spec())
    assert session.active_job is None


def test_switching_plugin_resets_values_and_unknown_ones_are_one_sentence(session):
    from studio.core.registry import Registry

    second = ToyImagePlugin()
    second.id = "toy2"
    registry: Registry = session.context.registry
    registry.add("toy2", lambda: second)
    session.set_value("steps", 9)
    seen: list[str] = []
    session.changed.connect(seen.append)
    session.set_plugin("toy2")
    assert session.plugin is second and seen == ["plugin"]
    assert session.values["steps"] == 4 and not session.touched
    with pytest.raises(ParamError, match="No plugin 'nope'"):
        session.set_plugin("nope")
