"""The Ray backend: a sweep's items on Ray actors, saved by the driver.

Ray is an optional extra (``pip install studio[cluster]``) and is imported only here, only
when a sweep asks for it.  Each worker is a Ray actor that loads the model once through the
studio's own plugin (the registry finds it by entry point, ``Plugin.load`` loads it, the
engine's ``drive`` runs it), so a worker makes exactly what the local engine makes.  Actors ask
for one GPU each when the cluster has GPUs, one CPU otherwise.

Results stream back as they finish (``ray.wait``); the driver saves them through the output
store and the history like a local job and appends them to the manifest.  An item is recorded
only from a result that came back, and only once, so a worker that dies loses nothing and
duplicates nothing: its unfinished items go back in the queue and a replacement worker starts.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from studio.core.history import History
from studio.core.store import OutputStore
from studio.core.sweeps.local import Outcome
from studio.core.sweeps.plan import SweepItem
from studio.core.sweeps.runner import SweepRunner
from studio.core.sweeps.saving import save_remote_result
from studio.plugin_api import Artifact, LoadOptions

log = logging.getLogger(__name__)
LOCAL_OBJECT_STORE = 256 * 2**20  # bytes, for a local instance
IN_FLIGHT_PER_WORKER = 2  # one running, one waiting: the worker never idles while the driver saves


class RayUnavailableError(RuntimeError):
    """Ray is not installed or the cluster cannot be reached; the message is one sentence."""


def import_ray() -> Any:
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise RayUnavailableError("--ray needs Ray: pip install 'studio[cluster]' (or pip install ray)") from None


def connect(address: str | None, num_cpus: int | None = None) -> bool:
    """Start a local Ray instance (``address`` None) or join a cluster.  Returns whether this
    call started Ray (and so should shut it down).  An unreachable address is one sentence."""
    ray = import_ray()
    if address is not None:
        _check_reachable(address)
    if ray.is_initialized():
        return False  # already connected (an embedding application, the tests' shared instance)
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address is None:
        cpus = num_cpus or os.cpu_count() or 1
        try:
            # Results are a few images in flight per worker: a small object store is plenty and
            # keeps a CI box's shared memory free (Ray's default takes 30% of RAM).
            ray.init(include_dashboard=False, num_cpus=cpus, object_store_memory=LOCAL_OBJECT_STORE, **quiet)
        except Exception as exc:  # noqa: BLE001 - Ray raises many kinds; the user gets one sentence
            log.exception("starting a local Ray instance failed")
            raise RayUnavailableError(f"could not start a local Ray instance: {_first_line(exc)}") from None
        return True
    try:
        ray.init(address=address, **quiet)
    except Exception as exc:  # noqa: BLE001
        log.exception("connecting to Ray at %s failed", address)
        raise RayUnavailableError(f"could not connect to the Ray cluster at {address}: {_first_line(exc)}") from None
    return True


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast (Ray itself retries for a long time) when nothing listens at ``address``."""
    if address == "auto":
        return  # Ray finds a cluster started on this machine, or says there is none
    parsed = urlparse(address if "://" in address else f"ray://{address}")
    host = parsed.hostname
    try:
        port = parsed.port or (10001 if address.startswith("ray://") else 6379)
    except ValueError:
        raise RayUnavailableError(f"{address!r} is not a Ray address such as 10.0.0.5:6379 or "
                                  f"ray://head:10001") from None
    if not host:
        raise RayUnavailableError(f"{address!r} is not a Ray address such as 10.0.0.5:6379 or ray://head:10001")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise RayUnavailableError(f"no Ray cluster reachable at {address} ({exc.strerror or exc}); "
                             f"start one with `ray start --head` or check the address") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


