"""Cold start: time from launching a fresh interpreter to the MainWindow being shown.

Each run starts ``python -c <child>`` (offscreen Qt, a fresh STUDIO_HOME, every installed
plugin discovered) and timestamps the moment the child reports the window exposed; the
child also reports which heavy modules were imported (there must be none).

    .venv/bin/python bench/bench_cold_start.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import sys, time, json
t0 = time.perf_counter()
from PySide6.QtWidgets import QApplication
app = QApplication([])
from studio.qt.theme import apply_theme
apply_theme(app)
t_qt = time.perf_counter()
from studio.core.context import StudioContext
from studio.qt.main_window import MainWindow
context = StudioContext.create()
t_ctx = time.perf_counter()
window = MainWindow(context)
window.confirm_close = False
window.show()
while not window.windowHandle() or not window.windowHandle().isExposed():
    app.processEvents()
app.processEvents()
t_shown = time.perf_counter()
print("SHOWN " + json.dumps({"qt_s": t_qt - t0, "context_s": t_ctx - t_qt, "window_s": t_shown - t_ctx,
                             "heavy": [m for m in ("torch", "diffusers", "transformers") if m in sys.modules]}),
      flush=True)
window.shutdown()
"""


def one_run(env: dict) -> tuple[float, dict]:
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", CHILD], cwd=str(ROOT), env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    shown_at, info = None, {}
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("SHOWN "):
            shown_at = time.perf_counter()
            info = json.loads(line[6:])
            break
    _out, err = child.communicate(timeout=120)
    if shown_at is None:
        raise RuntimeError(f"the child never showed the window (exit {child.returncode}):\n{err[-2000:]}")
    return shown_at - start, info


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "plugins"), env.get("PYTHONPATH", "")])
    times = []
    for run in range(args.runs + 1):
        env["STUDIO_HOME"] = tempfile.mkdtemp(prefix="studio-cold-")
        seconds, info = one_run(env)
        label = "warm-up (not counted)" if run == 0 else f"run {run}"
        print(f"{label}: {seconds * 1000:.0f} ms to window shown "
              f"(in child: Qt {info['qt_s'] * 1000:.0f} ms, context + plugins {info['context_s'] * 1000:.0f} ms, "
              f"window {info['window_s'] * 1000:.0f} ms)"
              f"{'  HEAVY IMPORTS: ' + str(info['heavy']) if info['heavy'] else ''}")
        if run:
            times.append(seconds)
    print(f"RESULT median cold start: {statistics.median(times) * 1000:.0f} ms "
          f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}, {len(times)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
