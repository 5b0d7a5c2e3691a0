"""From a sweep file to a checked list of items, before anything runs.

Every key and every axis value is validated against the plugin's own :class:`Param` specs
(the same checks the engine makes at ``submit``), so a typo in a parameter name or value is
one sentence naming it, and a sweep never fails half-way through for bad input.

Items are the product of the seeds and the axes, in the order seed, Z, Y, X (X changes
fastest).  Each item's ``key`` is a digest of exactly what it runs (plugin, model, mode,
request), so a rerun recognises finished items even after the file was reordered or extended.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core.registry import Registry
from studio.core.sweeps.spec import AXIS_NAMES, AxisSpec, SweepError, SweepFile
from studio.core.sweeps.values import ValuesError, display, expand
from studio.plugin_api import Kind, Param, ParamError, ParamType, Plugin, validate_request


@dataclass(frozen=True)
class Axis:
    name: str  # X, Y or Z
    param: str
    title: str  # what the grid writes beside the axis
    values: tuple[Any, ...]  # the values sent (validated)
    labels: tuple[str, ...]  # how each value is written on the grid
    replace: str | None = None


@dataclass(frozen=True)
class SweepItem:
    index: int
    seed: int | None
    coords: tuple[int, ...]  # (seed index, x, y, z) positions
    request: dict[str, Any]
    key: str

    @property
    def seed_index(self) -> int:
        return self.coords[0]

    @property
    def x(self) -> int:
        return self.coords[1]

    @property
    def y(self) -> int:
        return self.coords[2]

    @property
    def z(self) -> int:
        return self.coords[3]


@dataclass
class SweepPlan:
    sweep: SweepFile
    plugin_id: str
    kind: Kind
    model: str  # the source passed to Plugin.load
    model_label: str
    mode: str | None
    seeds: tuple[int | None, ...]
    axes: tuple[Axis, ...]
    items: list[SweepItem]
    random_seed: int | None = None  # picked for a file without seeds (kept in the manifest)
    notes: list[str] = field(default_factory=list)  # what the plan decided for the user

    def axis(self, name: str) -> Axis | None:
        return next((a for a in self.axes if a.name == name), None)


def build(sweep: SweepFile, registry: Registry, random_seed: int | None = None) -> SweepPlan:
    """Check ``sweep`` against its plugin and list its items.  Raises SweepError (one sentence).

    ``random_seed``: the seed to use when the file gives none (a rerun passes the one the
    manifest kept, so its items are the same)."""
    name = sweep.path.name
    plugin = _plugin(sweep, registry)
    params = {p.name: p for p in plugin.parameters()}
    mode = _mode(sweep, plugin, params)
    model, model_label = _model(sweep, plugin)
    notes: list[str] = []

    file_params = dict(sweep.params)
    if sweep.mode is not None and not plugin.modes():
        if "mode" not in params:
            raise SweepError(f"{name}: the {plugin.id} plugin has no run modes; remove mode = {sweep.mode!r}")
        file_params["mode"] = sweep.mode  # this plugin has a parameter called "mode"
    base: dict[str, Any] = {}
    for key, value in file_params.items():
        param = params.get(key)
        if param is None:
            raise SweepError(f"{name}: unknown parameter {key!r}; the {plugin.id} plugin takes "
                             f"{', '.join(params)}")
        if param.modes and mode not in param.modes:
            raise SweepError(f"{name}: {key!r} is not used in mode {mode!r} (only in {', '.join(param.modes)})")
        base[key] = _checked(param, value, f"{name}: {key} = {value!r}")

    axes = tuple(_axis(spec, i, params, base, mode, sweep) for i, spec in enumerate(sweep.axes))
    swept = {a.param for a in axes}
    seed_param = next((p.name for p in params.values() if p.type is ParamType.SEED), None)
    seeds, random_seed = _seeds(sweep, seed_param, swept, base, random_seed, notes)

    defaults = next((dict(m.defaults) for m in plugin.models() if m.source == model), {})
    for key, value in defaults.items():
        if key in params and key not in base and key not in swept:
            base[key] = value
            notes.append(f"{key} = {display(value)} (what suits this model; set {key} in the file to change it)")
    if "preview_every" in params and "preview_every" not in base and "preview_every" not in swept:
        base["preview_every"] = 0  # nobody watches a sweep's step previews

    items: list[SweepItem] = []
    ranges = [range(len(a.values)) for a in axes] + [range(1)] * (3 - len(axes))
    for s_index, seed in enumerate(seeds):
        for z, y, x in itertools.product(ranges[2], ranges[1], ranges[0]):
            request = dict(base)
            if seed_param is not None and seed is not None:
                request[seed_param] = seed
            for axis, position in zip(axes, (x, y, z), strict=False):  # fewer than 3 axes
                _apply(request, axis, position)
            try:
                clean = validate_request(list(params.values()), request, mode)
            except ParamError as exc:
                raise SweepError(f"{name}: item {len(items) + 1} ({_describe(axes, (x, y, z))}): {exc}") from None
            items.append(SweepItem(index=len(items), seed=seed, coords=(s_index, x, y, z), request=clean,
                                   key=item_key(plugin.id, model, mode, clean)))
    keys = [item.key for item in items]
    if len(set(keys)) != len(keys):
        notes.append("some items are identical (the same request twice); each runs once")
    return SweepPlan(sweep=sweep, plugin_id=plugin.id, kind=plugin.kind, model=model, model_label=model_label,
                     mode=mode, seeds=seeds, axes=axes, items=items, random_seed=random_seed, notes=notes)


def item_key(plugin_id: str, model: str, mode: str | None, request: dict[str, Any]) -> str:
    canonical = json.dumps({"plugin": plugin_id, "model": model, "mode": mode, "request": request},
                           sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:20]


def _plugin(sweep: SweepFile, registry: Registry) -> Plugin:
    name = sweep.path.name
    if sweep.plugin:
        try:
            plugin = registry.get(sweep.plugin)
        except LookupError as exc:
            raise SweepError(f"{name}: {exc}") from None
        if plugin.kind.value != sweep.kind:
            raise SweepError(f"{name}: plugin {sweep.plugin!r} makes {plugin.kind.value}, not {sweep.kind}")
        return plugin
    plugins = registry.plugins(Kind(sweep.kind))
    if not plugins:
        failures = "; ".join(f"{e.name}: {e.error}" for e in registry.failures())
        raise SweepError(f"{name}: no {sweep.kind} plugin is available" + (f" ({failures})" if failures else ""))
    return plugins[0]


def _mode(sweep: SweepFile, plugin: Plugin, params: dict[str, Param]) -> str | None:
    """The run mode: the file's, else the first mode in which every key of the file is used
    (a text sweep with ``prompt`` runs in notebook mode)."""
    modes = list(plugin.modes())
    name = sweep.path.name
    if not modes:
        return None
    if sweep.mode is not None:
        if sweep.mode not in modes:
            raise SweepError(f"{name}: mode must be one of {', '.join(modes)} (got {sweep.mode!r})")
        return str(sweep.mode)
    used = set(sweep.params) | {a.param for a in sweep.axes}
    for mode in modes:
        if all(k not in params or not params[k].modes or mode in params[k].modes for k in used):
            return mode
    return modes[0]


def _model(sweep: SweepFile, plugin: Plugin) -> tuple[str, str]:
    name = sweep.path.name
    offered = list(plugin.models())
    if sweep.model == "builtin":
        if not offered:
            raise SweepError(f"{name}: the {plugin.id} plugin has no built-in model; give model = a folder, "
                             f"a file or a hub id")
        return offered[0].source, offered[0].label
    for choice in offered:
        if sweep.model in (choice.source, choice.label):
            return choice.source, choice.label
    given = sweep.model
    if _looks_like_path(given):
        path = Path(given).expanduser()
        if not path.is_absolute():
            path = sweep.folder / path
        if not path.exists():
            raise SweepError(f"{name}: model not found: {given}")
        return str(path.resolve()), path.name
    return given, given  # a hub id: the plugin says whether it may be fetched


def _looks_like_path(text: str) -> bool:
    # A hub id is "owner/name"; anything else with a separator, a dot prefix or a weights suffix is a path.
    return text.startswith((".", "/", "~")) or text.endswith((".safetensors", ".ckpt")) or text.count("/") != 1


def _checked(param: Param, value: Any, where: str) -> Any:
    try:
        return param.validate(value)
    except ParamError as exc:
        raise SweepError(f"{where}: {exc}") from None


def _axis(spec: AxisSpec, index: int, params: dict[str, Param], base: dict[str, Any], mode: str | None,
          sweep: SweepFile) -> Axis:
    name = AXIS_NAMES[index]
    where = f"{sweep.path.name}: axis {name} ({spec.param})"
    param = params.get(spec.param)
    if param is None:
        raise SweepError(f"{where}: unknown parameter {spec.param!r}; the plugin takes {', '.join(params)}")
    if param.modes and mode not in param.modes:
        raise SweepError(f"{where}: not used in mode {mode!r} (only in {', '.join(param.modes)})")
    try:
        raw = expand(spec.values, param, sweep.folder)
    except ValuesError as exc:
        raise SweepError(f"{where}: {exc}") from None
    if spec.replace is not None:
        if param.type not in (ParamType.TEXT, ParamType.STR):
            raise SweepError(f"{where}: replace works on text parameters only")
        original = str(base.get(spec.param, param.default or ""))
        if spec.replace not in original:
            raise SweepError(f"{where}: {spec.replace!r} does not occur in {spec.param} {original!r}")
        values = tuple(_checked(param, str(v), f"{where}: value {v!r}") for v in raw)
        title = spec.label or f"{param.label} S/R"
        return Axis(name, spec.param, title, values, tuple(str(v) for v in values), spec.replace)
    values = tuple(_checked(param, v, f"{where}: value {v!r}") for v in raw)
    return Axis(name, spec.param, spec.label or param.label, values, tuple(display(v) for v in values))


def _apply(request: dict[str, Any], axis: Axis, position: int) -> None:
    value = axis.values[position]
    if axis.replace is not None:
        request[axis.param] = str(request.get(axis.param, "")).replace(axis.replace, str(value))
    else:
        request[axis.param] = value


def _describe(axes: Sequence[Axis], position: tuple[int, int, int]) -> str:
    return ", ".join(f"{a.param} = {a.labels[p]}" for a, p in zip(axes, position, strict=False)) or "the base request"


def _seeds(sweep: SweepFile, seed_param: str | None, swept: set[str], base: dict[str, Any],
           random_seed: int | None, notes: list[str]) -> tuple[tuple[int | None, ...], int | None]:
    name = sweep.path.name
    if seed_param is None:
        if sweep.seeds is not None:
            raise SweepError(f"{name}: seeds: this plugin takes no seed")
        return (None,), None
    if seed_param in swept:
        if sweep.seeds is not None or seed_param in base:
            raise SweepError(f"{name}: seeds are given twice (seeds and an axis on {seed_param}); keep one")
        return (None,), None
    if sweep.seeds is not None:
        if seed_param in base:
            raise SweepError(f"{name}: give either seeds or {seed_param}, not both")
        try:
            raw = expand(sweep.seeds, Param(seed_param, ParamType.SEED), sweep.folder)
        except ValuesError as exc:
            raise SweepError(f"{name}: seeds: {exc}") from None
        seeds = tuple(_checked(Param("seeds", ParamType.SEED), v, f"{name}: seeds value {v!r}") for v in raw)
        if any(s is None for s in seeds):
            raise SweepError(f"{name}: seeds must be fixed numbers (-1 picks at random; give numbers to resume)")
        return seeds, None
    if base.get(seed_param) is not None:
        seed = int(base.pop(seed_param))
        return (seed,), None
    chosen = random_seed if random_seed is not None else secrets.randbelow(2**32)
    notes.append(f"no seeds given: seed {chosen} picked at random (kept in the manifest, so a rerun resumes)")
    base.pop(seed_param, None)
    return (chosen,), chosen
