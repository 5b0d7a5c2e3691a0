"""The one way a panel's view-model is built: state, commands and change signals, no Qt.

A :class:`PanelSession` owns everything its panel shows: the plugin, the run mode, the model,
the form's values, the active job with its progress, the last preview and the results list.
Views bind to it (napari's evented models are the pattern): they call commands (``set_value``,
``set_model``, ``generate``, ``interrupt``) and redraw when a signal says something changed.
Nothing here knows how it is drawn, so the same session drives the GUI, the CLI and the tests.

Threading: engine events arrive on the engine's worker thread.  The GUI hands them over
through :class:`studio.qt.bridge.EngineBridge`, which calls :meth:`PanelSession.handle` on the
GUI thread; the CLI and headless tests call :meth:`handle` from a listener or directly.  A
session never touches a widget, so either is safe as long as one thread feeds it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from psygnal import Signal

from studio.core.context import StudioContext
from studio.core.jobs import Failed, Job, JobSpec, JobState, ModelLoaded, Saved, StateChanged
from studio.core.progress import ProgressClock
from studio.plugin_api import Kind, Log, ModelChoice, Param, ParamError, Plugin, Preview, Progress, Result


class PanelSession:
    """Base of every panel's session.  Subclasses add their own state and override the
    ``on_*`` hooks; the bookkeeping of jobs, progress and messages lives here once."""

    #: a state field changed; the argument is its name ("values", "mode", "model", "job",
    #: "progress", "preview", "hints", ...).  Views redraw the part bound to that name.
    changed = Signal(str)
    #: a sentence for the panel's message bar: (level, text); level is info | warning | error
    message = Signal(str, str)
    #: the results list (gallery, clip list, conversation list) changed
    results_changed = Signal()

    kind: Kind

    def __init__(self, context: StudioContext, plugin_id: str | None = None) -> None:
        self.context = context
        if plugin_id is None:
            default = context.registry.default(self.kind)
            plugin_id = default.id if default is not None else None
        self.plugin: Plugin | None = context.registry.get(plugin_id) if plugin_id else None
        #: the job the run status shows: the running one of this panel, else the newest queued
        self.active_job: Job | None = None
        self.last_job: Job | None = None
        #: every job of this panel that has not finished yet, by id (a panel may queue several)
        self.pending: dict[str, Job] = {}
        self.clock = ProgressClock()
        self.preview: Any = None  # the newest Preview event of the active job
        #: a short line about the active run ("Loading UNet…", "Stopping…"); changed("status")
        self.status = ""
        self.started_at: float | None = None  # time.monotonic() when the active run started loading
        self.elapsed = 0.0  # seconds the last finished run took
        #: seeds of the images/clips the active (else the last) run saved, in order
        self.seeds_used: list[int] = []
        self._reset_plugin_state()

    def _reset_plugin_state(self) -> None:
        """Mode, model, values and hints for the current plugin (at start and on set_plugin)."""
        self.mode: str | None = self.modes()[0] if self.modes() else None
        self.model: str = self._first_model()
        self.values: dict[str, Any] = {p.name: p.default for p in self.parameters()}
        #: names the user set (form edits, CLI flags, restores); model defaults never overwrite them
        self.touched: set[str] = set()
        #: names whose value came from the current model's defaults (undone when the model changes)
        self.model_supplied: set[str] = set()
        self.hints: dict[str, Any] = {}  # what the loaded model says suits it (ModelLoaded)
        self.choices: dict[str, list[Any]] = {}
        #: the run modes the loaded model supports (all of the plugin's until one has loaded)
        self.model_modes: list[str] = self.modes()
        #: parameters the loaded model ignores -> why (ModelLoaded.unsupported); the form hides them
        self.unsupported: dict[str, str] = {}
        #: what the last load of this panel's model cost (ModelLoaded.memory: peak RSS / VRAM ...)
        self.load_memory: dict[str, Any] = {}
        self.apply_model_defaults(self.model_defaults(self.model))

    # -- what the form shows -------------------------------------------------------------
    def parameters(self) -> list[Param]:
        return list(self.plugin.parameters()) if self.plugin else []

    def visible_parameters(self) -> list[Param]:
        """The parameters of the current mode (those a request carries)."""
        return [p for p in self.parameters() if not p.modes or self.mode in p.modes]

    def honoured(self, name: str) -> bool:
        """Whether the loaded model uses parameter ``name`` (the form hides the ones it does not;
        a value the user set for one is still sent, so the run can say it was ignored)."""
        return name not in self.unsupported

    def modes(self) -> list[str]:
        return list(self.plugin.modes()) if self.plugin else []

    def models(self) -> list[ModelChoice]:
        offered = list(self.plugin.models()) if self.plugin else []
        known = {m.source for m in offered}
        recent = self.context.settings.recent_models.get(self.plugin.id, []) if self.plugin else []
        return offered + [ModelChoice(source=s, label=Path(s).name or s) for s in recent if s not in known]

    def model_defaults(self, source: str) -> dict[str, Any]:
        """Values that suit ``source`` before it is loaded (from the plugin's ModelChoice)."""
        for choice in self.models():
            if choice.source == source:
                return dict(choice.defaults)
        return {}

    def _first_model(self) -> str:
        models = self.models()
        return models[0].source if models else ""

    @property
    def busy(self) -> bool:
        return self.active_job is not None and not self.active_job.state.finished

    # -- commands --------------------------------------------------------------------------
    def set_value(self, name: str, value: Any) -> None:
        self.set_values({name: value})

    def set_values(self, values: dict[str, Any]) -> None:
        """The user's values (form edits, CLI flags): they win over any model's defaults."""
        self.touched.update(values)
        self.model_supplied.difference_update(values)
        changed = {k: v for k, v in values.items() if self.values.get(k) != v}
        if changed:
            self.values.update(changed)
            self.changed.emit("values")

    def apply_model_defaults(self, defaults: dict[str, Any]) -> None:
        """Take a model's suggested values (its native size, ...) for what the user left alone."""
        names = {p.name for p in self.parameters()}
        fresh = {k: v for k, v in defaults.items() if k in names and k not in self.touched}
        self.model_supplied.update(fresh)
        fresh = {k: v for k, v in fresh.items() if self.values.get(k) != v}
        if fresh:
            self.values.update(fresh)
            self.changed.emit("values")

    def set_plugin(self, plugin_id: str) -> None:
        """Switch to another plugin of this kind: its own modes, models and default values."""
        if self.plugin is not None and self.plugin.id == plugin_id:
            return
        try:
            plugin = self.context.registry.get(plugin_id)
        except LookupError as exc:  # not installed, or it failed to load: the registry says which
            raise ParamError(str(exc)) from None
        if plugin.kind is not self.kind:
            raise ParamError(f"{plugin_id!r} is a {plugin.kind.value} plugin, not a {self.kind.value} one.")
        self.plugin = plugin
        self._reset_plugin_state()
        self.changed.emit("plugin")

    def set_mode(self, mode: str | None) -> None:
        if mode is not None and mode not in self.modes():
            raise ParamError(f"Unknown mode {mode!r}; this plugin has: {', '.join(self.modes()) or 'none'}.")
        if mode != self.mode:
            self.mode = mode
            self.changed.emit("mode")

    def set_model(self, source: str) -> None:
        source = source.strip()
        if source != self.model:
            self.model = source
            self._forget_loaded_model()
            # The old model's suggestions (its native size, ...) do not suit the new one.
            specs = {p.name: p for p in self.parameters()}
            restored = {n: specs[n].default for n in self.model_supplied if n in specs}
            self.model_supplied = set()
            self.values.update(restored)
            self.changed.emit("model")
            if restored:
                self.changed.emit("values")
            self.apply_model_defaults(self.model_defaults(source))

    def _forget_loaded_model(self) -> None:
        """What the last loaded model said about itself no longer holds (another model, other weights)."""
        self.hints, self.choices, self.model_modes = {}, {}, self.modes()
        self.unsupported, self.load_memory = {}, {}

    def request_values(self) -> dict[str, Any]:
        """The values the plugin sees for the current mode (fields of other modes left out).

        An optional parameter (empty = the model's own value) that neither the user nor the
        model's defaults set is sent empty: the form's start value (CFG 7, 20 steps) is only a
        placeholder, so the model uses its own and nothing the user did not set is reported as
        ignored."""
        params = {p.name: p for p in self.visible_parameters()}
        chosen = self.touched | self.model_supplied
        return {k: (None if params[k].optional and k not in chosen else v)
                for k, v in self.values.items() if k in params}

    def submit(self, spec: JobSpec) -> Job:
        """Queue ``spec`` as a job of this panel.  Raises ParamError for bad input.

        It becomes the active job at once when none runs; otherwise when it starts."""
        job = self.context.engine.submit(spec)
        self.pending[job.id] = job
        self.last_job = job
        if self.active_job is None:
            self._activate(job)
        self.changed.emit("job")
        return job

    def adopt(self, job: Job) -> None:
        """Treat ``job``, queued elsewhere (a re-run after a crash), as one of this panel's."""
        if not job.state.finished and job.id not in self.pending:
            self.pending[job.id] = job
            self.last_job = job
            if self.active_job is None:
                self._activate(job)
            self.changed.emit("job")

    def _activate(self, job: Job) -> None:
        self.active_job = job
        self.clock.reset()
        self.preview = None
        self.status = ""
        self.seeds_used = []
        self.started_at = time.monotonic()

    def job_spec(self, **overrides: Any) -> JobSpec:
        """The job the current values describe (the one request-building path)."""
        if self.plugin is None:
            raise ParamError(f"No {self.kind.value} plugin is available; see the Plugins list for why.")
        fields: dict[str, Any] = dict(plugin_id=self.plugin.id, model=self.model, mode=self.mode,
                                      request=self.request_values(), options=self.context.load_options())
        fields.update(overrides)
        return JobSpec(**fields)

    def interrupt(self) -> None:
        """Stop the active job and keep what it made so far."""
        if self.active_job is not None:
            self.context.engine.interrupt(self.active_job.id)
            self.status = "Stopping… (keeping the partial result)"
            self.changed.emit("status")

    def cancel(self, job: Job | None = None) -> None:
        """Stop ``job`` (default: the active one) and drop it; a queued one leaves the queue."""
        job = job or self.active_job
        if job is not None:
            self.context.engine.cancel(job.id)
            if job is self.active_job:
                self.status = "Cancelling…"
                self.changed.emit("status")

    # -- engine events (one thread at a time; the GUI thread in the app) --------------------
    def owns(self, job: Job) -> bool:
        """Whether ``job`` is one of this panel's (the engine serves every panel)."""
        return job.id in self.pending

    def handle(self, job: Job, event: object) -> None:
        """One engine event, on the thread that feeds this session (the GUI thread in the app)."""
        if not self.owns(job):
            return
        if isinstance(event, Progress):
            if job is self.active_job:
                self.clock.update(event.step, event.total)
                if not job.cancel_token.is_set:  # keep "Stopping…" until it has stopped
                    self.status = event.message
                self.changed.emit("progress")
        elif isinstance(event, Preview):
            if job is self.active_job:
                self.preview = event
                self.on_preview(job, event)
        elif isinstance(event, ModelLoaded):
            self._model_loaded(event)
        elif isinstance(event, Log):
            if event.level == "warning":
                self.message.emit("warning", event.message)
            elif job is self.active_job:  # loading chatter belongs in the run status, not a message
                self.status = event.message
                self.changed.emit("status")
        elif isinstance(event, Saved):
            if event.artifact.seed is not None:
                self.seeds_used.append(event.artifact.seed)
                self.changed.emit("seeds")
            self.on_saved(job, event)
        elif isinstance(event, Result):
            self.on_result(job, event)
        elif isinstance(event, Failed):
            self.on_failed(job, event)
        elif isinstance(event, StateChanged):
            self._state_changed(job, event.state)
        else:
            self.on_other(job, event)

    def _state_changed(self, job: Job, state: JobState) -> None:
        if state in (JobState.LOADING, JobState.RUNNING) and job is not self.active_job:
            self._activate(job)
        elif state is JobState.LOADING:  # it waited in the queue since submit: time the run itself
            self.started_at = time.monotonic()
            self.clock.reset()
        if state.finished:
            self.pending.pop(job.id, None)
            if job is self.active_job:
                self.elapsed = time.monotonic() - (self.started_at or time.monotonic())
                self.status = ""
            self.on_finished(job, state)
            if job is self.active_job:
                waiting = [j for j in self.pending.values() if j.state is not JobState.QUEUED]
                self.active_job = None
                if waiting:
                    self._activate(waiting[0])
        self.changed.emit("job")

    def _model_loaded(self, event: ModelLoaded) -> None:
        self.hints, self.choices = dict(event.defaults), {k: list(v) for k, v in event.choices.items()}
        self.model_modes = [m for m in event.modes if m in self.modes()] or self.modes()
        self.unsupported, self.load_memory = dict(event.unsupported), dict(event.memory)
        if self.mode is not None and self.mode not in self.model_modes:
            self.message.emit("warning", f"This model does not support {self.mode}; it supports "
                                         f"{', '.join(self.model_modes)}.")
        self.apply_model_defaults(self.hints)
        specs = {p.name: p for p in self.parameters()}
        for name, offered in self.choices.items():
            current = self.values.get(name)
            if offered and name in specs and current is not None and current not in offered:
                self.values[name] = offered[0]
                self.message.emit("info", f"{specs[name].label} {current!r} does not suit this model; "
                                          f"using {offered[0]!r}.")
                self.changed.emit("values")
        self.changed.emit("hints")

    # -- hooks for subclasses ------------------------------------------------------------------
    def on_preview(self, job: Job, event: Preview) -> None:
        self.changed.emit("preview")

    def on_saved(self, job: Job, event: Saved) -> None:
        self.results_changed.emit()

    def on_result(self, job: Job, event: Result) -> None:
        """The run's last event (before its files are announced as ``Saved``)."""

    def on_failed(self, job: Job, event: Failed) -> None:
        self.message.emit("error", event.message)

    def on_finished(self, job: Job, state: JobState) -> None:
        """The job ended: done, interrupted, cancelled or failed."""

    def on_other(self, job: Job, event: object) -> None:
        """Events this base does not know (Partial text, audio previews ...)."""
