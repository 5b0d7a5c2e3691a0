"""Build the studio's pieces once, the same way for the GUI, the CLI and the tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from studio.core.data_files import take_notices
from studio.core.history import History
from studio.core.jobs import Engine
from studio.core.registry import Registry
from studio.core.residency import Residency
from studio.core.settings import Settings, ensure_writable_home, studio_home
from studio.core.store import OutputStore
from studio.plugin_api import LoadOptions
from studio.plugin_kit.image_limits import set_max_pixels


@dataclass
class StudioContext:
    settings: Settings
    registry: Registry
    store: OutputStore
    history: History
    engine: Engine
    #: what the user must be told about this start (a damaged history moved aside, a
    #: read-only data folder...): the GUI's info bar, the CLI's "note:" lines
    notices: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, settings: Settings | None = None, registry: Registry | None = None) -> StudioContext:
        ensure_writable_home()
        settings = settings or Settings.load()
        set_max_pixels(settings.max_image_pixels)
        registry = registry if registry is not None else Registry.discover()
        store = OutputStore(settings.outputs)
        store.remove_stale_temp_files()  # what a crash or a kill -9 mid-save left behind
        history = History(studio_home() / "history.sqlite")
        residency = Residency(int(settings.memory_budget_gb * 2**30))
        engine = Engine(registry, store, history, residency)
        return cls(settings, registry, store, history, engine, take_notices())

    def load_options(self) -> LoadOptions:
        s = self.settings
        return LoadOptions(device=s.device, dtype=s.dtype, allow_download=s.allow_download,
                           allow_pickle=s.allow_pickle, trust_remote_code=s.trust_remote_code,
                           attention_slicing=s.attention_slicing,
                           vae_tiling=s.vae_tiling, cpu_offload=s.cpu_offload, quantize=s.quantize)

    def apply_settings(self, settings: Settings) -> None:
        """Take edited settings into use: output folder and memory budget change at once;
        load options apply to the next model load."""
        self.settings = settings
        set_max_pixels(settings.max_image_pixels)
        self.store.root = settings.outputs
        self.engine.residency.budget_bytes = int(settings.memory_budget_gb * 2**30)

    def close(self) -> None:
        self.engine.shutdown()
        self.history.close()
