"""The job engine: one queue and one worker thread for all heavy work ("one GPU lane").

Panels, the CLI and tests all go through :class:`Engine`.  ``submit`` validates at the
boundary (a bad request raises :class:`ParamError` at once and never reaches the queue);
everything after that reaches listeners as events, on the worker thread.  Results are
written to disk and indexed before the ``Saved`` event announces them.

Besides runs and loads, two small *utility* jobs keep every touch of a loaded model on the
worker thread: :meth:`Engine.call` runs a short function against a model that is already
loaded (count tokens, render a chat template) and answers with an :class:`Answered` event,
and :meth:`Engine.unload` frees a model (:class:`Unloaded`).  They share the one lane (a call
waits for the running job), are not written to the history (nothing to offer again after a
crash), and a call is interactive: it goes ahead of queued runs, and a newer call with the
same ``lane_key`` replaces a queued older one.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from studio.core.errors import describe
from studio.core.history import History, JobRecord
from studio.core.hub_offline import hub_offline
from studio.core.logs import adopt_console_handlers, with_log_hint
from studio.core.native_memory import reuse_freed_memory_on_threads
from studio.core.registry import Registry
from studio.core.residency import Residency
from studio.core.resume import remaining_request
from studio.core.runner import drive
from studio.core.store import OutputStore
from studio.plugin_api import (
    Artifact,
    ArtifactReady,
    Cancelled,
    CancelToken,
    Kind,
    LoadedModel,
    LoadOptions,
    Log,
    ModelHints,
    ParamError,
    Plugin,
    Prewarms,
    ReportsLoadMemory,
    ReportsUnsupported,
    Result,
    validate_request,
)
from studio.plugin_kit.warmup import paused_gc, responsive_gil

log = logging.getLogger(__name__)


class JobState(str, Enum):
    QUEUED = "queued"
    LOADING = "loading"
    RUNNING = "running"
    DONE = "done"
    INTERRUPTED = "interrupted"  # stopped early; the partial result was kept
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.INTERRUPTED, JobState.CANCELLED, JobState.FAILED)


@dataclass(frozen=True)
class JobSpec:
    plugin_id: str
    model: str
    request: dict[str, Any] = field(default_factory=dict)
    mode: str | None = None
    options: LoadOptions = LoadOptions()
    save: bool = True  # write artifacts to the output store
    #: run | load (load the model only) | call (run ``call`` on the loaded model, see
    #: Engine.call) | unload (free every loaded copy of ``model``, see Engine.unload)
    action: str = "run"
    # Interactive work (a slider preview) goes ahead of queued jobs; it still waits for the
    # running one, since there is one lane.  A newer interactive job from the same ``lane_key``
    # replaces a queued older one: only the newest slider value matters.
    interactive: bool = False
    lane_key: str = ""
    #: action "call": the function run on the worker thread against the loaded model
    call: Callable[[LoadedModel], Any] | None = None
    #: a short description for queue views ("count tokens"); utility jobs only
    label: str = ""

    @property
    def utility(self) -> bool:
        """A call or unload: short bookkeeping on a model, not a generation (kept out of the history)."""
        return self.action in ("call", "unload")
    # Files the user named (``--out picture.png``): the i-th saved artifact is written exactly
    # there (never replacing a file); artifacts beyond these get the store's numbered names.
    targets: tuple[str, ...] = ()


# Engine events (besides the plugin's own Progress/Preview/Partial/Log/Result) -----------


@dataclass(frozen=True)
class StateChanged:
    state: JobState
    message: str = ""


@dataclass(frozen=True)
class Saved:
    artifact: Artifact
    path: Path
    output_id: int


@dataclass(frozen=True)
class ModelLoaded:
    """The job's model is loaded (or was already): what views show about it, as plain data."""

    source: str
    device: str
    defaults: dict[str, Any] = field(default_factory=dict)
    choices: dict[str, list[Any]] = field(default_factory=dict)
    modes: list[str] = field(default_factory=list)  # the run modes this model supports
    unsupported: dict[str, str] = field(default_factory=dict)  # parameter -> why it has no effect here
    memory: dict[str, Any] = field(default_factory=dict)  # what the load cost (ReportsLoadMemory)

    @classmethod
    def of(cls, plugin: Plugin, source: str, model: LoadedModel) -> ModelLoaded:
        """What ``model`` says about itself (:class:`ModelHints`); a model without hints
        supports every mode of its plugin.  API 1.0 documented ``defaults`` and ``choices``
        as optional attributes of a loaded model, so those are still read on their own."""
        hints: Any = model if isinstance(model, ModelHints) else None
        defaults = getattr(model, "defaults", None) if hints is None else hints.defaults
        choices = getattr(model, "choices", None) if hints is None else hints.choices
        modes = list(hints.modes) if hints is not None else list(plugin.modes())
        return cls(source=source, device=str(getattr(model, "device", "") or ""), defaults=dict(defaults or {}),
                   choices={k: list(v) for k, v in dict(choices or {}).items()}, modes=modes,
                   unsupported=dict(model.unsupported) if isinstance(model, ReportsUnsupported) else {},
                   memory=dict(model.load_memory) if isinstance(model, ReportsLoadMemory) else {})


