"""Opening the studio must not import the heavy model libraries (they load with a model).

Runs in a fresh interpreter: load every ``studio.plugins`` entry point, build the
MainWindow offscreen, process events, open the dialogs, then look at ``sys.modules``.
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
