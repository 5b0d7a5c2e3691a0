"""The kit stays light: its light modules import no torch, no Qt and nothing from studio.core."""

from __future__ import annotations

import subprocess
import sys

LIGHT = ["studio.plugin_kit", "studio.plugin_kit.sources", "studio.plugin_kit.streaming", "studio.plugin_kit.seeds",
         "studio.plugin_kit.images", "studio.plugin_kit.assets", "studio.plugin_kit.warmup",
         "studio.plugin_kit.atomic", "studio.plugin_kit.latent.directions", "studio.plugin_kit.latent.fitting",
         "studio.plugin_kit.latent.metrics", "studio.plugin_kit.latent.vectors", "studio.plugin_kit.shapes",
         "studio.plugin_kit.diffusion", "studio.plugin_kit.diffusion.sources", "studio.plugin_kit.midi",
         "studio.plugin_kit.testing"]


def test_light_modules_import_no_torch_qt_or_core():
    code = (f"import importlib, sys\nfor name in {LIGHT!r}: importlib.import_module(name)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'PySide6', 'diffusers', "
            "'transformers') or m.startswith('studio.core') or m.startswith('studio.qt')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_builtin_model_folder_points_at_the_shipped_models():
    from studio.plugin_kit.assets import builtin_model_folder

    assert (builtin_model_folder("shapes-sd") / "model_index.json").is_file()