@dataclass(frozen=True)
class Answered:
    """A call job's answer.  ``loaded`` is False when the model was not loaded, in which case
    nothing ran and ``value`` is None (a call never loads a model)."""

    value: Any
    loaded: bool = True


@dataclass(frozen=True)
class Unloaded:
    """An unload job freed ``count`` loaded copies of ``source`` (0: it was not loaded)."""

    source: str
    count: int


@dataclass(frozen=True)
class Failed:
    message: str  # one sentence for the user
    stage: str  # validate | load | run | call
    detail: str = ""  # traceback, for the log


@dataclass
class Job:
    id: str
    number: int
    spec: JobSpec
    kind: Kind
    request: dict[str, Any]
    state: JobState = JobState.QUEUED
    message: str = ""
    created: float = field(default_factory=time.time)
    cancel_token: CancelToken = field(default_factory=CancelToken)
    saved: list[Path] = field(default_factory=list)
    saved_ids: set[int] = field(default_factory=set)  # id() of artifacts already written
    result: Result | None = None
    answer: Any = None  # a call job's value (also sent as an Answered event)
    failure: Failed | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)


Listener = Callable[[Job, object], None]


class Engine:
    def __init__(self, registry: Registry, store: OutputStore, history: History,
                 residency: Residency | None = None):
        self.registry = registry
        self.store = store
        self.history = history
        self.residency = residency or Residency(budget_bytes=6 * 2**30)
        self._queue: deque[Job] = deque()
        self._current: Job | None = None
        self._listeners: list[Listener] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._warming = False
        self._numbers = itertools.count(1)
        self._to_warm: deque[str] = deque()  # plugin ids whose libraries to import when idle
        self._warmed: set[str] = set()
        self._thread = threading.Thread(target=self._work, name="studio-engine", daemon=True)
        self._thread.start()

    # -- listeners ----------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """``listener(job, event)`` is called on the worker thread (or the submitting thread
        for the first QUEUED event).  Returns an unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _emit(self, job: Job, event: object) -> None:
        for listener in list(self._listeners):
            try:
                listener(job, event)
            except Exception:  # a broken view must not stop the engine
                log.exception("listener failed on %s", type(event).__name__)

    # -- submitting and cancelling ----------------------------------------------------------
    def submit(self, spec: JobSpec) -> Job:
        """Validate and queue.  Raises ParamError / LookupError for bad input, at once."""
        try:
            plugin = self.registry.get(spec.plugin_id)
        except LookupError as exc:
            raise ParamError(str(exc)) from None
        if not spec.model:
            raise ParamError("Choose a model first.")
        if spec.action not in ("run", "load", "call", "unload"):
            raise ParamError(f"Unknown job action {spec.action!r}.")
        if spec.action == "call" and not callable(spec.call):
            raise ParamError("A call job needs a function to call.")
        modes = list(plugin.modes()) if hasattr(plugin, "modes") else []
        if spec.mode is not None and modes and spec.mode not in modes:
            raise ParamError(f"Mode must be one of: {', '.join(modes)} (got {spec.mode!r}).")
        request = {} if spec.action != "run" else validate_request(plugin.parameters(), spec.request, spec.mode)
        job = Job(id=uuid.uuid4().hex[:12], number=next(self._numbers), spec=spec, kind=plugin.kind,
                  request=request)
        if not spec.utility:  # bookkeeping jobs are not work to offer again after a crash
            self.history.add_job(job.id, spec.plugin_id, plugin.kind.value, spec.model,
                                 {"mode": spec.mode, "request": spec.request, "action": spec.action})
        superseded: list[Job] = []
        with self._cond:
            if spec.interactive:
                if spec.lane_key:
                    superseded = [j for j in self._queue if j.spec.interactive and j.spec.lane_key == spec.lane_key]
                    for old in superseded:
                        self._queue.remove(old)
                position = sum(1 for j in self._queue if j.spec.interactive)
                self._queue.insert(position, job)
            else:
                self._queue.append(job)
            self._cond.notify()
        for old in superseded:
            self._finish(old, JobState.CANCELLED, "Superseded by a newer request.")
        self._emit(job, StateChanged(JobState.QUEUED))
        return job

    def call(self, plugin_id: str, model: str, function: Callable[[LoadedModel], Any], *,
             lane_key: str = "", label: str = "") -> Job:
        """Run ``function(loaded_model)`` on the worker thread, if ``model`` is loaded for
        ``plugin_id`` (with any load options; a call never loads).  The answer arrives as an
        :class:`Answered` event and in ``job.answer`` once ``job.wait()`` returns; an exception
        in ``function`` is a ``Failed`` event (stage "call").  Interactive: it goes ahead of
        queued runs, and a newer call with the same ``lane_key`` supersedes a queued older one."""
        return self.submit(JobSpec(plugin_id=plugin_id, model=model, action="call", call=function,
                                   interactive=True, lane_key=lane_key, save=False, label=label))

    def unload(self, plugin_id: str, model: str) -> Job:
        """Free every loaded copy of ``model`` on the worker thread, in queue order (after the
        jobs already queued, which may still use it).  Ends with an :class:`Unloaded` event."""
        return self.submit(JobSpec(plugin_id=plugin_id, model=model, action="unload", save=False,
                                   label=f"unload {model}"))

    def cancel(self, job_id: str) -> bool:
        """Drop a queued job, or stop the running one without keeping anything."""
        return self._stop(job_id, keep_partial=False)

    def interrupt(self, job_id: str) -> bool:
        """Stop the running job and keep its partial result; drops a queued one."""
        return self._stop(job_id, keep_partial=True)

    def _stop(self, job_id: str, keep_partial: bool) -> bool:
        with self._cond:
            for job in self._queue:
                if job.id == job_id:
                    self._queue.remove(job)
                    break
            else:
                job = None
            current = self._current
        if job is not None:
            self._finish(job, JobState.CANCELLED, "Removed from the queue.")
            return True
        if current is not None and current.id == job_id:
            current.cancel_token.interrupt() if keep_partial else current.cancel_token.cancel()
            return True
        return False

    def prewarm(self, plugin_id: str) -> bool:
        """Import ``plugin_id``'s heavy libraries on the worker thread once it is idle, so that
        the first job does not wait for (or stall the GUI with) that import.

        Optional and best-effort: only plugins that are :class:`Prewarms` take part; jobs
        always go first (a job queued meanwhile waits for an import already under way, which
        cannot be interrupted); a failure is logged and forgotten, and the first load then
        imports as it always did.  Returns whether a prewarm was scheduled."""
        try:
            plugin = self.registry.get(plugin_id)
        except LookupError:
            return False
        if not isinstance(plugin, Prewarms):
            return False
        with self._cond:
            if self._stopping or plugin_id in self._warmed or plugin_id in self._to_warm:
                return False
            self._to_warm.append(plugin_id)
            self._cond.notify()
        return True

    @property
    def warming(self) -> bool:
        """Whether prewarms are still pending or under way."""
        with self._cond:
            return bool(self._to_warm) or self._warming

    def queued(self) -> list[Job]:
        with self._cond:
            return list(self._queue)

    @property
    def current(self) -> Job | None:
        return self._current

    @property
    def alive(self) -> bool:
        """Whether the worker thread is running (False after shutdown)."""
        return self._thread.is_alive()

    def shutdown(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            pending = list(self._queue)
            self._queue.clear()
            current = self._current
            self._cond.notify_all()
        # Queued jobs stay "queued" in the history on purpose: they are offered at next start.
        del pending
        if current is not None:
            current.cancel_token.cancel()
        self._thread.join(timeout)
        self.residency.unload_all() if not self._thread.is_alive() else None

    # -- the worker -----------------------------------------------------------------------
    def _work(self) -> None:
        # Every run is driven from this thread (plugins' blocking library calls from their
        # helper threads): keep freed tensors' memory instead of faulting it in again on every
        # step (process-wide; see native_memory).
        reuse_freed_memory_on_threads()
        while True:
            with self._cond:
                while not self._queue and not self._to_warm and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                if not self._queue:  # idle: prewarm
                    plugin_id = self._to_warm.popleft()
                    self._warming = True
                    job = None
                else:
                    job = self._queue.popleft()
                    self._current = job
            if job is None:
                try:
                    self._warm(plugin_id)
                finally:
                    with self._cond:
                        self._warming = False
                continue
            try:
                self._run(job)
            finally:
                with self._cond:
                    self._current = None

    def _warm(self, plugin_id: str) -> None:
        """Run the plugin's ``prewarm()`` once (worker thread only), with the GC paused; never raises."""
        with self._cond:
            if plugin_id in self._warmed:
                return
            self._warmed.add(plugin_id)
        started = time.perf_counter()
        try:
            plugin = self.registry.get(plugin_id)
            if not isinstance(plugin, Prewarms):
                return
            # Freeze the imported objects for good only while no model is loaded: a frozen model
            # could never be collected after its unload.
            with paused_gc(freeze=not self.residency.loaded()), responsive_gil():
                plugin.prewarm()
        except Exception:  # an optimisation only: the load imports as before
            log.warning("prewarming plugin %s failed; its first load imports as usual", plugin_id, exc_info=True)
            return
        finally:
            adopt_console_handlers()  # what the imports attached to the terminal goes to the log
        log.info("prewarmed plugin %s in %.2f s", plugin_id, time.perf_counter() - started)

    def _run(self, job: Job) -> None:
        # Downloads off means no connection at all, for the load and the run (a LoRA, a
        # tokenizer file fetched lazily...): the hub library's offline mode, set for this job.
        with hub_offline(not job.spec.options.allow_download):
            self._run_online_or_not(job)

    def _run_online_or_not(self, job: Job) -> None:
        spec = job.spec
        if spec.utility:
            self._utility(job)
            return
        plugin = self.registry.get(spec.plugin_id)
        self._set_state(job, JobState.LOADING, f"Loading {spec.model}")
        loading = not self.residency.has(plugin, spec.model, spec.options)
        if loading:
            # The first load imports the plugin's libraries: do it the low-stall way, once.
            self._warm(spec.plugin_id)
        try:
            with responsive_gil() if loading else nullcontext():  # a load runs much Python
                model = self.residency.get(plugin, spec.model, spec.options,
                                           lambda message: self._emit(job, Log(message)))
        except Exception as exc:  # noqa: BLE001 - a failed load is a Failed event with one sentence
            self._fail(job, exc, "load")
            return
        finally:
            if loading:
                adopt_console_handlers()  # libraries imported by the load may print on the terminal
        self._emit(job, ModelLoaded.of(plugin, spec.model, model))
        if spec.action == "load":
            self._finish(job, JobState.DONE, f"Loaded on {getattr(model, 'device', '?')}.")
            return
        if job.cancel_token.is_set:
            self._finish(job, JobState.CANCELLED, "Cancelled.")
            return
        self._set_state(job, JobState.RUNNING)
        try:
            for event in drive(model, job.request, job.cancel_token):
                if isinstance(event, ArtifactReady) and spec.save:
                    self._save(job, (event.artifact,))  # kept even if the run dies later
                elif isinstance(event, Result):
                    job.result = event
                    if spec.save:
                        self._save(job, event.artifacts)
                self._emit(job, event)
        except Cancelled:
            self._finish(job, JobState.CANCELLED, "Cancelled.")
            return
        except Exception as exc:  # noqa: BLE001 - a failed run is a Failed event with one sentence
            self._fail(job, exc, "run")
            return
        interrupted = bool(job.result and job.result.interrupted)
        self._finish(job, JobState.INTERRUPTED if interrupted else JobState.DONE,
                     "Interrupted; partial result kept." if interrupted else "")

    def _utility(self, job: Job) -> None:
        """A call or an unload (worker thread only, like every touch of a model)."""
        spec = job.spec
        self._set_state(job, JobState.RUNNING, spec.label)
        try:
            if spec.action == "unload":
                count = self.residency.unload_source(spec.plugin_id, spec.model)
                self._emit(job, Unloaded(spec.model, count))
                self._finish(job, JobState.DONE, "Unloaded." if count else "It was not loaded.")
                return
            model = self.residency.find(spec.plugin_id, spec.model)
            if model is None:
                self._emit(job, Answered(None, loaded=False))
                self._finish(job, JobState.DONE, "The model is not loaded.")
                return
            assert spec.call is not None  # submit refuses a call without a function
            job.answer = spec.call(model)
        except Exception as exc:  # noqa: BLE001 - reported as a Failed event, like a run
            self._fail(job, exc, "call")
            return
        self._emit(job, Answered(job.answer))
        self._finish(job, JobState.DONE, "")

    def _save(self, job: Job, artifacts: tuple[Artifact, ...]) -> None:
        for artifact in artifacts:
            if id(artifact) in job.saved_ids:
                continue  # saved when it was ready
            # The exact source (folder, file or hub id) lets the gallery restore the model.
            artifact.parameters.setdefault("model_source", job.spec.model)
            targets = job.spec.targets
            exact = Path(targets[len(job.saved)]) if len(job.saved) < len(targets) else None
            path = self.store.save(artifact, exact=exact)
            job.saved_ids.add(id(artifact))
            output_id = self.history.add_output(job.id, artifact.kind.value, path, artifact.seed,
                                                artifact.parameters)
            job.saved.append(path)
            self._emit(job, Saved(artifact, path, output_id))

    def _set_state(self, job: Job, state: JobState, message: str = "") -> None:
        job.state, job.message = state, message
        if job.spec.utility:
            pass  # not in the history (see submit)
        elif self._stopping and state is JobState.CANCELLED:
            # Stopped because the studio is closing: keep it "queued" so it is offered next time.
            self.history.set_state(job.id, "queued", "Stopped when the studio closed.")
        else:
            self.history.set_state(job.id, "running" if not state.finished else state.value, message)
        self._emit(job, StateChanged(state, message))

    def _fail(self, job: Job, exc: BaseException, stage: str) -> None:
        detail = "".join(traceback.format_exception(exc))
        # The traceback is for the log file (studio.core.logs); the user gets one sentence.
        log.error("job %s failed while %s:\n%s", job.id, stage, detail)
        expected = isinstance(exc, (ParamError, FileNotFoundError))  # the sentence says it all
        message = describe(exc) if expected else with_log_hint(describe(exc))
        job.failure = Failed(message, stage if not isinstance(exc, ParamError) else "validate", detail)
        self._emit(job, job.failure)
        self._finish(job, JobState.FAILED, job.failure.message)

    def _finish(self, job: Job, state: JobState, message: str) -> None:
        self._set_state(job, state, message)
        job.done.set()

    # -- crash recovery -------------------------------------------------------------------
    def unfinished_from_last_session(self) -> list[JobRecord]:
        """Jobs that were queued or running when the studio last stopped (not this session's)."""
        mine = {job.id for job in self.queued()} | ({self._current.id} if self._current else set())
        return [record for record in self.history.unfinished() if record.id not in mine]

    def resubmit(self, record: JobRecord) -> Job | None:
        """Run a job from last session again, minus the outputs it saved before it stopped
        (image 3 of 4 killed: images 3 and 4 only).  None when nothing was missing."""
        stored = record.request
        saved = self.history.outputs_of_job(record.id)
        request = remaining_request(stored.get("request", {}), [o.seed for o in saved])
        if request is None:
            self.history.set_state(record.id, "done", f"All {len(saved)} outputs were saved before it stopped.")
            return None
        job = self.submit(JobSpec(plugin_id=record.plugin_id, model=record.model,
                                  request=request, mode=stored.get("mode"),
                                  action=stored.get("action", "run")))
        kept = f" ({len(saved)} finished output(s) kept)" if saved else ""
        self.history.set_state(record.id, "cancelled", f"Re-queued as {job.id}{kept}.")
        return job

    def discard(self, record: JobRecord) -> None:
        self.history.set_state(record.id, "cancelled", "Discarded after restart.")
