"""Where Studio keeps its files, and the user's settings (a small JSON file).

``STUDIO_HOME`` overrides the data folder (tests point it at a temp dir); otherwise the
platform's usual place is used.  Settings are written atomically like every other file.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from studio.core.atomic import write_text_atomic
from studio.core.data_files import fallback_data_folder, file_writable, folder_writable, move_aside, notify
from studio.plugin_kit.paths import studio_home as studio_home  # re-exported: core and sessions import it from here


def ensure_writable_home() -> Path:
    """The data folder, or, when it cannot be written (a read-only folder or mount), a
    fallback in the temp folder for this session (``STUDIO_HOME`` points there from now on),
    with the user's settings copied over.  Says so through a notice."""
    home = studio_home()
    if folder_writable(home):
        return home
    fallback = fallback_data_folder()
    source = home / "settings.json"
    try:
        if source.is_file() and not (fallback / "settings.json").exists():
            shutil.copyfile(source, fallback / "settings.json")
    except OSError:  # unreadable too: the defaults, and the notice below
        pass
    os.environ["STUDIO_HOME"] = str(fallback)
    notify(f"The data folder {home} cannot be written; this session keeps its history, settings "
           f"and outputs in {fallback}.")
    return fallback


def _problem(name: str, value: Any, default: Any) -> str | None:
    """Why ``value`` cannot be the setting ``name`` (whose default shows its type), or None."""
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "must be true or false"
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return "must be a number"
        return None if value > 0 or name != "memory_budget_gb" else "must be more than 0"
    if isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok and value > 0 else "must be a whole number above 0"
    if name == "device":
        ok = isinstance(value, str) and re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value.strip().lower()) is not None
        return None if ok else "must be auto, cpu, cuda, cuda:N or mps"
    if name == "dtype":
        ok = value in ("auto", "float32", "float16", "bfloat16")
        return None if ok else "must be auto, float32, float16 or bfloat16"
    if name == "quantize":
        return None if value in ("none", "int8", "fp8") else "must be none, int8 or fp8"
    if isinstance(default, str):
        return None if isinstance(value, str) else "must be text"
    if isinstance(default, dict):
        ok = isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v) for k, v in value.items())
        return None if ok else "must map plugin ids to lists of model names"
    return None


@dataclass
class Settings:
    output_dir: str = ""  # empty = <studio_home>/outputs
    memory_budget_gb: float = 6.0  # residency manager keeps loaded models under this
    device: str = "auto"
    dtype: str = "auto"
    allow_download: bool = False
    allow_pickle: bool = False
    trust_remote_code: bool = False  # run a hub model's own Python code (transformers)
    attention_slicing: bool = False
    vae_tiling: bool = False
    cpu_offload: bool = False
    quantize: str = "none"  # weight-only quantization at load: none | int8 | fp8
    prewarm: bool = True  # import the Image panel's libraries in the background once the window is up
    recent_models: dict[str, list[str]] = field(default_factory=dict)

    @property
    def outputs(self) -> Path:
        return Path(self.output_dir).expanduser() if self.output_dir else studio_home() / "outputs"

    #: pixels an image the user hands in may have (width x height) before it is refused as a
    #: possible decompression bomb; raise it in Settings for very large scans
    max_image_pixels: int = 64_000_000

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        """The saved settings.  A file that is not JSON, holds wrong types or cannot be written
        is moved aside (kept) and fresh settings are used; a notice says so."""
        path = path or studio_home() / "settings.json"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            return cls._fresh(path, f"could not be read ({getattr(exc, 'strerror', None) or exc})")
        try:
            data = json.loads(text)
        except ValueError:
            return cls._fresh(path, "is not valid JSON")
        if not isinstance(data, dict):
            return cls._fresh(path, "does not hold settings")
        defaults = cls()
        known = {f.name for f in fields(cls)}
        clean = {k: v for k, v in data.items() if k in known}
        for name, value in clean.items():
            problem = _problem(name, value, getattr(defaults, name))
            if problem:
                return cls._fresh(path, f"has a wrong value for {name} ({problem})")
        settings = cls(**clean)
        if not file_writable(path):
            return cls._fresh(path, "is read-only", keep=settings)
        return settings

    @classmethod
    def _fresh(cls, path: Path, why: str, keep: Settings | None = None) -> Settings:
        fresh = keep or cls()
        try:
            aside = move_aside(path)
        except OSError as exc:
            notify(f"Settings file {path} {why} and could not be moved aside ({exc.strerror or exc}); "
                   + ("its settings are used but changes cannot be saved." if keep else
                      "using default settings for this session."))
            return fresh
        try:
            fresh.save(path)
        except OSError:
            pass
        kept = "the settings were copied to a new file" if keep else "starting with default settings"
        notify(f"Settings file {path} {why}; it was moved to {aside.name} and {kept}.")
        return fresh

    def save(self, path: Path | None = None) -> None:
        path = path or studio_home() / "settings.json"
        write_text_atomic(path, json.dumps(asdict(self), indent=2))

    def remember_model(self, plugin_id: str, source: str, keep: int = 10) -> None:
        recent = [s for s in self.recent_models.get(plugin_id, []) if s != source]
        self.recent_models[plugin_id] = [source, *recent][:keep]
