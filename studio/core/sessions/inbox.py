"""Engine events handed to sessions on *one* thread, without Qt: the CLI's and the headless
tests' stand-in for :class:`studio.qt.bridge.EngineBridge`.

The engine calls listeners on its worker thread.  A session must be fed from one thread only
(it is the view-model of something drawn on that thread), so :class:`EventInbox` only queues
``(job, event)`` there; the owning thread calls :meth:`EventInbox.pump` (or
:meth:`EventInbox.run_until`) to deliver them, in order, to every session's ``handle``.
Nothing is coalesced: a terminal has no backlog of stale previews to skip.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Protocol

from studio.core.jobs import Engine, Job, StateChanged


class Handles(Protocol):
    def handle(self, job: Job, event: object) -> None: ...


class EventInbox:
    def __init__(self, engine: Engine, *sessions: Handles) -> None:
        self.engine = engine
        self.sessions: list[Handles] = list(sessions)
        self._pending: deque[tuple[Job, object]] = deque()
        self._cond = threading.Condition()
        self._finished: set[str] = set()  # jobs whose final state has been delivered
        self._unsubscribe = engine.subscribe(self._arrived)

    def _arrived(self, job: Job, event: object) -> None:  # the worker thread
        with self._cond:
            self._pending.append((job, event))
            self._cond.notify_all()

    def pump(self, timeout: float = 0.0) -> int:
        """Deliver every pending event (waiting up to ``timeout`` s for the first); how many."""
        with self._cond:
            if not self._pending and timeout > 0:
                self._cond.wait(timeout)
            batch = list(self._pending)
            self._pending.clear()
        for job, event in batch:
            if isinstance(event, StateChanged) and event.state.finished:
                self._finished.add(job.id)
            for session in self.sessions:
                session.handle(job, event)
        return len(batch)

    def run_until(self, job: Job, timeout: float = 60.0) -> bool:
        """Deliver events until ``job``'s final state has been handled; False on timeout."""
        deadline = time.monotonic() + timeout
        while job.id not in self._finished:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.pump(min(left, 0.1))
        return True

    def settle(self, timeout: float = 60.0) -> bool:
        """Deliver events until the engine is idle and nothing is pending (utility jobs that
        a finished job started, such as a token count, included); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pump(0.02)
            with self._cond:
                empty = not self._pending
            if empty and self.engine.current is None and not self.engine.queued():
                self.pump()  # anything that landed between the checks
                with self._cond:
                    if not self._pending:
                        return True
        return False

    def close(self) -> None:
        self._unsubscribe()
