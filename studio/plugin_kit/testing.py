"""The plugin-author test kit: one call checks a plugin against the contract.

Use it in your plugin's tests (pytest or anything else)::

    from studio.plugin_kit.testing import check_plugin

    def test_contract():
        check_plugin(MyPlugin())                      # declarations only: fast, no model load

    def test_one_run(tmp_path):
        report = check_plugin(MyPlugin(), source=str(tiny_model_folder),
                              request={"prompt": "hello", "steps": 2})
        assert report.result.artifacts

It checks, and reports *every* problem at once in a :class:`PluginContractError`:

* the plugin: ``id`` / ``label`` / ``kind`` / ``api_version`` (compatible with this studio's
  :data:`~studio.plugin_api.API_VERSION`), the :class:`~studio.plugin_api.Plugin` protocol;
* its :class:`~studio.plugin_api.Param` specs: unique names, no reserved request key
  (``mode``), defaults that validate, choices / ranges / modes that make sense;
* its modes and :class:`~studio.plugin_api.ModelChoice` offers;
* every capability protocol it claims (``isinstance``): the members' call signatures, and a
  call with harmless input where that is cheap (``understand_prompt``, ``from_a1111``);
* with ``source``: the loaded model (:class:`~studio.plugin_api.LoadedModel`, and
  :class:`~studio.plugin_api.ModelHints`, :class:`~studio.plugin_api.CountsTokens`,
  :class:`~studio.plugin_api.RendersChat` when claimed), and with ``request`` one run: the
  request is validated as the engine would, events are the API's types, the last is a
  :class:`~studio.plugin_api.Result`; the model is unloaded afterwards.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from studio.plugin_api import (
    CancelToken,
    ContinuesMidi,
    CountsTokens,
    Kind,
    LoadedModel,
    LoadOptions,
    Log,
    MapsA1111,
    ModelChoice,
    ModelHints,
    Param,
    ParamError,
    ParamType,
    Partial,
    Plugin,
    Preview,
    Prewarms,
    Progress,
    RendersChat,
    Result,
    UnderstandsPrompts,
    api_compatible,
    validate_request,
)

#: request keys the engine sets itself: a parameter may not be named like one
RESERVED_KEYS = ("mode",)
PLUGIN_CAPABILITIES: tuple[type, ...] = (Prewarms, UnderstandsPrompts, MapsA1111, ContinuesMidi)
MODEL_CAPABILITIES: tuple[type, ...] = (ModelHints, CountsTokens, RendersChat)
EVENT_TYPES = (Progress, Preview, Partial, Log, Result)


class PluginContractError(AssertionError):
    """The plugin breaks the contract; ``problems`` lists every finding, one sentence each."""

    def __init__(self, plugin_id: str, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__(f"plugin {plugin_id!r} breaks the contract:\n- " + "\n- ".join(self.problems))


@dataclass
class PluginReport:
    """What :func:`check_plugin` saw (when it found no problem)."""

    plugin_id: str
    capabilities: list[str] = field(default_factory=list)
    model_capabilities: list[str] = field(default_factory=list)
    load_messages: list[str] = field(default_factory=list)
    events: list[object] = field(default_factory=list)
    result: Result | None = None


def check_plugin(plugin: object, *, source: str | None = None, request: Mapping[str, Any] | None = None,
                 mode: str | None = None, options: LoadOptions | None = None) -> PluginReport:
    """Check ``plugin`` (and, with ``source``, a model it loads; with ``request``, one run)."""
    problems: list[str] = []
    plugin_id = str(getattr(plugin, "id", "?"))
    report = PluginReport(plugin_id)
    _check_declarations(plugin, problems)
    if isinstance(plugin, Plugin):
        params = _safe(problems, "parameters()", lambda: list(plugin.parameters())) or []
        modes = _safe(problems, "modes()", lambda: list(plugin.modes())) or []
        _check_params(params, modes, problems)
        _check_modes(modes, problems)
        _check_models(plugin, params, problems)
        report.capabilities = _check_plugin_capabilities(plugin, params, problems)
        if source is not None and not problems:
            _check_model(plugin, params, modes, source, request, mode, options or LoadOptions(device="cpu"),
                         report, problems)
    if problems:
        raise PluginContractError(plugin_id, problems)
    return report


# --------------------------------------------------------------------------- declarations


def _safe(problems: list[str], what: str, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - a third-party plugin may raise anything; that is the finding
        problems.append(f"{what} raised {type(exc).__name__}: {exc}")
        return None


def _check_declarations(plugin: object, problems: list[str]) -> None:
    plugin_id = getattr(plugin, "id", None)
    if not isinstance(plugin_id, str) or not plugin_id or plugin_id != plugin_id.lower() or " " in plugin_id:
        problems.append(f"id must be a non-empty lowercase string without spaces (got {plugin_id!r})")
    if not isinstance(getattr(plugin, "label", None), str) or not getattr(plugin, "label", ""):
        problems.append("label must be a non-empty string")
    if not isinstance(getattr(plugin, "kind", None), Kind):
        problems.append(f"kind must be a studio.plugin_api.Kind (got {getattr(plugin, 'kind', None)!r})")
    reason = api_compatible(getattr(plugin, "api_version", None))
    if reason:
        problems.append(f"api_version: {reason}")
    if not isinstance(plugin, Plugin):
        missing = [name for name in ("id", "label", "kind", "api_version", "parameters", "modes", "models", "load")
                   if not hasattr(plugin, name)]
        problems.append(f"not a studio.plugin_api.Plugin: missing {', '.join(missing)}")


def _check_params(params: Sequence[object], modes: Sequence[str], problems: list[str]) -> None:
    seen: set[str] = set()
    for p in params:
        if not isinstance(p, Param):
            problems.append(f"parameters() must return Param specs (got {type(p).__name__})")
            continue
        where = f"parameter {p.name!r}"
        if p.name in seen:
            problems.append(f"{where} is declared twice")
        seen.add(p.name)
        if not p.name.isidentifier():
            problems.append(f"{where}: the name must be an identifier")
        if p.name in RESERVED_KEYS:
            problems.append(f"{where}: {p.name!r} is a reserved request key (the engine sets it); rename it")
        declared: object = p.type  # a third-party plugin may put anything here
        if not isinstance(declared, ParamType):
            problems.append(f"{where}: type must be a ParamType")
            continue
        if p.type is ParamType.CHOICE and not p.choices:
            problems.append(f"{where}: a CHOICE needs choices")
        if p.minimum is not None and p.maximum is not None and p.minimum > p.maximum:
            problems.append(f"{where}: minimum {p.minimum} is above maximum {p.maximum}")
        unknown_modes = [m for m in p.modes if m not in modes]
        if unknown_modes:
            problems.append(f"{where}: modes {unknown_modes} are not among the plugin's modes {list(modes)}")
        if p.default is not None:
            try:
                p.validate(p.default)
            except ParamError as exc:
                problems.append(f"{where}: its default does not validate: {exc}")


def _check_modes(modes: Sequence[object], problems: list[str]) -> None:
    if any(not isinstance(m, str) or not m for m in modes):
        problems.append(f"modes() must return non-empty strings (got {list(modes)!r})")
    if len(set(modes)) != len(modes):
        problems.append(f"modes() lists a mode twice: {list(modes)!r}")


def _check_models(plugin: Plugin, params: Sequence[Param], problems: list[str]) -> None:
    models = _safe(problems, "models()", lambda: list(plugin.models())) or []
    names = {p.name for p in params}
    for choice in models:
        if not isinstance(choice, ModelChoice):
            problems.append(f"models() must return ModelChoice (got {type(choice).__name__})")
            continue
        if not choice.source or not choice.label:
            problems.append(f"model {choice!r}: source and label must not be empty")
        unknown = sorted(set(choice.defaults) - names)
        if unknown:
            problems.append(f"model {choice.label!r}: defaults for unknown parameters {unknown}")


# --------------------------------------------------------------------------- capabilities


def _signature_problem(obj: object, name: str, args: tuple[Any, ...]) -> str | None:
    member = getattr(obj, name, None)
    if not callable(member):
        return f"{name} must be callable"
    try:
        inspect.signature(member).bind(*args)
    except TypeError as exc:
        return f"{name} cannot be called with {len(args)} argument(s) as the protocol does: {exc}"
    except ValueError:  # no signature to read (a builtin): nothing to check
        return None
    return None


def _check_plugin_capabilities(plugin: Plugin, params: Sequence[Param], problems: list[str]) -> list[str]:
    found = [cap.__name__ for cap in PLUGIN_CAPABILITIES if isinstance(plugin, cap)]
    names = {p.name: p for p in params}
    if isinstance(plugin, Prewarms):
        _add(problems, "Prewarms", _signature_problem(plugin, "prewarm", ()))
    if isinstance(plugin, UnderstandsPrompts):
        _add(problems, "UnderstandsPrompts", _signature_problem(plugin, "understand_prompt", ("",)))
        _add(problems, "UnderstandsPrompts", _signature_problem(plugin, "describe_understood", ({},)))
        values = _safe(problems, "understand_prompt('')", lambda: plugin.understand_prompt(""))
        if values is not None and not isinstance(values, Mapping):
            problems.append("UnderstandsPrompts: understand_prompt must return a mapping")
        elif values:
            unknown = sorted(set(values) - set(names))
            if unknown:
                problems.append(f"UnderstandsPrompts: understand_prompt gave unknown parameters {unknown}")
        summary = _safe(problems, "describe_understood({})", lambda: plugin.describe_understood({}))
        if summary is not None and not isinstance(summary, str):
            problems.append("UnderstandsPrompts: describe_understood must return a string")
    if isinstance(plugin, MapsA1111):
        _add(problems, "MapsA1111", _signature_problem(plugin, "from_a1111", ({},)))
        mapped = _safe(problems, "from_a1111({})", lambda: plugin.from_a1111({"not_an_a1111_key": 1}))
        if mapped is not None:
            if not (isinstance(mapped, tuple) and len(mapped) == 2 and isinstance(mapped[0], dict)
                    and isinstance(mapped[1], list)):
                problems.append("MapsA1111: from_a1111 must return (dict of values, list of ignored fields)")
            elif "not_an_a1111_key" not in " ".join(map(str, mapped[1])):
                problems.append("MapsA1111: a field with no place must be listed as ignored")
    if isinstance(plugin, ContinuesMidi):
        target = names.get(str(plugin.midi_parameter))
        if target is None or target.type is not ParamType.FILE_PATH:
            problems.append(f"ContinuesMidi: midi_parameter {plugin.midi_parameter!r} must name a FILE_PATH "
                            f"parameter of the plugin")
    return found


def _add(problems: list[str], capability: str, problem: str | None) -> None:
    if problem:
        problems.append(f"{capability}: {problem}")


# --------------------------------------------------------------------------- a loaded model, one run


def _check_model(plugin: Plugin, params: Sequence[Param], modes: Sequence[str], source: str,
                 request: Mapping[str, Any] | None, mode: str | None, options: LoadOptions,
                 report: PluginReport, problems: list[str]) -> None:
    model = _safe(problems, f"load({source!r})", lambda: plugin.load(source, options, report.load_messages.append))
    if model is None:
        return
    try:
        if not isinstance(model, LoadedModel):
            problems.append("load() must return a studio.plugin_api.LoadedModel (source, device, memory_bytes, "
                            "run, unload)")
            return
        report.model_capabilities = [cap.__name__ for cap in MODEL_CAPABILITIES if isinstance(model, cap)]
        _check_hints(model, params, modes, problems)
        if isinstance(model, CountsTokens):
            count = _safe(problems, "count_tokens('Hello')", lambda: model.count_tokens("Hello"))
            if not isinstance(count, int) or count < 0 or not isinstance(model.context_length, int) \
                    or model.context_length <= 0:
                problems.append("CountsTokens: count_tokens must return an int >= 0 and context_length an int > 0")
        if isinstance(model, RendersChat):
            text = _safe(problems, "render_chat(...)",
                         lambda: model.render_chat([{"role": "user", "content": "Hello"}], False))
            if not isinstance(text, str) or "Hello" not in text:
                problems.append("RendersChat: render_chat must return the prompt text, holding the messages")
        if request is not None:
            _check_run(plugin, model, params, request, mode, report, problems)
    finally:
        _safe(problems, "unload()", model.unload)


def _check_hints(model: object, params: Sequence[Param], modes: Sequence[str], problems: list[str]) -> None:
    if not isinstance(model, ModelHints):
        return
    names = {p.name for p in params}
    unknown = sorted((set(model.defaults) | set(model.choices)) - names)
    if unknown:
        problems.append(f"ModelHints: defaults / choices for unknown parameters {unknown}")
    extra = [m for m in model.modes if m not in modes]
    if extra:
        problems.append(f"ModelHints: modes {extra} are not among the plugin's modes {list(modes)}")


def _check_run(plugin: Plugin, model: LoadedModel, params: Sequence[Param], request: Mapping[str, Any],
               mode: str | None, report: PluginReport, problems: list[str]) -> None:
    try:
        clean = validate_request(params, request, mode)
    except ParamError as exc:
        problems.append(f"the test request does not validate: {exc}")
        return
    events = _safe(problems, "run()", lambda: list(model.run(clean, CancelToken())))
    if events is None:
        return
    report.events = events
    strangers = sorted({type(e).__name__ for e in events if not isinstance(e, EVENT_TYPES)})
    if strangers:
        problems.append(f"run() yielded objects that are not events: {strangers}")
    results = [e for e in events if isinstance(e, Result)]
    if not events or not isinstance(events[-1], Result) or len(results) != 1:
        problems.append("run() must end with exactly one Result, as its last event")
        return
    report.result = results[0]
    for event in events:
        if isinstance(event, Progress) and event.total and not 0 <= event.step <= event.total:
            problems.append(f"Progress({event.step}, {event.total}) is out of range")
            break
    for artifact in report.result.artifacts:
        kind: object = artifact.kind  # a third-party plugin may put anything here
        if not isinstance(kind, Kind):
            problems.append("every Artifact needs a Kind")


__all__ = ["check_plugin", "PluginReport", "PluginContractError", "RESERVED_KEYS"]