class SweepWorker:
    """The actor: one loaded model, many items.  Built by Ray in the worker process."""

    def __init__(self, plugin_id: str, model: str, options: LoadOptions, threads: str | None):
        from studio.core.registry import Registry

        # Ray sets OMP_NUM_THREADS to the actor's CPU share (1).  The CPU kernels' summation
        # order depends on the thread count, so a 1-thread worker differs from a local run in a
        # few pixels by one level.  Before the plugin imports torch, take what a local run takes:
        # the driver's OMP_NUM_THREADS if it set one, else the library's own default.
        if threads:
            os.environ["OMP_NUM_THREADS"] = threads
        else:
            os.environ.pop("OMP_NUM_THREADS", None)
        started = time.perf_counter()
        plugin = Registry.discover().get(plugin_id)
        self.model = plugin.load(model, options, lambda message: None)
        self.load_seconds = time.perf_counter() - started

    def describe(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "host": socket.gethostname(), "device": str(getattr(self.model, "device", "")),
                "load_seconds": self.load_seconds}

    def run(self, request: dict[str, Any]) -> tuple[list[Artifact], float]:
        from studio.core.runner import drive
        from studio.plugin_api import CancelToken, Result

        started = time.perf_counter()
        result = None
        for event in drive(self.model, request, CancelToken()):
            if isinstance(event, Result):
                result = event
        if result is None:  # drive raises rather than end without a Result; belt and braces
            raise RuntimeError("the plugin stopped without a result")
        return list(result.artifacts), time.perf_counter() - started


@dataclass
class _Slot:
    actor: Any
    info: dict[str, Any]
    in_flight: int = 0
    alive: bool = True


