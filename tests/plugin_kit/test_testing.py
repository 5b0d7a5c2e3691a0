"""The plugin-author test kit finds what breaks the contract (and passes what keeps it)."""

from __future__ import annotations

import pytest

from studio.plugin_api import API_VERSION, Artifact, Kind, ModelChoice, Param, ParamType, Progress, Result
from studio.plugin_kit.testing import PluginContractError, check_plugin


class Model:
    source, device, memory_bytes = "m", "cpu", 0
    defaults = {"steps": 3}
    choices: dict = {}
    modes = ("fast",)

    def run(self, request, cancel):
        yield Progress(1, 1)
        yield Result((Artifact(Kind.TEXT, text=str(request["steps"])),))

    def unload(self):
        self.unloaded = True


class Good:
    id, label, kind, api_version = "good", "Good", Kind.TEXT, API_VERSION

    def parameters(self):
        return [Param("steps", ParamType.INT, 2, minimum=1, maximum=9), Param("clip", ParamType.FILE_PATH,
                                                                               optional=True)]

    def modes(self):
        return ["fast"]

    def models(self):
        return [ModelChoice("builtin", "Built in", defaults={"steps": 4})]

    def load(self, source, options, progress):
        progress("loading")
        return Model()

    def understand_prompt(self, prompt):
        return {"steps": 5} if "five" in prompt else {}

    def describe_understood(self, values):
        return ", ".join(f"{k} {v}" for k, v in values.items())


def test_a_good_plugin_passes_and_runs_once():
    report = check_plugin(Good(), source="builtin", mode="fast", request={"steps": 7})
    assert report.capabilities == ["UnderstandsPrompts"] and report.model_capabilities == ["ModelHints"]
    assert report.load_messages == ["loading"] and report.result.artifacts[0].text == "7"


class Bad(Good):
    id, api_version = "Bad Plugin", "2.0"

    def parameters(self):
        return [Param("mode", ParamType.CHOICE, "x", choices=("a", "b")),
                Param("steps", ParamType.INT, 50, minimum=1, maximum=9, modes=("slow",)),
                Param("steps", ParamType.INT, 2)]

    def models(self):
        return [ModelChoice("builtin", "Built in", defaults={"nope": 1})]

    def understand_prompt(self):  # wrong signature: the protocol passes the prompt
        return {}

    midi_parameter = "steps"  # claims ContinuesMidi, but names an INT


def test_every_problem_is_reported_at_once():
    with pytest.raises(PluginContractError) as caught:
        check_plugin(Bad())
    text = "\n".join(caught.value.problems)
    for words in ("lowercase", "plugin API 2.x", "'mode' is a reserved request key", "default does not validate",
                  "declared twice", "modes ['slow']", "unknown parameters ['nope']", "understand_prompt cannot be "
                  "called", "midi_parameter 'steps' must name a FILE_PATH"):
        assert words in text, words


class BadModel(Model):
    modes = ("slow",)

    def run(self, request, cancel):
        yield "not an event"


class BadRun(Good):
    def load(self, source, options, progress):
        return BadModel()


def test_a_bad_model_and_run_are_found_and_the_model_is_unloaded():
    with pytest.raises(PluginContractError) as caught:
        check_plugin(BadRun(), source="builtin", mode="fast", request={})
    text = "\n".join(caught.value.problems)
    assert "ModelHints: modes ['slow']" in text and "not events: ['str']" in text and "exactly one Result" in text


def test_not_a_plugin_at_all():
    with pytest.raises(PluginContractError, match="missing .*load"):
        check_plugin(object())
