"""ImageSession without Qt: real jobs on the engine with the toy plugin; results, seeds, model
defaults, restores (A1111 text, our own records, the MapsA1111 capability) and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from studio.core.context import StudioContext
from studio.core.jobs import JobState
from studio.core.registry import Registry
from studio.core.sessions.image import ImageSession
from studio.core.settings import Settings
from studio.plugin_api import ParamError
from tests.fixtures.session_driver import run_through
from tests.fixtures.toy_image_plugin import ToyImagePlugin


class MappingToyPlugin(ToyImagePlugin):
    """A toy plugin with the MapsA1111 capability (its own names for two A1111 fields)."""

    def from_a1111(self, fields):
        values, unplaced = {}, []
        for key, value in fields.items():
            if key in ("prompt", "seed", "steps"):
                values[key] = value
            elif key == "negative_prompt":
                values["negative_prompt"] = f"mapped: {value}"
            else:
                unplaced.append(key)
        return values, unplaced


def _context(tmp_path, monkeypatch, plugin=None) -> StudioContext:
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    registry = Registry()
    registry.add("toy", lambda: plugin or ToyImagePlugin())
    return StudioContext.create(Settings(output_dir=str(tmp_path / "out")), registry)


@pytest.fixture
def session(tmp_path, monkeypatch):
    context = _context(tmp_path, monkeypatch)
    yield ImageSession(context)
    context.close()


def test_generate_fills_results_seeds_and_progress(session):
    session.set_values({"prompt": "a red circle", "seed": 21, "steps": 3})
    results: list[int] = []
    session.results_changed.connect(lambda: results.append(len(session.results)))
    seen = run_through(session, session.generate)
    job = session.last_job
    assert job.state is JobState.DONE and session.active_job is None and not session.pending
    assert {"job", "progress", "preview", "seeds", "hints"} <= set(seen)
    assert results == [1]
    record = session.results[0]
    assert Path(record.path).is_file() and record.seed == 21
    assert record.parameters["prompt"] == "a red circle"
    assert session.seeds_used == [21]
    assert session.clock.step == session.clock.total == 3
    assert session.elapsed > 0
    assert session.context.settings.recent_models["toy"] == ["toy-default"]
    # a second session reads the same results back from the history
    again = ImageSession(session.context)
    again.load_results()
    assert [r.path for r in again.results] == [record.path]


def test_two_queued_jobs_both_reach_the_results(session):
    def two():
        session.set_values({"prompt": "first", "seed": 1})
        session.generate()
        session.set_values({"prompt": "second", "seed": 2})
        session.generate()

    run_through(session, two)
    assert [r.parameters["prompt"] for r in session.results] == ["second", "first"]


def test_the_models_own_size_fills_an_untouched_field_only(session):
    run_through(session, session.generate)
    assert session.hints == {"size": (16, 16)}
    session.set_value("size", (24, 24))
    session.apply_model_defaults({"size": (32, 32)})
    assert session.values["size"] == (24, 24), "a value the user set is never overwritten"


def test_bad_input_is_one_sentence_and_queues_nothing(session):
    session.set_value("steps", 0)
    with pytest.raises(ParamError, match="at least 1"):
        session.generate()
    assert session.active_job is None and session.context.engine.queued() == []
    session.set_value("steps", 2)
    session.set_model("")
    with pytest.raises(ParamError, match="Choose a model"):
        session.generate()


def test_a_failed_load_is_said_with_its_stage(session):
    messages: list[tuple[str, str]] = []
    session.message.connect(lambda level, text: messages.append((level, text)))
    session.set_model("missing-model")
    run_through(session, session.generate)
    assert session.last_job.state is JobState.FAILED
    assert messages and messages[-1][0] == "error" and messages[-1][1].startswith("Could not load the model")


def _png(path: Path, text: str) -> Path:
    info = PngInfo()
    info.add_text("parameters", text)
    Image.new("RGB", (16, 16)).save(path, pnginfo=info)
    return path


def test_restore_from_png_applies_valid_values_and_says_what_not(tmp_path, monkeypatch):
    context = _context(tmp_path, monkeypatch, MappingToyPlugin())
    try:
        session = ImageSession(context)
        png = _png(tmp_path / "a.png", "a blue square\nNegative prompt: blurry\n"
                                       "Steps: 500, Sampler: Euler a, CFG scale: 4, Seed: 77, Size: 24x24, "
                                       "Model: elsewhere, Clip skip: 2")
        messages: list[tuple[str, str]] = []
        session.message.connect(lambda level, text: messages.append((level, text)))
        restored = session.restore_from_png(png)
        assert session.values["prompt"] == "a blue square" and session.values["negative_prompt"] == "mapped: blurry"
        assert session.values["seed"] == 77
        assert session.values["steps"] == 4, "out of range: not applied"
        assert any("Steps 500" in note for note in restored.ignored)
        assert {"sampler", "cfg_scale", "Clip skip"} <= set(restored.ignored)  # the toy has no place for them
        assert any("model “elsewhere”" in note for note in restored.ignored)
        level, text = messages[-1]
        assert level == "warning" and text.startswith("Restored 3 settings from a.png.") and "Not applied" in text
    finally:
        context.close()


def test_without_the_capability_only_matching_names_are_restored(session, tmp_path):
    png = _png(tmp_path / "b.png", "a red circle\nSteps: 3, Sampler: Euler a, Seed: 9, Size: 24x24")
    restored = session.restore_from_png(png)
    assert session.values["prompt"] == "a red circle" and session.values["steps"] == 3
    assert session.values["seed"] == 9 and session.values["size"] == (24, 24)  # "Size" is the toy's "size"
    assert "sampler" in restored.ignored, "no guessing that a sampler is this plugin's anything"


def test_restore_without_parameters_raises_one_sentence(session, tmp_path):
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    with pytest.raises(ParamError, match="no generation parameters"):
        session.restore_from_png(plain)


def test_restore_from_a_result_brings_back_its_values_and_model(session):
    session.set_values({"prompt": "alpha", "seed": 5, "steps": 2})
    run_through(session, session.generate)
    session.set_values({"prompt": "beta", "seed": None, "steps": 7})
    session.set_model("other")
    restored = session.restore_from_output(session.results[0])
    assert session.values["prompt"] == "alpha" and session.values["seed"] == 5 and session.values["steps"] == 2
    assert session.model == "toy-default"
    assert set(restored.ignored) == {"sampler", "cfg_scale", "width", "height"}, \
        "the toy model records fields it has no setting for (and no MapsA1111 to place them)"


def test_the_mapsa1111_capability_is_used_when_the_plugin_has_it(tmp_path, monkeypatch):
    context = _context(tmp_path, monkeypatch, MappingToyPlugin())
    try:
        session = ImageSession(context)
        restored = session.restore_from_parameters({"prompt": "p", "negative_prompt": "n", "steps": 3,
                                                    "sampler": "Euler"})
        assert session.values["negative_prompt"] == "mapped: n" and session.values["steps"] == 3
        assert restored.ignored == ["sampler"]
    finally:
        context.close()


def test_a_new_model_drops_the_old_models_suggestions(session):
    session.apply_model_defaults({"size": (32, 32), "steps": 9})
    session.set_value("steps", 9)  # the user confirms one of them: it is theirs now
    session.set_model("another-model")
    assert session.values["size"] == (16, 16), "back to the plugin's default"
    assert session.values["steps"] == 9