class RaySweep:
    backend = "ray"

    def __init__(self, runner: SweepRunner, store: OutputStore, history: History, options: LoadOptions,
                 workers: int | None = None, notify: Callable[[str], None] | None = None,
                 max_replacements: int | None = None):
        self.runner = runner
        self.store = store
        self.history = history
        self.options = options
        self.requested_workers = workers
        self.notify = notify or (lambda message: None)
        self.max_replacements = max_replacements
        self.slots: list[_Slot] = []
        self.load_seconds: float | None = None
        # Measured for the benchmark and the plan's estimate: when the workers were ready and
        # the last item came back (perf_counter), and the driver's time spent saving.
        self.ready_at: float | None = None
        self.finished_at: float | None = None
        self.save_seconds = 0.0
        self._in_flight: dict[Any, tuple[_Slot, SweepItem]] = {}
        self._stop = False

    # -- sizing ------------------------------------------------------------------------------
    def plan_workers(self) -> tuple[int, bool]:
        """(how many workers, whether each gets a GPU): one per GPU, else one per local thread count of CPUs."""
        ray = import_ray()
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        cpus = max(1, int(resources.get("CPU", 1)))
        available = gpus if gpus else cpus
        # A CPU worker runs with a local run's thread count (see SweepWorker), so by default
        # one worker per that many CPUs; --workers may ask for more (each is scheduled on 1 CPU).
        threads = int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)
        default = gpus if gpus else max(1, cpus // max(1, threads))
        wanted = max(1, self.requested_workers or default)
        if wanted > available:
            # More actors than the cluster has room for would wait for resources forever.
            self.notify(f"asked for {wanted} workers; the cluster has room for {available} "
                        f"({'GPUs' if gpus else 'CPUs'}), so {available} run")
            wanted = available
        return wanted, gpus > 0

    def busy_worker_pids(self) -> list[int]:
        """Process ids of workers with items in flight (tests kill one of them)."""
        return [slot.info["pid"] for slot in self.slots if slot.alive and slot.in_flight]

    def stop(self) -> None:
        self._stop = True

    # -- running -----------------------------------------------------------------------------
    def run(self) -> Outcome:
        ray = import_ray()
        exceptions = importlib.import_module("ray.exceptions")
        plan = self.runner.plan
        queue: deque[SweepItem] = deque(self.runner.pending())
        if not queue:
            return Outcome(True)
        count, gpu = self.plan_workers()
        count = min(count, len(queue))
        actor_class = ray.remote(SweepWorker).options(num_gpus=1 if gpu else 0, num_cpus=1, max_restarts=0)
        replacements = self.max_replacements if self.max_replacements is not None else 2 * count

        def start_workers(n: int) -> list[_Slot]:
            threads = os.environ.get("OMP_NUM_THREADS") or None
            actors = [actor_class.remote(plan.plugin_id, plan.model, self.options, threads) for _ in range(n)]
            slots = []
            for actor in actors:  # they load in parallel; collect each one's report
                try:
                    info = ray.get(actor.describe.remote())
                except exceptions.RayActorError as exc:
                    for other in actors:
                        ray.kill(other)
                    raise _WorkerFailedError(_cause(exc)) from None
                if self.load_seconds is None:
                    self.load_seconds = float(info["load_seconds"])
                slots.append(_Slot(actor, info))
            return slots

        try:
            self.slots = start_workers(count)
        except _WorkerFailedError as failed:
            return Outcome(False, f"Loading the model on a Ray worker failed: {failed}")
        devices = ", ".join(sorted({f"{s.info['device']} on {s.info['host']}" for s in self.slots}))
        self.notify(f"{count} Ray worker(s) ready ({devices}; model loaded in "
                    f"{self.load_seconds or 0:.1f} s)")
        self.ready_at = time.perf_counter()
        try:
            for slot in self.slots:
                self._fill(slot, queue)
            while self._in_flight:
                if self._stop:
                    return Outcome(False, "Stopped.")
                ready, _ = ray.wait(list(self._in_flight), num_returns=1)
                ref = ready[0]
                slot, item = self._in_flight.pop(ref)
                slot.in_flight -= 1
                try:
                    artifacts, seconds = ray.get(ref)
                except exceptions.RayActorError:
                    queue.appendleft(item)  # the worker died: its item runs again elsewhere
                    for other in self.slots:  # keep the others busy before anything else
                        if other is not slot:
                            self._fill(other, queue)
                    if slot.alive:
                        slot.alive = False
                        self.notify(f"Ray worker {slot.info['pid']} on {slot.info['host']} died; "
                                    f"its items run again on another worker")
                        if replacements > 0:
                            replacements -= 1
                            try:
                                fresh = start_workers(1)
                            except _WorkerFailedError as failed:
                                self.notify(f"a replacement worker failed to start: {failed}")
                            else:
                                self.slots.extend(fresh)
                                self._fill(fresh[0], queue)
                    if not any(s.alive for s in self.slots):
                        return Outcome(False, "Every Ray worker died; rerun the sweep to carry on "
                                              "(finished items are kept).")
                    continue
                except exceptions.RayTaskError as exc:
                    return Outcome(False, f"Item {item.index + 1} failed: {_cause(exc)}")
                saving = time.perf_counter()
                self._fill(slot, queue)  # the worker starts its next item while the driver saves
                paths = save_remote_result(self.store, self.history, plan.plugin_id, plan.kind, plan.model,
                                           plan.mode, dict(item.request), artifacts)
                self.runner.record(item, paths, seconds, self.backend)
                self.save_seconds += time.perf_counter() - saving
            self.finished_at = time.perf_counter()
            if queue:  # belt and braces: every path above keeps a live worker busy while items are left
                return Outcome(False, f"{len(queue)} items were not run; rerun the sweep to carry on.")
            return Outcome(True)
        finally:
            for slot in self.slots:
                if slot.alive:
                    ray.kill(slot.actor)

    def _fill(self, slot: _Slot, queue: deque[SweepItem]) -> None:
        while slot.alive and queue and slot.in_flight < IN_FLIGHT_PER_WORKER and not self._stop:
            item = queue.popleft()
            ref = slot.actor.run.remote(dict(item.request))
            self._in_flight[ref] = (slot, item)
            slot.in_flight += 1


class _WorkerFailedError(Exception):
    pass


def _cause(exc: BaseException) -> str:
    """The plugin's own sentence inside a Ray error, not Ray's wrapping and traceback."""
    cause = getattr(exc, "cause", None) or getattr(exc, "error", None)
    if isinstance(cause, BaseException):
        from studio.core.errors import describe

        return describe(cause)
    return _first_line(exc)
