"""The sweep file as written: TOML (or the same keys in JSON), read with the standard library.

```toml
kind = "image"                 # image | text | music | latent
model = "builtin"              # the plugin's embedded default, or a folder, a file, a hub id
prompt = "a red circle on a black background"
steps = 20
seeds = [1, 2]

[[axis]]                       # X
param = "prompt"
replace = "red"                # search/replace in the prompt (A1111's "Prompt S/R")
values = ["red", "blue"]

[[axis]]                       # Y
param = "cfg_scale"
values = [3.0, 7.0]
```

Only the sweep's own keys are read here; every other top-level key is a request parameter of
the plugin and is checked against the plugin's specs by :mod:`studio.core.sweeps.plan`.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS = ("image", "text", "music", "latent")
#: top-level keys that describe the sweep rather than one request
SWEEP_KEYS = ("kind", "model", "plugin", "mode", "seeds", "axis")
AXIS_KEYS = ("param", "values", "replace", "label")
MAX_AXES = 3  # X, Y, Z
AXIS_NAMES = ("X", "Y", "Z")


class SweepError(ValueError):
    """The sweep file is wrong; the message is one sentence that names the bad key or value."""


@dataclass(frozen=True)
class AxisSpec:
    param: str
    values: Any  # as written: a list, a range string or a table; expanded by the plan
    replace: str | None = None  # search text for prompt S/R
    label: str = ""


@dataclass(frozen=True)
class SweepFile:
    path: Path
    text: str  # the file as written (embedded in grid PNGs)
    kind: str
    model: str
    plugin: str | None
    mode: str | None
    seeds: Any  # None, a list, a range string or a table
    axes: tuple[AxisSpec, ...]
    params: dict[str, Any] = field(default_factory=dict)  # every other key, for the plugin

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]


def read(path: str | Path) -> SweepFile:
    """Read and check a sweep file's shape.  Raises SweepError with one sentence."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SweepError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse(text, path)


def parse(text: str, path: Path) -> SweepFile:
    data = _load(text, path)
    name = path.name
    kind = data.get("kind", "image")
    if kind not in KINDS:
        raise SweepError(f"{name}: kind must be one of {', '.join(KINDS)} (got {kind!r})")
    model = data.get("model", "builtin")
    if not isinstance(model, str) or not model.strip():
        raise SweepError(f"{name}: model must be \"builtin\", a folder, a file or a hub id (got {model!r})")
    plugin = data.get("plugin")
    if plugin is not None and not isinstance(plugin, str):
        raise SweepError(f"{name}: plugin must be a plugin id such as \"diffusers\" (got {plugin!r})")
    mode = data.get("mode")
    raw_axes = data.get("axis", [])
    if isinstance(raw_axes, dict):
        raw_axes = [raw_axes]
    if not isinstance(raw_axes, list):
        raise SweepError(f"{name}: axis must be a list of [[axis]] tables")
    if len(raw_axes) > MAX_AXES:
        raise SweepError(f"{name}: at most {MAX_AXES} axes (X, Y, Z); the file has {len(raw_axes)}")
    axes = tuple(_axis(raw, i, name) for i, raw in enumerate(raw_axes))
    seen: dict[str, int] = {}
    for i, axis in enumerate(axes):
        if axis.param in seen and axis.replace is None:
            raise SweepError(f"{name}: axis {AXIS_NAMES[i]} repeats the parameter {axis.param!r} "
                             f"of axis {AXIS_NAMES[seen[axis.param]]}")
        seen.setdefault(axis.param, i)
    params = {k: v for k, v in data.items() if k not in SWEEP_KEYS}
    return SweepFile(path=path, text=text, kind=kind, model=model.strip(), plugin=plugin, mode=mode,
                     seeds=data.get("seeds"), axes=axes, params=params)


def _load(text: str, path: Path) -> dict[str, Any]:
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SweepError(f"{path.name}: not valid JSON: {exc.msg} (line {exc.lineno})") from None
    else:
        try:  # the standard library's TOML reader (Python 3.11+); typed loosely for 3.10's checkers
            tomllib: Any = importlib.import_module("tomllib")
        except ModuleNotFoundError:  # pragma: no cover - Python 3.10
            raise SweepError(f"{path.name}: TOML needs Python 3.11 or newer; write the sweep as JSON") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SweepError(f"{path.name}: not valid TOML: {exc}") from None
    if not isinstance(data, dict):
        raise SweepError(f"{path.name}: the sweep must be a table of keys")
    return data


def _axis(raw: Any, index: int, name: str) -> AxisSpec:
    where = f"{name}: axis {AXIS_NAMES[index]}"
    if not isinstance(raw, dict):
        raise SweepError(f"{where} must be a table with param and values")
    unknown = sorted(set(raw) - set(AXIS_KEYS))
    if unknown:
        raise SweepError(f"{where}: unknown key {unknown[0]!r} (an axis takes {', '.join(AXIS_KEYS)})")
    param = raw.get("param")
    if not isinstance(param, str) or not param:
        raise SweepError(f"{where} needs param = \"<parameter name>\"")
    if "values" not in raw:
        raise SweepError(f"{where} ({param}) needs values")
    replace = raw.get("replace")
    if replace is not None and (not isinstance(replace, str) or not replace):
        raise SweepError(f"{where} ({param}): replace must be the text to search for")
    label = raw.get("label", "")
    return AxisSpec(param=param, values=raw["values"], replace=replace, label=str(label))
