"""Where Studio keeps its files, and the user's settings (a small JSON file).

``STUDIO_HOME`` overrides the data folder (tests point it at a temp dir); otherwise the
platform's usual place is used.  Settings are written atomically like every other file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from studio.core.atomic import write_text_atomic
from studio.plugin_kit.paths import studio_home

__all__ = ["Settings", "studio_home"]


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
    prewarm: bool = True  # import the Image panel's libraries in the background once the window is up
    recent_models: dict[str, list[str]] = field(default_factory=dict)

    @property
    def outputs(self) -> Path:
        return Path(self.output_dir).expanduser() if self.output_dir else studio_home() / "outputs"

    @classmethod
    def load(cls, path: Path | None = None) -> "Settings":
        path = path or studio_home() / "settings.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, path: Path | None = None) -> None:
        path = path or studio_home() / "settings.json"
        write_text_atomic(path, json.dumps(asdict(self), indent=2))

    def remember_model(self, plugin_id: str, source: str, keep: int = 10) -> None:
        recent = [s for s in self.recent_models.get(plugin_id, []) if s != source]
        self.recent_models[plugin_id] = [source, *recent][:keep]
