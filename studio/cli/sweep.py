"""`studio sweep FILE`: X/Y/Z grids and batch runs from a sweep file, locally or on Ray."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path
from typing import Any

from studio.cli.common import EXIT_FAILED, EXIT_OK, UsageError

log = logging.getLogger(__name__)


def add_parser(sub: Any) -> None:
    sweep = sub.add_parser("sweep", help="run a sweep file: X/Y/Z grids and batches (locally or on Ray)",
                           description="Run every item of a sweep file (TOML or JSON). Finished items are "
                                       "recorded in the output folder, so running it again runs only what "
                                       "is missing.")
    sweep.add_argument("file", nargs="?", metavar="FILE", help="the sweep file (.toml or .json)")
    sweep.add_argument("--out", help="output folder (default: <outputs>/sweeps/<file name>)")
    sweep.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                       help="run on Ray: no ADDRESS starts a local Ray instance; ADDRESS joins a cluster "
                            "(host:6379, ray://host:10001 or auto)")
    sweep.add_argument("--workers", type=int,
                       help="Ray workers (default: one per GPU; without GPUs, one per as many CPUs as "
                            "a local run uses threads)")
    sweep.add_argument("--dry-run", action="store_true", help="print the plan and stop")


def run(args: argparse.Namespace) -> int:
    from studio.core.registry import Registry
    from studio.core.settings import Settings
    from studio.core.sweeps.manifest import Manifest
    from studio.core.sweeps.plan import build
    from studio.core.sweeps.spec import SweepError, read

    file, ray_address = args.file, args.ray
    if file is None and ray_address and Path(ray_address).is_file():
        file, ray_address = ray_address, ""  # `studio sweep --ray sweep.toml`: the file, not an address
    if file is None:
        raise UsageError("give the sweep file: studio sweep FILE")
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.workers is not None and ray_address is None:
        print("note: --workers applies to --ray; the local engine runs one item at a time", file=sys.stderr)
    settings = Settings.load()
    try:
        sweep = read(file)
    except SweepError as exc:
        raise UsageError(str(exc)) from None
    out = Path(args.out).expanduser() if args.out else settings.outputs / "sweeps" / Path(file).stem
    registry = Registry.discover()
    try:
        plan = build(sweep, registry, random_seed=Manifest(out).header.get("random_seed"))
    except SweepError as exc:
        raise UsageError(str(exc)) from None

    from studio.core.sweeps.runner import SweepRunner

    runner = SweepRunner(plan, out)
    _print_plan(runner, ray_address)
    if args.dry_run:
        return EXIT_OK
    if not runner.pending():
        for grid in runner.write_grids():
            print(f"grid: {grid}")
        return EXIT_OK

    from studio.core.context import StudioContext
    from studio.core.sweeps.manifest import FolderBusyError

    started_ray = _connect_ray(ray_address) if ray_address is not None else False
    settings.output_dir = str(out)  # the store writes the items into the sweep's folder
    try:
        try:
            runner.begin()
        except FolderBusyError as exc:
            raise UsageError(str(exc)) from None
        context = StudioContext.create(settings, registry)
        try:
            outcome = _run_backend(runner, context, ray_address, args.workers)
        finally:
            runner.end()
            context.close()
    finally:
        if started_ray:
            from studio.core.sweeps.ray_backend import import_ray

            import_ray().shutdown()
    for grid in runner.write_grids():
        print(f"grid: {grid}")
    print(f"{runner.done_count} of {runner.total} items done in {out}")
    if not outcome.ok:
        print(f"studio: {outcome.message}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _print_plan(runner: Any, ray_address: str | None) -> None:
    from studio.core.progress import format_duration

    plan = runner.plan
    sizes = [str(len(plan.seeds))] if len(plan.seeds) > 1 else []
    sizes += [str(len(a.values)) for a in plan.axes]
    shape = " × ".join(sizes)
    print(f"{plan.sweep.path.name}: {len(plan.items)} items" + (f" ({shape})" if len(sizes) > 1 else "")
          + f", {plan.kind.value} on the {plan.plugin_id} plugin" + (f", mode {plan.mode}" if plan.mode else ""))
    print(f"model: {plan.model_label} ({plan.model})")
    for axis in plan.axes:
        search = f" (replacing {axis.replace!r})" if axis.replace else ""
        print(f"{axis.name}: {axis.title}{search}: {', '.join(axis.labels)}")
    if plan.seeds != (None,):
        print(f"seeds: {', '.join(str(s) for s in plan.seeds)}")
    for note in plan.notes:
        print(f"note: {note}")
    print(f"output: {runner.folder}")
    print(f"backend: {'local engine' if ray_address is None else 'Ray, ' + (ray_address or 'a local instance')}")
    left = len(runner.pending())
    print(f"{runner.done_count} done, {left} to run")
    measured = runner.measured_seconds()
    if left and measured is not None:
        print(f"estimated time: {format_duration(left * measured)} ({measured:.2f} s per item, measured "
              f"earlier; Ray divides it by the workers)")
    elif left:
        print("estimated time: measured on the first item")


def _run_backend(runner: Any, context: Any, ray_address: str | None, workers: int | None) -> Any:
    from tqdm import tqdm

    from studio.core.progress import format_duration

    bar = tqdm(total=runner.total, initial=runner.done_count, unit="item", file=sys.stderr, dynamic_ncols=True,
               desc="sweep")
    state: dict[str, Any] = {"workers": 1, "sweep": None}

    def on_item(item: Any, done: Any) -> None:
        bar.update(1)
        if len(runner.ran_now) == 1:
            left = len(runner.pending())
            load = getattr(state["sweep"], "load_seconds", None)
            loading = f" (after {load:.1f} s loading the model)" if load else ""
            bar.write(f"first item: {done.seconds:.2f} s{loading}; about "
                      f"{format_duration(left * done.seconds / state['workers'])} for the other {left}")

    runner.listeners.append(on_item)
    try:
        if ray_address is None:
            return _run_local(runner, context, state)
        return _run_ray(runner, context, workers, state, bar)
    finally:
        bar.close()


def _run_local(runner: Any, context: Any, state: dict[str, Any]) -> Any:
    from studio.core.sweeps.local import LocalSweep

    sweep = LocalSweep(runner, context.engine, context.load_options())
    state["sweep"] = sweep
    unsubscribe = context.engine.subscribe(sweep.handle)
    try:
        sweep.start()
        while not sweep.finished.wait(0.2):
            pass
    except KeyboardInterrupt:
        sweep.stop()
        sweep.finished.wait(30)
        raise
    finally:
        unsubscribe()
    return sweep.outcome


def _connect_ray(address: str) -> bool:
    """Start or join Ray before anything is written; one line when it cannot be reached."""
    from studio.core.sweeps.ray_backend import RayUnavailableError, connect

    try:
        return connect(address or None)
    except RayUnavailableError as exc:
        raise UsageError(str(exc)) from None


def _run_ray(runner: Any, context: Any, workers: int | None, state: dict[str, Any], bar: Any) -> Any:
    from studio.core.sweeps.ray_backend import RaySweep

    sweep = RaySweep(runner, context.store, context.history, context.load_options(), workers=workers,
                     notify=lambda message: bar.write(message))
    state["sweep"] = sweep
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            state["workers"] = sweep.plan_workers()[0]
            result["outcome"] = sweep.run()
        except Exception as exc:  # noqa: BLE001 - one sentence for the user, the traceback to the log
            log.exception("the Ray sweep failed")
            result["outcome"] = _failed(f"the Ray sweep failed: {exc}")

    thread = threading.Thread(target=work, name="ray-sweep", daemon=True)
    try:
        thread.start()
        while thread.is_alive():
            thread.join(0.2)
    except KeyboardInterrupt:
        sweep.stop()
        thread.join(30)
        raise
    return result.get("outcome") or _failed("the Ray driver stopped unexpectedly; see the log")


def _failed(message: str) -> Any:
    from studio.core.sweeps.local import Outcome

    return Outcome(False, message)
