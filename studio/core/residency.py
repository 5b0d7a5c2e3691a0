"""Which models are loaded: a least-recently-used cache kept under a memory budget.

Only the engine's worker thread calls ``get``, so loading and unloading happen on the
thread that runs the models (no cross-thread frees of device memory).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import astuple
from typing import Any

from studio.plugin_api import LoadedModel, LoadOptions, Plugin

log = logging.getLogger(__name__)
Key = tuple[str, str, tuple[Any, ...]]  # (plugin id, source, load options)


class Residency:
    def __init__(self, budget_bytes: int):
        self.budget_bytes = int(budget_bytes)
        self._models: OrderedDict[Key, LoadedModel] = OrderedDict()
        self.on_change: Callable[[], None] | None = None

    @staticmethod
    def key(plugin: Plugin, source: str, options: LoadOptions) -> Key:
        return (plugin.id, source, astuple(options))

    def has(self, plugin: Plugin, source: str, options: LoadOptions) -> bool:
        return self.key(plugin, source, options) in self._models

    def loaded(self) -> list[LoadedModel]:
        """Most recently used last."""
        return list(self._models.values())

    def used_bytes(self) -> int:
        return sum(int(getattr(m, "memory_bytes", 0) or 0) for m in self._models.values())

    def get(self, plugin: Plugin, source: str, options: LoadOptions,
            progress: Callable[[str], None]) -> LoadedModel:
        key = self.key(plugin, source, options)
        if key in self._models:
            self._models.move_to_end(key)
            return self._models[key]
        model = plugin.load(source, options, progress)
        self._models[key] = model
        self._evict(keep=key)
        if self.on_change:
            self.on_change()
        return model

    def _evict(self, keep: Key) -> None:
        while self.used_bytes() > self.budget_bytes and len(self._models) > 1:
            oldest = next(k for k in self._models if k != keep)
            self.unload(oldest)

    def unload(self, key: Key) -> None:
        model = self._models.pop(key, None)
        if model is None:
            return
        log.info("unloading %s", model.source)
        try:
            model.unload()
        except Exception:  # noqa: BLE001 - a bad unload must not take the engine down
            log.exception("unload of %s failed", model.source)
        if self.on_change:
            self.on_change()

    def unload_all(self) -> None:
        for key in list(self._models):
            self.unload(key)
