"""The shared view pieces bound to a real session: the form engine, the model picker, the run
status and the message bar follow the session, and edits reach it (no panel involved)."""

from __future__ import annotations

import threading

import pytest

from studio.core.jobs import ModelLoaded
from studio.core.sessions.image import ImageSession
from studio.plugin_api import ModelChoice, Param, ParamType
from studio.qt.widgets.message_bar import MessageBar
from studio.qt.widgets.model_picker import ModelPicker
from studio.qt.widgets.param_form import AUTO_TEXT, ParamForm
from studio.qt.widgets.run_status import RunStatus
from tests.qt.tiny_plugin import TinyImagePlugin


class TwoModelPlugin(TinyImagePlugin):
    def models(self):
        return [ModelChoice("/opt/models/tiny-64", "Tiny 64 (built in)", defaults={"size": (64, 48)}),
                ModelChoice("/opt/models/tiny-plain", "Tiny plain")]


@pytest.fixture
def session(make_context):
    return ImageSession(make_context(plugin=TwoModelPlugin()))


def _form(qtbot, session):
    form = ParamForm(session.parameters())
    qtbot.addWidget(form)
    form.bind(session)
    return form


def test_form_edits_reach_the_session_and_session_changes_reach_the_form(qtbot, session):
    form = _form(qtbot, session)
    assert form.values()["size"] == (64, 48), "the first model's own defaults were shown"
    form.editor("steps").setValue(9)
    assert session.values["steps"] == 9 and "steps" in session.touched
    session.set_values({"prompt": "from the session", "cfg_scale": 3.5})
    assert form.values()["prompt"] == "from the session"
    assert form.values()["cfg_scale"] == pytest.approx(3.5)
    session.set_mode("img2img")
    assert form.is_shown("init_image") and form.mode == "img2img"


def test_model_hints_narrow_choices_and_fill_untouched_fields(qtbot, session):
    form = _form(qtbot, session)
    form.editor("steps").setValue(12)  # the user's: must survive the model's defaults
    job = session.submit(session.job_spec())
    messages: list[str] = []
    session.message.connect(lambda level, text: messages.append(text))
    session.handle(job, ModelLoaded(source="tiny", device="cpu", defaults={"steps": 30, "cfg_scale": 5.0},
                                    choices={"scheduler": ["DDIM", "Euler a"]}, modes=["img2img", "inpaint"]))
    assert session.model_modes == ["img2img", "inpaint"]
    assert any("does not support txt2img" in text for text in messages)
    assert any(text.startswith("Sampler 'Euler' does not suit this model") for text in messages)
    combo = form.editor("scheduler")
    assert [combo.itemText(i) for i in range(combo.count())] == ["DDIM", "Euler a"]
    assert session.values["scheduler"] == "DDIM" and form.values()["scheduler"] == "DDIM"
    assert session.values["steps"] == 12 and session.values["cfg_scale"] == 5.0
    assert form.values()["cfg_scale"] == pytest.approx(5.0)
    session.set_model("/opt/models/tiny-plain")  # a new model: the full list again
    assert combo.count() == 4
    session.cancel(job)
    job.wait(10)


def test_optional_numbers_read_auto_as_none(qtbot):
    params = [Param("tempo", ParamType.FLOAT, None, minimum=30, maximum=200, optional=True),
              Param("to_seed", ParamType.INT, None, minimum=0, maximum=100, optional=True)]
    form = ParamForm(params)
    qtbot.addWidget(form)
    assert form.values() == {"tempo": None, "to_seed": None}
    assert form.editor("tempo").text() == AUTO_TEXT
    form.set_values({"tempo": 90, "to_seed": 7})
    assert form.values() == {"tempo": 90.0, "to_seed": 7}
    form.set_values({"tempo": None})
    assert form.values()["tempo"] is None


def test_include_and_labels_pick_and_name_fields(qtbot, session):
    form = ParamForm(session.parameters(), include=["steps", "prompt"], labels={"steps": "Quality steps"})
    qtbot.addWidget(form)
    assert [p.name for p in form.params] == ["steps", "prompt"]
    assert form._rows["steps"].label.text() == "Quality steps"


def test_model_picker_shows_labels_and_sets_the_session_model(qtbot, session):
    picker = ModelPicker()
    qtbot.addWidget(picker)
    picker.bind(session)
    assert picker.combo.currentText() == "Tiny 64 (built in)", "a built-in model shows its label, not its path"
    assert picker.source() == "/opt/models/tiny-64"
    picker.combo.setCurrentIndex(1)
    assert session.model == "/opt/models/tiny-plain"
    picker.combo.setEditText("org/some-model")
    assert session.model == "org/some-model"
    assert not picker.hint.isHidden() and "downloads are off" in picker.hint.text()
    session.set_model("/opt/models/tiny-64")
    assert picker.combo.currentText() == "Tiny 64 (built in)" and picker.hint.isHidden()


def test_run_status_and_message_bar_follow_a_real_run(qtbot, session):
    status, bar = RunStatus(interrupt=True, cancel=True), MessageBar()
    for widget in (status, bar):
        qtbot.addWidget(widget)
    status.bind(session)
    bar.bind(session)
    session.plugin.gate.clear()  # hold the run between steps
    session.set_values({"steps": 5, "seed": 11})
    seen: list[tuple[object, object]] = []
    done = threading.Event()
    session.context.engine.subscribe(lambda j, e: (seen.append((j, e)),
                                                   done.set() if getattr(e, "state", None) and e.state.finished
                                                   else None))
    job = session.submit(session.job_spec())
    # queued or already loading (the worker may be quicker than this line); either way stoppable
    assert status.progress.format() != "Ready" and status.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: any(getattr(e, "step", 0) >= 1 for _, e in seen if type(e).__name__ == "Progress")
                    or job.state.value == "running", timeout=10000)
    session.plugin.gate.set()
    assert done.wait(10)
    for j, e in list(seen):
        session.handle(j, e)
    assert status.progress.format().startswith("Done in")
    assert status.info.text() == "Seed 11"
    assert not status.interrupt_button.isEnabled() and not status.cancel_button.isEnabled()
    session.message.emit("warning", "Something to say")
    assert bar.text() == "Something to say" and bar.kind == "warning"


def test_file_filters_and_custom_editors_are_the_panels_choice(qtbot):
    from studio.qt.widgets.param_editors import SampleSeedEditor

    params = [Param("continue_from", ParamType.FILE_PATH, None, optional=True),
              Param("seed", ParamType.SEED, 0)]
    seed = SampleSeedEditor()
    form = ParamForm(params, file_filters={"continue_from": "MIDI (*.mid *.midi)"}, custom={"seed": seed})
    qtbot.addWidget(form)
    assert form.editor("continue_from").file_filter == "MIDI (*.mid *.midi)"
    assert form.editor("seed") is seed and form.values()["seed"] == 0
    seed.new_button.click()
    assert form.values()["seed"] != 0, "a new sample was drawn"
