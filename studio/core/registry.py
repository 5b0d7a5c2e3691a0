"""Plugin discovery through the ``studio.plugins`` entry-point group.

Every entry point becomes a row: either a working plugin or a failure with its reason.
A broken plugin never stops the studio from starting.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata

from studio.plugin_api import Kind, Plugin, ProvidesControlPreprocessors, api_compatible
from studio.plugin_kit.control import providers

GROUP = "studio.plugins"
DISTRIBUTION = "studio"  # the distribution whose entry points are the built-in plugins
log = logging.getLogger(__name__)


@dataclass
class PluginEntry:
    name: str  # the entry point's name
    target: str  # "module:attr"
    plugin: Plugin | None = None
    error: str = ""
    detail: str = ""  # traceback for the log / details view
    provides: list[str] = field(default_factory=list)  # control preprocessors it provides
    #: shipped with the studio itself (its own distribution's entry points): the panels' default
    builtin: bool = False

    @property
    def ok(self) -> bool:
        return self.plugin is not None

    @property
    def status(self) -> str:
        return "ok" if self.ok else f"failed: {self.error}"

    @property
    def kind(self) -> Kind | None:
        return self.plugin.kind if self.plugin else None


def _instantiate(name: str, target: str, factory: Callable[[], object]) -> PluginEntry:
    entry = PluginEntry(name=name, target=target)
    try:
        plugin = factory()
        problem = api_compatible(getattr(plugin, "api_version", None))
        if problem:
            raise TypeError(problem)
        if not isinstance(plugin, Plugin):
            missing = next(a for a in ("id", "label", "kind", "api_version", "parameters", "modes", "models", "load")
                           if not hasattr(plugin, a))
            raise TypeError(f"it has no '{missing}'; see studio/plugin_api.py for the contract")
        entry.plugin = plugin
        if isinstance(plugin, ProvidesControlPreprocessors):  # model-based control preprocessors
            entry.provides = providers.register(plugin.id, plugin.control_preprocessors())
    except Exception as exc:  # noqa: BLE001 - any plugin failure becomes data
        entry.error = f"{type(exc).__name__}: {exc}"
        entry.detail = traceback.format_exc()
        log.warning("plugin %s (%s) failed: %s", name, target, entry.error)
    return entry


class Registry:
    def __init__(self, entries: Iterable[PluginEntry] = ()):
        self.entries: list[PluginEntry] = list(entries)

    @classmethod
    def discover(cls) -> Registry:
        found = []
        seen: set[str] = set()
        for ep in metadata.entry_points(group=GROUP):
            if ep.name in seen:  # the same distribution on sys.path twice
                continue
            seen.add(ep.name)

            def factory(ep: metadata.EntryPoint = ep) -> object:
                return ep.load()()

            entry = _instantiate(ep.name, ep.value, factory)
            dist = getattr(ep, "dist", None)
            entry.builtin = bool(dist is not None and dist.name == DISTRIBUTION)
            found.append(entry)
        return cls(found)

    def add(self, name: str, factory: Callable[[], object]) -> PluginEntry:
        """Register a plugin object directly (tests, embedding)."""
        entry = _instantiate(name, f"<{name}>", factory)
        self.entries.append(entry)
        return entry

    def plugins(self, kind: Kind | None = None) -> list[Plugin]:
        return [e.plugin for e in self.entries if e.plugin and (kind is None or e.plugin.kind == kind)]

    def default(self, kind: Kind) -> Plugin | None:
        """The plugin a panel or command starts on: the studio's own for ``kind`` when there is one
        (an installed plugin that also offers an image mode -- a depth estimator, say -- must not
        take over ``studio image`` because its entry point happened to be listed first), else the
        first that loaded."""
        entries = [e for e in self.entries if e.plugin and e.plugin.kind == kind]
        for entry in entries:
            if entry.builtin:
                return entry.plugin
        return entries[0].plugin if entries else None

    def get(self, plugin_id: str) -> Plugin:
        for entry in self.entries:
            if entry.plugin and entry.plugin.id == plugin_id:
                return entry.plugin
        failed = [e for e in self.entries if e.name == plugin_id and not e.ok]
        if failed:
            raise LookupError(f"Plugin '{plugin_id}' failed to load: {failed[0].error}")
        known = ", ".join(p.id for p in self.plugins()) or "none"
        raise LookupError(f"No plugin '{plugin_id}' (installed: {known}).")

    def failures(self) -> list[PluginEntry]:
        return [e for e in self.entries if not e.ok]
