"""Which models are loaded: a least-recently-used cache kept under a memory budget.

Only the engine's worker thread loads, runs and unloads models (``get``, ``unload``,
``unload_source``), so device memory is freed on the thread that uses it.  Other threads may
ask *which* models are loaded (``is_loaded``, ``sources``): that reads bookkeeping under a
lock and never touches a model.  Work on a loaded model from elsewhere (count tokens, free it)
is an engine job: :meth:`studio.core.jobs.Engine.call` and :meth:`~studio.core.jobs.Engine.unload`.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import astuple
from typing import Any

from studio.plugin_api import LoadedModel, LoadOptions, Plugin

log = logging.getLogger(__name__)
Key = tuple[Any, ...]  # (plugin id, source, load options as a tuple)


class Residency:
    def __init__(self, budget_bytes: int):
        self.budget_bytes = int(budget_bytes)
        self._models: OrderedDict[Key, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()  # guards the bookkeeping only, never a load or unload
        self.on_change: Callable[[], None] | None = None

    @staticmethod
    def key(plugin: Plugin, source: str, options: LoadOptions) -> Key:
        return (plugin.id, source, astuple(options))

    def has(self, plugin: Plugin, source: str, options: LoadOptions) -> bool:
        with self._lock:
            return self.key(plugin, source, options) in self._models

    def loaded(self) -> list[LoadedModel]:
        """Most recently used last (worker thread: the objects are the models themselves)."""
        with self._lock:
            return list(self._models.values())

    def sources(self) -> list[tuple[str, str]]:
        """(plugin id, source) of every loaded model, most recently used last; any thread."""
        with self._lock:
            return [(key[0], key[1]) for key in self._models]

    def is_loaded(self, plugin_id: str, source: str) -> bool:
        """Whether some copy of ``source`` is loaded for ``plugin_id`` (any load options); any thread."""
        return (plugin_id, source) in self.sources()

    def find(self, plugin_id: str, source: str) -> LoadedModel | None:
        """The most recently used loaded copy of ``source`` (worker thread), without loading."""
        with self._lock:
            matches = [key for key in self._models if key[0] == plugin_id and key[1] == source]
            return self._models[matches[-1]] if matches else None

    def used_bytes(self) -> int:
        with self._lock:
            return sum(int(getattr(m, "memory_bytes", 0) or 0) for m in self._models.values())

    def get(self, plugin: Plugin, source: str, options: LoadOptions,
            progress: Callable[[str], None]) -> LoadedModel:
        key = self.key(plugin, source, options)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        model = plugin.load(source, options, progress)
        with self._lock:
            self._models[key] = model
        self._evict(keep=key)
        if self.on_change:
            self.on_change()
        return model

    def _evict(self, keep: Key) -> None:
        while self.used_bytes() > self.budget_bytes and len(self._models) > 1:
            with self._lock:
                oldest = next(k for k in self._models if k != keep)
            self.unload(oldest)

    def unload(self, key: Key) -> None:
        with self._lock:
            model = self._models.pop(key, None)
        if model is None:
            return
        log.info("unloading %s", model.source)
        try:
            model.unload()
        except Exception:  # a bad unload must not take the engine down
            log.exception("unload of %s failed", model.source)
        if self.on_change:
            self.on_change()

    def unload_source(self, plugin_id: str, source: str) -> int:
        """Unload every loaded copy of ``source`` for ``plugin_id``; how many there were."""
        with self._lock:
            keys = [key for key in self._models if key[0] == plugin_id and key[1] == source]
        for key in keys:
            self.unload(key)
        return len(keys)

    def unload_all(self) -> None:
        with self._lock:
            keys = list(self._models)
        for key in keys:
            self.unload(key)
