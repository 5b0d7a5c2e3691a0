"""Opening the studio must not import the heavy model libraries on the GUI thread.

Both tests run in a fresh interpreter.  The first loads every ``studio.plugins`` entry point,
builds the MainWindow offscreen, processes events, opens the dialogs, then looks at
``sys.modules``: nothing heavy, since nothing asked for a prewarm.  The second follows the
app's own start-up (show the window, then ``prewarm_when_shown``): nothing heavy before the
window is on screen, then torch + diffusers imported by the engine's worker thread only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, sys
from importlib.metadata import entry_points

loaded, failed = [], []
for ep in entry_points(group="studio.plugins"):
    try:
        ep.load()()
        loaded.append(ep.name)
    except Exception as exc:
        failed.append(f"{ep.name}: {type(exc).__name__}: {exc}")

from PySide6.QtWidgets import QApplication
app = QApplication([])
from studio.core.context import StudioContext
from studio.qt.main_window import MainWindow

window = MainWindow(StudioContext.create())
window.confirm_close = False
window.show()
for _ in range(20):
    app.processEvents()
window.show_plugins().close()
window.open_settings().close()
window.offer_unfinished()
for _ in range(5):
    app.processEvents()
heavy = sorted(name for name in ("torch", "diffusers", "transformers", "accelerate", "safetensors.torch")
               if name in sys.modules)
window.shutdown()
print("RESULT " + json.dumps({"heavy": heavy, "loaded": loaded, "failed": failed}))
"""


def test_opening_the_window_imports_no_torch(tmp_path):
    env = dict(os.environ)
    env.update(QT_QPA_PLATFORM="offscreen", STUDIO_HOME=str(tmp_path / "home"),
               PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins"), env.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=str(ROOT), env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-4000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    assert result["heavy"] == [], f"imported at startup: {result['heavy']} (plugins: {result})"


# The app's own start-up order (studio.qt.app.run_gui): show the window, then the background
# prewarm.  torch must still not be imported before the window is on screen, and when it is
# imported it must be on the engine's worker thread, never on the GUI thread.
PREWARM_SCRIPT = r"""
import json, sys, threading, time

IMPORTED_BY = {}


class WhoImports:
    # Notes which thread first imports each heavy package (finds nothing itself).
    def find_spec(self, name, path=None, target=None):
        if name in ("torch", "diffusers", "transformers") and name not in IMPORTED_BY:
            frame = sys._getframe(1)
            while frame is not None and frame.f_code.co_name != "_find_and_load_unlocked":
                frame = frame.f_back
            if frame is not None:  # a real import, not importlib.util.find_spec
                IMPORTED_BY[name] = threading.current_thread().name
        return None


sys.meta_path.insert(0, WhoImports())

from PySide6.QtWidgets import QApplication
app = QApplication([])
from studio.core.context import StudioContext
from studio.qt.main_window import MainWindow

context = StudioContext.create()
window = MainWindow(context)
window.confirm_close = False
window.show()
window.prewarm_when_shown()
while not (window.windowHandle() and window.windowHandle().isExposed()):
    app.processEvents()
app.processEvents()
heavy_when_shown = sorted(m for m in ("torch", "diffusers", "transformers") if m in sys.modules)
deadline = time.monotonic() + 150
started = False
while time.monotonic() < deadline:
    app.processEvents()
    started = started or context.engine.warming
    if started and not context.engine.warming:
        break
    time.sleep(0.005)
window.shutdown()
print("RESULT " + json.dumps({"heavy_when_shown": heavy_when_shown, "started": started,
                              "imported_by": IMPORTED_BY,
                              "heavy_after": sorted(m for m in ("torch", "diffusers") if m in sys.modules)}))
"""


def test_prewarm_after_the_window_is_shown_imports_torch_off_the_gui_thread(tmp_path):
    import importlib.util

    if any(importlib.util.find_spec(name) is None for name in ("torch", "diffusers", "studio_diffusers")):
        import pytest

        pytest.skip("needs torch, diffusers and the diffusers plugin")
    env = dict(os.environ)
    env.update(QT_QPA_PLATFORM="offscreen", STUDIO_HOME=str(tmp_path / "home"),
               PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins"), env.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", PREWARM_SCRIPT], cwd=str(ROOT), env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    assert result["heavy_when_shown"] == [], result
    assert result["started"], result
    assert result["heavy_after"] == ["diffusers", "torch"], result
    assert result["imported_by"].get("torch") == "studio-engine", result
    assert set(result["imported_by"].values()) == {"studio-engine"}, result
