"""Axis values as people write them: lists, A1111-style ranges, ``{start, stop, count}``, files.

* a list: ``[3.0, 7.0]`` or ``["red", "blue"]``
* a range string, as in A1111's X/Y/Z plot: ``"1-9 [5]"`` (5 values from 1 to 9, ends
  included), ``"1-5"`` (1, 2, 3, 4, 5), ``"1-9 (+2)"`` (1, 3, 5, 7, 9), or a comma list
  ``"1, 2, 5"``
* a table ``{ start = 1, stop = 9, count = 5 }`` (the same as ``"1-9 [5]"``)
* ``{ file = "prompts.txt" }``: one value per non-empty line of a text file (relative to the
  sweep file's folder)

Whole-number parameters get whole numbers (rounded, like A1111); everything is validated by
the parameter's own spec afterwards, so this module only expands.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from studio.plugin_api import Param, ParamType

_UNSIGNED = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_NUMBER = rf"[-+]?{_UNSIGNED}"
# "1-9 [5]", "1-9 (+2)", "-1-1 [3]", "0.5-2"
_RANGE = re.compile(rf"^\s*({_NUMBER})\s*-\s*({_NUMBER})\s*(?:\[\s*(\d+)\s*\]|\(\s*({_NUMBER})\s*\))?\s*$")
_WHOLE_TYPES = (ParamType.INT, ParamType.SEED)
MAX_VALUES = 10_000  # a typo such as "1-1000000" should be an error, not a day of rendering


class ValuesError(ValueError):
    """The values of an axis cannot be read; the message says how to write them."""


def expand(raw: Any, param: Param | None, base_folder: Path) -> list[Any]:
    """The list of values ``raw`` describes, for ``param`` (None: take them as written)."""
    whole = param is not None and param.type in _WHOLE_TYPES
    numeric = param is not None and param.type in (*_WHOLE_TYPES, ParamType.FLOAT)
    if isinstance(raw, list):
        values = list(raw)
    elif isinstance(raw, Mapping):
        values = _from_table(raw, whole, base_folder)
    elif isinstance(raw, str):
        values = _from_text(raw, whole, numeric)
    elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
        values = [raw]
    else:
        raise ValuesError(f"values must be a list, a range such as \"1-9 [5]\", or a table; got {raw!r}")
    if not values:
        raise ValuesError("values is empty")
    if len(values) > MAX_VALUES:
        raise ValuesError(f"values expands to {len(values)} entries; the limit is {MAX_VALUES}")
    return values


def _from_table(table: Mapping[str, Any], whole: bool, base_folder: Path) -> list[Any]:
    keys = set(table)
    if keys == {"file"}:
        path = Path(str(table["file"])).expanduser()
        path = path if path.is_absolute() else base_folder / path
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValuesError(f"cannot read the values file {path}: {exc.strerror or exc}") from None
        return [line.strip() for line in text.splitlines() if line.strip()]
    if keys == {"start", "stop", "count"}:
        try:
            start, stop, count = float(table["start"]), float(table["stop"]), int(table["count"])
        except (TypeError, ValueError):
            raise ValuesError("start and stop must be numbers and count a whole number") from None
        return _linspace(start, stop, count, whole)
    if keys == {"start", "stop", "step"}:
        try:
            start, stop, step = float(table["start"]), float(table["stop"]), float(table["step"])
        except (TypeError, ValueError):
            raise ValuesError("start, stop and step must be numbers") from None
        return _stepped(start, stop, step, whole)
    raise ValuesError(f"a values table takes {{start, stop, count}}, {{start, stop, step}} or {{file}}; "
                      f"got {{{', '.join(sorted(keys))}}}")


def _from_text(text: str, whole: bool, numeric: bool) -> list[Any]:
    match = _RANGE.match(text) if numeric else None
    if match:
        start, stop = float(match.group(1)), float(match.group(2))
        if match.group(3) is not None:
            return _linspace(start, stop, int(match.group(3)), whole)
        step = float(match.group(4)) if match.group(4) is not None else (1.0 if start <= stop else -1.0)
        return _stepped(start, stop, step, whole)
    if "," in text:
        return [part.strip() for part in text.split(",") if part.strip()]
    return [text]


def _linspace(start: float, stop: float, count: int, whole: bool) -> list[Any]:
    if count < 1:
        raise ValuesError(f"count must be at least 1 (got {count})")
    if count > MAX_VALUES:
        raise ValuesError(f"count {count} is over the limit of {MAX_VALUES}")
    if count == 1:
        points = [start]
    else:
        points = [start + (stop - start) * i / (count - 1) for i in range(count)]
    return [round(p) for p in points] if whole else [round(p, 10) for p in points]


def _stepped(start: float, stop: float, step: float, whole: bool) -> list[Any]:
    if step == 0 or (stop - start) * step < 0:
        raise ValuesError(f"a step of {step:g} never gets from {start:g} to {stop:g}")
    count = int((stop - start) / step + 1e-9) + 1
    if count > MAX_VALUES:
        raise ValuesError(f"the range has {count} values; the limit is {MAX_VALUES}")
    points = [start + step * i for i in range(count)]
    return [round(p) for p in points] if whole else [round(p, 10) for p in points]


def display(value: Any) -> str:
    """A value as a grid label shows it."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return f"{value[0]}x{value[1]}"
    return str(value)
