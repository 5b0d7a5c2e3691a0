"""Turn a blocking library call with callbacks into a generator of events (standard library only).

Many libraries run a whole job in one blocking call and report along the way through a
callback: diffusers' ``callback_on_step_end``, a transformers ``streamer`` or
``StoppingCriteria``.  A plugin's ``run`` must be a *generator* of events instead, iterated by
the engine's worker thread.  :class:`ThreadStream` joins the two: the blocking call runs on a
helper thread and calls :meth:`ThreadStream.emit` from its callbacks; ``run`` iterates the
stream and yields what was emitted, in order, on the engine's thread::

    from studio.plugin_kit.streaming import ThreadStream

    def run(self, request, cancel):
        with ThreadStream("my-plugin-generate") as stream:

            def on_step(step, total):          # called by the library, on the helper thread
                if cancel.is_set or stream.consumer_gone:
                    raise StopMyLibrary()      # whatever makes the library stop early
                stream.emit(Progress(step, total))

            stream.start(lambda: library.generate(..., callback=on_step))
            yield from stream                  # re-raises the call's exception, if any
        images = stream.result()               # what the call returned

* **Leaving early.** When the consumer stops iterating (the engine closes ``run`` on Cancel,
  or an exception), leaving the ``with`` block sets :attr:`~ThreadStream.consumer_gone` and
  waits for the call to end, so the library is never left running on a model that is about to
  be unloaded.  The callback should check ``consumer_gone`` (and the cancel token) and make
  the library stop.
* **Batching.** :meth:`~ThreadStream.batches` hands over everything emitted so far as one list
  per wake-up; ``min_interval`` makes a fast producer's items arrive together (fewer wake-ups
  of the consumer thread, which would otherwise take the GIL from the call for every item),
  and ``timeout`` wakes the consumer with an empty list so it can report progress on a timer.
* **One thread per model.** Pass an ``executor`` (e.g. a one-worker ``ThreadPoolExecutor``
  the model keeps) to reuse a warm thread: torch's per-thread pools start cold on a fresh one
  (measured ~5-10 % slower per diffusers call on the CPU).

The call's exception (``BaseException`` included) is re-raised on the consumer's thread once
everything emitted before it has been delivered.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from concurrent.futures import wait as futures_wait
from typing import Generic, TypeVar, cast

T = TypeVar("T")
R = TypeVar("R")

_END = object()  # put on the queue once the call has returned or raised


class ThreadStream(Generic[T]):
    """One blocking call on a helper thread; what it emits, received in order as a generator."""

    def __init__(self, name: str = "studio-plugin-stream", executor: Executor | None = None) -> None:
        self.name = name
        self.executor = executor
        self._items: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._gone = threading.Event()
        self._finished = threading.Event()
        self._value: object = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._future: Future[None] | None = None

    # -- producer side (the helper thread) ------------------------------------------------
    def emit(self, item: T) -> None:
        """Hand ``item`` to the consumer (thread-safe, never blocks)."""
        self._items.put(item)

    @property
    def consumer_gone(self) -> bool:
        """True once the consumer stopped listening: the call should stop as soon as it can."""
        return self._gone.is_set()

    # -- consumer side (the engine's worker thread) ---------------------------------------
    def start(self, call: Callable[[], object]) -> None:
        """Run ``call()`` on the helper thread (or the executor); its return value is :meth:`result`."""
        if self._thread is not None or self._future is not None:
            raise RuntimeError("a ThreadStream runs one call")
        if self.executor is not None:
            self._future = self.executor.submit(self._work, call)
        else:
            self._thread = threading.Thread(target=self._work, args=(call,), name=self.name, daemon=True)
            self._thread.start()

    def _work(self, call: Callable[[], object]) -> None:
        try:
            self._value = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer's thread, re-raised there
            self._error = exc
        finally:
            self._finished.set()
            self._items.put(_END)

    def batches(self, *, timeout: float | None = None, min_interval: float = 0.0) -> Iterator[list[T]]:
        """Everything emitted so far, one list per wake-up, until the call ends.

        ``timeout``: wake after this many seconds without items and yield ``[]``.
        ``min_interval``: after a non-empty batch, wait this long (or until the call ends)
        before taking the next one, so items made faster than that arrive together.
        The first batch is never delayed.
        """
        last: float | None = None
        while True:
            if min_interval > 0 and last is not None:
                pause = min_interval - (time.perf_counter() - last)
                if pause > 0:
                    self._finished.wait(pause)
            try:
                first = self._items.get(timeout=timeout)
            except queue.Empty:
                yield []
                continue
            taken = [first]
            while True:
                try:
                    taken.append(self._items.get_nowait())
                except queue.Empty:
                    break
            ended = taken[-1] is _END  # nothing is emitted after the end marker
            batch = cast("list[T]", taken[:-1] if ended else taken)
            if batch:
                yield batch
                last = time.perf_counter()
            if ended:
                if self._error is not None:
                    raise self._error
                return

    def __iter__(self) -> Iterator[T]:
        for batch in self.batches():
            yield from batch

    def result(self) -> object:
        """What the call returned (after the stream was iterated to its end)."""
        if not self._finished.is_set():
            raise RuntimeError("the call has not finished; iterate the stream first")
        if self._error is not None:
            raise self._error
        return self._value

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def close(self) -> None:
        """Tell the call the consumer is gone and wait for it to end (idempotent)."""
        self._gone.set()
        if self._thread is not None:
            self._thread.join()
        if self._future is not None:
            futures_wait([self._future])

    def __enter__(self) -> ThreadStream[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
