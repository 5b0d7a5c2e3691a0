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
        plugins = context.registry.plugins(self.kind)
        if plugin_id is None and plugins:
            plugin_id = plugins[0].id
        self.plugin: Plugin | None = context.registry.get(plugin_id) if plugin_id else None
        self.mode: str | None = self.modes()[0] if self.modes() else None
        self.model: str = self._first_model()
        self.values: dict[str, Any] = {p.name: p.default for p in self.parameters()}
        self.active_job: Job | None = None
        self.last_job: Job | None = None
        self.clock = ProgressClock()
        self.preview: Any = None  # the newest Preview event of the active job
        self.hints: dict[str, Any] = {}  # what the loaded model says suits it (ModelLoaded)
        self.choices: dict[str, list[Any]] = {}

    # -- what the form shows -------------------------------------------------------------
    def parameters(self) -> list[Param]:
        return list(self.plugin.parameters()) if self.plugin else []

    def visible_parameters(self) -> list[Param]:
        return [p for p in self.parameters() if not p.modes or self.mode in p.modes]

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
        if self.values.get(name) != value:
            self.values[name] = value
            self.changed.emit("values")

    def set_values(self, values: dict[str, Any]) -> None:
        changed = {k: v for k, v in values.items() if self.values.get(k) != v}
        if changed:
            self.values.update(changed)
            self.changed.emit("values")

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
            self.hints, self.choices = {}, {}
            self.changed.emit("model")

    def request_values(self) -> dict[str, Any]:
        """The values the plugin sees for the current mode (hidden fields left out)."""
        names = {p.name for p in self.visible_parameters()}
        return {k: v for k, v in self.values.items() if k in names}

    def submit(self, spec: JobSpec) -> Job:
        """Queue ``spec`` as this panel's active job.  Raises ParamError for bad input."""
        job = self.context.engine.submit(spec)
        self.active_job = self.last_job = job
        self.clock.reset()
        self.preview = None
        self.changed.emit("job")
        return job

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

    def cancel(self) -> None:
        """Stop the active job and drop it."""
        if self.active_job is not None:
            self.context.engine.cancel(self.active_job.id)

    # -- engine events (one thread at a time; the GUI thread in the app) --------------------
    def owns(self, job: Job) -> bool:
        """Whether ``job`` is one of this panel's (the engine serves every panel)."""
        return job is self.active_job

    def handle(self, job: Job, event: object) -> None:
        if not self.owns(job):
            return
        if isinstance(event, Progress):
            self.clock.update(event.step, event.total)
            self.changed.emit("progress")
        elif isinstance(event, Preview):
            self.preview = event
            self.on_preview(job, event)
        elif isinstance(event, ModelLoaded):
            self.hints, self.choices = dict(event.defaults), dict(event.choices)
            self.changed.emit("hints")
        elif isinstance(event, Log):
            self.message.emit("warning" if event.level == "warning" else "info", event.message)
        elif isinstance(event, Saved):
            self.on_saved(job, event)
        elif isinstance(event, Result):
            self.on_result(job, event)
        elif isinstance(event, Failed):
            self.message.emit("error", event.message)
        elif isinstance(event, StateChanged):
            if event.state.finished:
                self.on_finished(job, event.state)
                if job is self.active_job:
                    self.active_job = None
            self.changed.emit("job")
        else:
            self.on_other(job, event)

    # -- hooks for subclasses ------------------------------------------------------------------
    def on_preview(self, job: Job, event: Preview) -> None:
        self.changed.emit("preview")

    def on_saved(self, job: Job, event: Saved) -> None:
        self.results_changed.emit()

    def on_result(self, job: Job, event: Result) -> None:
        """The run's last event (before its files are announced as ``Saved``)."""

    def on_finished(self, job: Job, state: JobState) -> None:
        """The job ended: done, interrupted, cancelled or failed."""

    def on_other(self, job: Job, event: object) -> None:
        """Events this base does not know (Partial text, audio previews ...)."""
