"""Layering: the latent plugins' entry points, the session and the Qt panel import no torch;
building the panel (not shown) loads nothing heavy -- the model loads when the tab is first shown."""

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
names = []
for ep in entry_points(group="studio.plugins"):
    if ep.name.startswith("latent"):
        ep.load()()
        names.append(ep.name)
from PySide6.QtWidgets import QApplication
app = QApplication([])
from studio.core.context import StudioContext
from studio.qt.bridge import EngineBridge
from studio.qt.panels.latent import LatentPanel
ctx = StudioContext.create()
bridge = EngineBridge(ctx.engine)
panel = LatentPanel(ctx, bridge)
for _ in range(10):
    app.processEvents()
heavy = sorted(m for m in ("torch", "diffusers", "transformers", "safetensors.torch") if m in sys.modules)
bridge.close(); ctx.close()
print("RESULT " + json.dumps({"heavy": heavy, "plugins": names}))
"""


def test_latent_entry_points_and_panel_import_no_torch(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", STUDIO_HOME=str(tmp_path / "home"),
               PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins"), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=str(ROOT), env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert sorted(result["plugins"]) == ["latent-diffusion", "latent-vae"]
    assert result["heavy"] == [], result


def test_core_latent_never_imports_qt_and_qt_latent_never_imports_torch():
    core = [ROOT / "studio" / "core" / "sessions" / "latent.py",
            *sorted((ROOT / "studio" / "core" / "latent").glob("*.py"))]
    qt = [ROOT / "studio" / "qt" / "panels" / "latent.py",
          *sorted((ROOT / "studio" / "qt" / "widgets").glob("latent_*.py"))]
    for f in core:
        text = f.read_text()
        assert "PySide6" not in text and "import torch" not in text, f
    for f in qt:
        text = f.read_text()
        assert "import torch" not in text and "from torch" not in text, f
