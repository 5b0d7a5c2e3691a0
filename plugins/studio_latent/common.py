"""Helpers shared by both latent plugins (no torch): request parsing, image files, and the
directions other packages contribute.

Plugins (or any installed package) contribute directions through the entry-point group
``studio.latent_directions``: a zero-argument callable returning an iterable of directions
file paths (see :mod:`studio.plugin_kit.latent.directions` for the format) or ``DirectionSet``
objects.  Each loaded model takes the ones whose ``space`` and ``latent_shape`` match it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from studio.plugin_api import ParamError
from studio.plugin_kit.images import open_user_image
from studio.plugin_kit.latent import directions as dirfile

log = logging.getLogger(__name__)
DIRECTIONS_GROUP = "studio.latent_directions"


def parse_edits(value: Any) -> dict[str, float]:
    """``[[name, amount], ...]`` or ``[{"name":..., "amount":...}]`` or ``{name: amount}``."""
    if not value:
        return {}
    if isinstance(value, dict):
        items = list(value.items())
    else:
        items = []
        for entry in value:
            if isinstance(entry, dict):
                items.append((entry.get("name"), entry.get("amount", 0.0)))
            elif isinstance(entry, (list, tuple)) and len(entry) == 2:
                items.append((entry[0], entry[1]))
            else:
                raise ParamError(f"Each edit is [direction name, amount] (got {entry!r}).")
    out: dict[str, float] = {}
    for name, amount in items:
        try:
            out[str(name)] = out.get(str(name), 0.0) + float(amount)
        except (TypeError, ValueError):
            raise ParamError(f"The amount for {name!r} must be a number (got {amount!r}).") from None
    return out


def unknown_direction(name: str, known: Iterable[str]) -> ParamError:
    known = list(known)
    shown = ", ".join(known[:24]) + (" ..." if len(known) > 24 else "")
    return ParamError(f"Unknown direction {name!r}; this model has: {shown or 'none'}.")


def open_rgb(path: Any, label: str = "Image"):
    return open_user_image(path, label, "RGB")


def directions_with_files(base: dirfile.DirectionSet, cache: dict, request: Any) -> dirfile.DirectionSet:
    """``base`` plus the request's ``direction_files``; loaded sets are cached by file identity."""
    files = [str(f) for f in (request.get("direction_files") or ())]
    if not files:
        return base
    key = tuple(file_key(f) for f in files)
    if key not in cache:
        try:
            cache[key] = dirfile.load_many(files, base)
        except dirfile.DirectionFileError as exc:
            raise ParamError(str(exc)) from None
    return cache[key]


def file_key(path: Any) -> tuple:
    p = Path(str(path)).expanduser()
    try:
        st = p.stat()
        return (str(p.resolve()), st.st_mtime_ns, st.st_size)
    except OSError:
        return (str(p), 0, 0)


def contributed_directions(space: str, latent_shape: tuple[int, ...]) -> tuple[dirfile.DirectionSet, list[str]]:
    """Directions from the ``studio.latent_directions`` entry points that fit this latent space.
    Returns (the merged set, notes about the ones skipped)."""
    out = dirfile.DirectionSet(space=space, latent_shape=latent_shape)
    notes: list[str] = []
    for ep in metadata.entry_points(group=DIRECTIONS_GROUP):
        try:
            provided = ep.load()()
            for item in provided or ():
                dset = item if isinstance(item, dirfile.DirectionSet) else dirfile.load(item)
                if dset.space != space or tuple(dset.latent_shape) != tuple(latent_shape):
                    continue
                out = out.merged(dset, prefix=f"{ep.name}:")
        except Exception as exc:  # noqa: BLE001 - a broken contributor must not break the model
            notes.append(f"directions from {ep.name} were skipped: {exc}")
            log.warning("latent directions entry point %s failed: %s", ep.name, exc)
    return out, notes


def folder_directions(folder: Path, space: str,
                      latent_shape: tuple[int, ...]) -> tuple[dirfile.DirectionSet, list[str]]:
    """Directions files shipped beside a model, in ``<model>/directions/``."""
    out = dirfile.DirectionSet(space=space, latent_shape=latent_shape)
    notes: list[str] = []
    sub = folder / "directions"
    if not sub.is_dir():
        return out, notes
    for file in sorted(sub.iterdir()):
        if file.suffix.lower() not in (".json", ".safetensors"):
            continue
        try:
            dset = dirfile.load(file)
        except dirfile.DirectionFileError as exc:
            notes.append(str(exc))
            continue
        if tuple(dset.latent_shape) != tuple(latent_shape):
            notes.append(f"{file.name}: shape {list(dset.latent_shape)} does not fit this model")
            continue
        out = out.merged(dset, prefix=f"{file.stem}:")
    return out, notes
