"""From the engine's worker thread to the GUI thread.

:class:`EngineBridge` subscribes to the :class:`~studio.core.jobs.Engine`; its listener runs
on the worker thread and only appends ``(job, event)`` to a locked inbox, then wakes the
GUI thread through a queued signal.  On the GUI thread the inbox is drained and every
event is re-emitted as Qt signals, so widgets are only ever touched on the GUI thread.

Previews (and progress ticks) are coalesced per job: if the GUI thread is busy and a newer
preview arrives before the older one was shown, the older one is dropped (newest wins), so
the UI never works through a backlog of stale images.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot

from studio.core.jobs import Engine, Failed, Job, JobState, ModelLoaded, Saved, StateChanged
from studio.plugin_api import Log, Partial, Preview, Progress, Result

# Event types of which only the newest pending one per job matters.
_COALESCED = (Preview, Progress)


class EngineBridge(QObject):
    #: every event, in order: (job, event)
    event = Signal(object, object)
    #: (job, StateChanged)
    stateChanged = Signal(object, object)
    #: (job, Progress)
    progress = Signal(object, object)
    #: (job, Preview) - only the newest pending one per job
    preview = Signal(object, object)
    #: (job, Partial)
    partial = Signal(object, object)
    #: (job, Log)
    log = Signal(object, object)
    #: (job, Result)
    result = Signal(object, object)
    #: (job, Saved)
    saved = Signal(object, object)
    #: (job, Failed)
    failed = Signal(object, object)
    #: (job, ModelLoaded)
    modelLoaded = Signal(object, object)
    #: the queue or the running job changed (any StateChanged)
    queueChanged = Signal()

    _wake = Signal()

    def __init__(self, engine: Engine, parent: QObject | None = None):
        super().__init__(parent)
        self.engine = engine
        self._lock = threading.Lock()
        self._inbox: list[tuple[Job, object]] = []
        self._closed = False
        self.dropped_previews = 0  # how many stale previews were coalesced away (for tests/benches)
        self._wake.connect(self._drain, Qt.ConnectionType.QueuedConnection)
        self._unsubscribe: Callable[[], None] | None = engine.subscribe(self._on_engine_event)

    # -- worker thread ------------------------------------------------------------------
    def _on_engine_event(self, job: Job, event: object) -> None:
        with self._lock:
            if self._closed:
                return
            # Audio chunks are pieces of the clip, not views of it: never drop them.
            if isinstance(event, _COALESCED) and not (isinstance(event, Preview) and event.audio is not None):
                kind = type(event)
                for index, (queued_job, queued_event) in enumerate(self._inbox):
                    if queued_job is job and type(queued_event) is kind:
                        del self._inbox[index]
                        if kind is Preview:
                            self.dropped_previews += 1
                        break
            wake = not self._inbox
            self._inbox.append((job, event))
        if wake:
            self._wake.emit()

    # -- GUI thread -----------------------------------------------------------------------
    @Slot()
    def _drain(self) -> None:
        with self._lock:
            batch, self._inbox = self._inbox, []
        for job, event in batch:
            if self._closed:
                return
            self._dispatch(job, event)

    def feed(self, session: Any) -> None:
        """Hand every event to ``session.handle(job, event)`` on the GUI thread (a panel's
        :class:`~studio.core.sessions.base.PanelSession`; it ignores jobs that are not its own)."""
        self.event.connect(session.handle)

    def flush(self) -> None:
        """Deliver whatever is pending right now (GUI thread only)."""
        self._drain()

    def _dispatch(self, job: Job, event: object) -> None:
        self.event.emit(job, event)
        if isinstance(event, StateChanged):
            self.stateChanged.emit(job, event)
            self.queueChanged.emit()
        elif isinstance(event, Progress):
            self.progress.emit(job, event)
        elif isinstance(event, Preview):
            self.preview.emit(job, event)
        elif isinstance(event, Partial):
            self.partial.emit(job, event)
        elif isinstance(event, Log):
            self.log.emit(job, event)
        elif isinstance(event, Result):
            self.result.emit(job, event)
        elif isinstance(event, Saved):
            self.saved.emit(job, event)
        elif isinstance(event, Failed):
            self.failed.emit(job, event)
        elif isinstance(event, ModelLoaded):
            self.modelLoaded.emit(job, event)

    def close(self) -> None:
        """Stop listening (call before the engine shuts down)."""
        with self._lock:
            self._closed = True
            self._inbox.clear()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None


def is_active(job: Job) -> bool:
    return job.state in (JobState.LOADING, JobState.RUNNING)
