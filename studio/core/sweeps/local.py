"""The local backend: a sweep's items as ordinary jobs on the studio's one engine.

Items go into the job queue one at a time (the next is queued when the previous finishes),
so a panel's own Generate still gets its turn between items, and the engine saves every
result exactly as it saves any job.  Event-driven: ``handle(job, event)`` is fed by an engine
listener (CLI, tests) or by the GUI bridge, on one thread at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from studio.core.jobs import Engine, Failed, Job, JobSpec, JobState, Saved, StateChanged
from studio.core.sweeps.plan import SweepItem
from studio.core.sweeps.runner import SweepRunner
from studio.core.sweeps.saving import write_text_twin
from studio.plugin_api import LoadOptions, ParamError


@dataclass
class Outcome:
    ok: bool
    message: str = ""  # why it stopped, when it did not finish


class LocalSweep:
    backend = "local"

    def __init__(self, runner: SweepRunner, engine: Engine, options: LoadOptions,
                 on_finish: Callable[[Outcome], None] | None = None):
        self.runner = runner
        self.engine = engine
        self.options = options
        self.on_finish = on_finish
        self.current: Job | None = None
        self.load_seconds: float | None = None  # of the first item that had to load the model
        self.outcome: Outcome | None = None
        self.finished = threading.Event()
        self._queue: list[SweepItem] = []
        self._item: SweepItem | None = None
        self._files: list[Path] = []
        self._marks: dict[str, float] = {}
        self._stopping = False

    def start(self) -> None:
        """Queue the first pending item (ParamError from the engine propagates at once)."""
        self._queue = self.runner.pending()
        self._next()

    def stop(self) -> None:
        """Cancel the running item and queue no more; finished items stay recorded."""
        self._stopping = True
        if self.current is not None:
            self.engine.cancel(self.current.id)

    def _next(self) -> None:
        if self._stopping:
            self._finish(Outcome(False, "Stopped."))
            return
        if not self._queue:
            self._finish(Outcome(True))
            return
        item = self._queue.pop(0)
        plan = self.runner.plan
        self._item, self._files, self._marks = item, [], {"queued": time.perf_counter()}
        spec = JobSpec(plugin_id=plan.plugin_id, model=plan.model, mode=plan.mode, request=dict(item.request),
                       options=self.options, save=True)
        try:
            self.current = self.engine.submit(spec)
        except (ParamError, LookupError) as exc:  # the plan was checked; a plugin may still refuse
            self._item = None
            self._finish(Outcome(False, f"Item {item.index + 1} was refused: {exc}"))

    def handle(self, job: Job, event: object) -> None:
        if job is not self.current or self._item is None:
            return
        if isinstance(event, Saved):
            self._files.append(event.path)
            self._files.extend(write_text_twin(event.artifact, event.path))
        elif isinstance(event, Failed):
            self._marks["failed"] = 1.0
        elif isinstance(event, StateChanged):
            now = time.perf_counter()
            if event.state is JobState.LOADING:
                self._marks["loading"] = now
            elif event.state is JobState.RUNNING:
                self._marks["running"] = now
                if self.load_seconds is None and "loading" in self._marks:
                    self.load_seconds = now - self._marks["loading"]
            elif event.state.finished:
                self._finished(job, event.state, now)

    def _finished(self, job: Job, state: JobState, now: float) -> None:
        item, self.current, self._item = self._item, None, None
        assert item is not None
        if state is JobState.DONE:
            seconds = now - self._marks.get("running", self._marks["queued"])
            self.runner.record(item, self._files, seconds, self.backend)
            self._next()
        elif state in (JobState.CANCELLED, JobState.INTERRUPTED):
            self._finish(Outcome(False, "Stopped." if self._stopping else job.message or "Cancelled."))
        else:
            message = job.failure.message if job.failure else job.message
            self._finish(Outcome(False, f"Item {item.index + 1} failed: {message}"))

    def _finish(self, outcome: Outcome) -> None:
        if self.outcome is not None:
            return
        self.outcome = outcome
        self.finished.set()
        if self.on_finish is not None:
            self.on_finish(outcome)
