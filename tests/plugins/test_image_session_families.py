"""The Image panel's session on the real diffusers plugin with tiny family models: what the
loaded model honours reaches the session (hidden controls, memory figures), settings the user
never touched are sent empty (the model's own), settings the user did set and the model ignores
are said, and the panel's transformer file and Settings' quantization reach the load.

Headless: jobs run on the real engine, events are fed to the session as the bridge does
(tests/fixtures/session_driver.py).  The models are random-weight folders of the real diffusers
classes (tests/fixtures/families.py), loaded through the plugin's own loader.
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from studio.core.context import StudioContext  # noqa: E402  # after the skips: heavy libraries
from studio.core.jobs import JobState  # noqa: E402
from studio.core.registry import Registry  # noqa: E402
from studio.core.sessions.image import ImageSession  # noqa: E402
from studio.core.settings import Settings  # noqa: E402
from studio.plugin_api import ParamError  # noqa: E402
from studio_diffusers import DiffusersPlugin  # noqa: E402
from tests.fixtures import families  # noqa: E402
from tests.fixtures.session_driver import run_through  # noqa: E402

SIZE = (64, 64)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def klein(tmp_path_factory) -> Path:
    """A step-distilled Flux.2 klein (as published): no CFG, no negative prompt."""
    return families.build_flux2_klein(tmp_path_factory.mktemp("klein") / "klein", distilled=True)


@pytest.fixture(scope="module")
def klein_file(klein, tmp_path_factory) -> Path:
    from safetensors.torch import save_file

    path = tmp_path_factory.mktemp("files") / "klein-transformer.safetensors"
    save_file(families.denoiser_state(klein), str(path))
    return path


@pytest.fixture
def session(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    registry = Registry()
    registry.add("diffusers", DiffusersPlugin)
    context = StudioContext.create(Settings(device="cpu", output_dir=str(tmp_path / "out")), registry)
    yield ImageSession(context)
    context.close()


def run(session: ImageSession) -> tuple[object, list[tuple[str, str]]]:
    messages: list[tuple[str, str]] = []
    session.message.connect(lambda level, text: messages.append((level, text)))
    run_through(session, session.generate, timeout=240)
    job = session.last_job
    assert job is not None and job.state is JobState.DONE, messages
    return job, messages


def ignored(messages: list[tuple[str, str]]) -> list[str]:
    return [text for level, text in messages if level == "warning" and "ignored" in text]


def test_untouched_optional_settings_are_sent_empty(session, tmp_path):
    """The form's start values (20 steps, CFG 7, 512×512) are placeholders: unset, the model decides."""
    builtin = session.request_values()  # the built-in model's listed defaults are its own values
    assert builtin["size"] == tuple(session.model_defaults(session.model)["size"])
    session.set_model(str(tmp_path / "my-model"))  # a folder the plugin knows nothing about yet
    request = session.request_values()
    assert request["steps"] is None and request["cfg_scale"] is None and request["size"] is None
    assert session.values["cfg_scale"] == 7.0  # what the form shows until a model says otherwise
    session.set_value("cfg_scale", 7.0)  # the user set it, even to the same number
    session.apply_model_defaults({"steps": 28})  # a model's own value is sent as it is
    request = session.request_values()
    assert request["cfg_scale"] == 7.0 and request["steps"] == 28 and request["size"] is None
    session.set_model(str(tmp_path / "another-model"))  # its suggestions go with the old model; the user's stay
    request = session.request_values()
    assert request["steps"] is None and request["cfg_scale"] == 7.0


def test_distilled_flux2_hides_what_it_ignores_and_warns_only_about_what_the_user_set(session, klein):
    session.set_model(str(klein))
    session.set_values({"prompt": "a red circle", "seed": 3, "steps": 2, "size": SIZE, "preview_every": 0})
    job, messages = run(session)
    # Nothing the user did not set is reported: the panel's CFG 7 was sent empty.
    assert job.spec.request["cfg_scale"] is None and job.spec.request["negative_prompt"] == ""
    assert ignored(messages) == []
    # What the loaded model ignores reached the session, with why (the form hides these).
    assert {"cfg_scale", "negative_prompt", "distilled_guidance"} <= set(session.unsupported)
    assert "step-distilled" in session.unsupported["cfg_scale"]
    assert not session.honoured("cfg_scale") and not session.honoured("negative_prompt")
    assert session.honoured("steps") and session.honoured("size")
    assert "img2img" not in session.model_modes and "edit" in session.model_modes
    assert session.load_memory["peak_rss_bytes"] > 0
    # The history keeps the load's figures with the image.
    assert session.results[0].parameters["load_memory"]["peak_rss_bytes"] == session.load_memory["peak_rss_bytes"]

    # Values the user did set and this model ignores are still said, in the panel's message bar.
    session.set_values({"negative_prompt": "blurry", "cfg_scale": 6.0})
    _job, messages = run(session)
    said = " ".join(ignored(messages))
    assert "negative prompt was ignored" in said and "CFG scale 6 was ignored" in said

    # Another model: what this one said about itself no longer holds.
    session.set_model(str(klein) + "-other")
    assert session.unsupported == {} and session.load_memory == {} and session.honoured("cfg_scale")


def test_transformer_file_is_checked_and_reaches_the_load_and_the_metadata(session, klein, klein_file, tmp_path):
    session.set_model(str(klein))
    session.set_values({"prompt": "a red circle", "seed": 3, "steps": 2, "size": SIZE, "preview_every": 0})
    session.set_transformer(str(tmp_path / "missing.gguf"))
    with pytest.raises(ParamError, match="not found"):
        session.generate()
    wrong = tmp_path / "weights.ckpt"
    wrong.write_bytes(b"x")
    session.set_transformer(str(wrong))
    with pytest.raises(ParamError, match=r"\.gguf or \.safetensors"):
        session.generate()

    session.set_transformer(str(klein_file))
    job, _messages = run(session)
    assert job.spec.options.transformer == str(klein_file.resolve())
    record = session.results[0]
    assert record.parameters["transformer"] == klein_file.name
    assert session.load_memory["transformer_file"] == klein_file.name

    said: list[str] = []
    session.message.connect(lambda level, text: said.append(text))
    session.restore_from_output(record)  # the same file is still chosen: nothing to say
    assert said == []

    session.set_transformer("")  # back to the model's own weights
    assert session.job_spec().options.transformer == ""
    # The PNG names the file; a restore cannot pick it (only its name is known), so it says so.
    session.restore_from_png(record.path)
    assert "Not applied: transformer “klein-transformer.safetensors” (choose that file" in said[-1]


def test_quantize_setting_takes_effect_through_the_load_options(session, klein):
    pytest.importorskip("torchao")
    session.context.settings.quantize = "int8"
    session.set_model(str(klein))
    session.set_values({"prompt": "a red circle", "seed": 3, "steps": 2, "size": SIZE, "preview_every": 0})
    job, _messages = run(session)
    assert job.spec.options.quantize == "int8"
    assert session.results[0].parameters["quantize"] == "int8"
    assert session.load_memory["quantization"] == "int8" and session.load_memory["quantized_saved_bytes"] > 0
    said: list[str] = []
    session.message.connect(lambda level, text: said.append(text))
    session.context.settings.quantize = "none"
    session.restore_from_output(session.results[0])
    assert said and "quantization int8 (a load option in Settings, now none)" in said[-1]
