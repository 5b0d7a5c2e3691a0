"""How long does the GUI event loop stall while an image job runs?

A QTimer fires every 5 ms on the GUI thread; we record the largest gap between ticks while
the real engine runs the real diffusers plugin.  All heavy work is on the engine's worker
thread, so gaps come only from GIL contention and from the GUI work per event (previews).

As in the app (``studio.qt.app.run_gui``), the window starts the background prewarm once it
is shown: the engine's worker imports torch + diffusers while the user looks at the window.
Measured separately: the prewarm itself (start-up to "warm"), then each job (the first one
includes the model load), and the sampling part of each job alone.  ``--no-prewarm`` skips
it, so the first job imports the libraries itself, as a cold first Generate did before.
torch is never imported on the GUI thread here (the availability check uses find_spec).

Model: ``assets/models/shapes-sd`` when it exists, else a tiny random-weight SD pipeline
built from configs (tests/fixtures/tiny_diffusers.py).  Prints why it skips otherwise.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_ui_stall.py [--steps 20] [--runs 2] [--no-prewarm]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("STUDIO_HOME", tempfile.mkdtemp(prefix="studio-bench-"))


def _skip(reason: str) -> int:
    print(f"SKIP bench_ui_stall: {reason}")
    return 0


def _find_model(tmp: Path) -> tuple[str, str] | str:
    shapes = ROOT / "assets" / "models" / "shapes-sd"
    if (shapes / "model_index.json").is_file():
        return str(shapes), "shapes-sd"
    try:
        from tests.fixtures.tiny_diffusers import build_sd
    except Exception as exc:  # noqa: BLE001
        return f"no shapes-sd model and the tiny pipeline builder is unavailable ({exc})"
    try:
        return str(build_sd(tmp / "tiny-sd")), "tiny random-weight SD (64x64)"
    except Exception as exc:  # noqa: BLE001
        return f"no shapes-sd model and building a tiny SD pipeline failed ({type(exc).__name__}: {exc})"


def _imported_on_gui_thread() -> bool:
    return _TORCH_IMPORT_THREAD and _TORCH_IMPORT_THREAD[0] == "MainThread"


_TORCH_IMPORT_THREAD: list[str] = []


class _WhoImportsTorch:
    """A meta-path finder that only notes which thread first imports torch (finds nothing)."""

    def find_spec(self, name, path=None, target=None):
        if name == "torch" and not _TORCH_IMPORT_THREAD:
            frame = sys._getframe(1)
            while frame is not None and frame.f_code.co_name != "_find_and_load_unlocked":
                frame = frame.f_back
            if frame is not None:  # a real import, not importlib.util.find_spec
                import threading

                _TORCH_IMPORT_THREAD.append(threading.current_thread().name)
        return None


sys.meta_path.insert(0, _WhoImportsTorch())


def _start_probe():
    """A 5 ms QTimer that records when it fires: gaps between ticks are event-loop stalls."""
    from PySide6.QtCore import QElapsedTimer, QTimer

    ticks: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    probe = QTimer()
    probe.setInterval(5)
    probe.timeout.connect(lambda: ticks.append(clock.nsecsElapsed() / 1e9))
    probe.start()
    return clock, ticks, probe


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--size", type=int, default=0, help="square size (default: the model's own)")
    parser.add_argument("--no-prewarm", action="store_true",
                        help="do not prewarm: the first job imports torch + diffusers itself")
    args = parser.parse_args()

    try:
        from studio.core.registry import Registry
    except Exception as exc:  # noqa: BLE001
        return _skip(f"studio core not importable: {exc}")
    registry = Registry.discover()
    entry = next((e for e in registry.entries if e.name == "diffusers"), None)
    if entry is None:
        return _skip("the diffusers plugin is not installed (no 'diffusers' entry point)")
    if not entry.ok:
        return _skip(f"the diffusers plugin failed to load: {entry.error}")
    missing = [name for name in ("torch", "diffusers") if importlib.util.find_spec(name) is None]
    if missing:  # find_spec: importing them here would take the import off the worker thread
        return _skip(f"{' and '.join(missing)} not installed")

    tmp = Path(tempfile.mkdtemp(prefix="studio-bench-model-"))
    found = _find_model(tmp)
    if isinstance(found, str):
        return _skip(found)
    source, description = found

    from PySide6.QtWidgets import QApplication

    from studio.core.context import StudioContext
    from studio.core.jobs import JobState
    from studio.core.settings import Settings
    from studio.plugin_api import Preview
    from studio.qt.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    context = StudioContext.create(Settings(device="cpu"), registry)
    window = MainWindow(context)
    window.confirm_close = False
    window.show()
    panel = window.image_panel
    panel.set_model_source(source)
    values = {"prompt": "a red circle on a blue background", "steps": args.steps, "seed": 1}
    if args.size:
        values["size"] = (args.size, args.size)
    elif "tiny" in description:
        values["size"] = (64, 64)
    panel.form.set_values(values)

    print(f"model: {description} ({source})")
    print(f"steps: {args.steps}, runs: {args.runs}, probe: 5 ms QTimer, Qt platform: {app.platformName()}")
    results = []
    while not (window.windowHandle() and window.windowHandle().isExposed()):
        app.processEvents()
    if not args.no_prewarm:
        clock, ticks, probe = _start_probe()
        started = time.perf_counter()
        window.prewarm_when_shown()
        deadline = time.perf_counter() + 10
        while not context.engine.warming and time.perf_counter() < deadline:  # the window's timer starts it
            app.processEvents()
            time.sleep(0.001)
        if not context.engine.warming:
            print("prewarm: none started (the image plugin has no prewarm, or it is off in the settings)")
        while context.engine.warming:
            app.processEvents()
            time.sleep(0.001)
        app.processEvents()
        probe.stop()
        gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
        heavy_on_gui = "torch" in sys.modules and _imported_on_gui_thread()
        results.append({"run": "prewarm", "max_gap_ms": max(gaps) * 1000 if gaps else 0.0})
        print(f"prewarm: {time.perf_counter() - started:.2f}s from window shown to libraries imported "
              f"(delay {window.PREWARM_DELAY_MS} ms included) · max gap {max(gaps) * 1000:.1f} ms · "
              f"p99 {(statistics.quantiles(gaps, n=100)[98] * 1000) if len(gaps) >= 100 else 0:.1f} ms · "
              f"{sum(1 for g in gaps if g > 0.025)} gaps > 25 ms"
              + (" · WARNING: torch was imported on the GUI thread" if heavy_on_gui else ""))
    for run in range(args.runs):
        sampling_started: list[float] = []
        previews = [0]
        clock, ticks, probe = _start_probe()

        def on_state(job, event, marks=sampling_started, clock=clock):
            if event.state is JobState.RUNNING:
                marks.append(clock.nsecsElapsed() / 1e9)

        def on_event(job, event, counter=previews):
            if isinstance(event, Preview):
                counter[0] += 1

        window.bridge.stateChanged.connect(on_state)
        window.bridge.event.connect(on_event)
        started = time.perf_counter()
        job = panel.generate()
        if job is None:
            print(f"could not queue the job: {panel.message.text()}")
            break
        while not job.done.is_set():
            app.processEvents()
            time.sleep(0.001)
        window.bridge.flush()
        app.processEvents()
        probe.stop()
        window.bridge.stateChanged.disconnect(on_state)
        window.bridge.event.disconnect(on_event)
        elapsed = time.perf_counter() - started
        if job.state is not JobState.DONE:
            print(f"run {run + 1}: job ended {job.state.value}: {job.message}")
            break
        gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
        start_sampling = sampling_started[0] if sampling_started else 0.0
        sampling_gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False) if a >= start_sampling]
        row = {
            "run": run + 1,
            "job_s": elapsed,
            "max_gap_ms": max(gaps) * 1000 if gaps else 0.0,
            "p99_gap_ms": (statistics.quantiles(gaps, n=100)[98] * 1000) if len(gaps) >= 100
            else max(gaps or [0]) * 1000,
            "sampling_max_gap_ms": max(sampling_gaps) * 1000 if sampling_gaps else 0.0,
            "gaps_over_50ms": sum(1 for g in gaps if g > 0.05),
            "ticks": len(ticks),
            "previews_shown": previews[0],
        }
        results.append(row)
        print(f"run {row['run']}: job {row['job_s']:.2f}s (first run includes the model load) · "
              f"max gap {row['max_gap_ms']:.1f} ms · p99 {row['p99_gap_ms']:.1f} ms · "
              f"max gap while sampling {row['sampling_max_gap_ms']:.1f} ms · "
              f"{row['gaps_over_50ms']} gaps > 50 ms · {row['previews_shown']} previews shown")
    window.shutdown()
    jobs = [r for r in results if r["run"] != "prewarm"]
    if jobs:
        worst = max(r["max_gap_ms"] for r in jobs)
        first = jobs[0]["max_gap_ms"]
        warm = [r["max_gap_ms"] for r in results if r["run"] == "prewarm"]
        print(f"RESULT worst event-loop gap: {worst:.1f} ms over {len(jobs)} job(s) "
              f"(first job {first:.1f} ms{', after the prewarm' if warm else ', no prewarm'})"
              + (f"; during the prewarm itself {warm[0]:.1f} ms" if warm else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
