"""Control preprocessors from plugins (the ``ProvidesControlPreprocessors`` capability), beside the built-in ones.

The studio's plugin registry hands each plugin with the capability to :func:`register` when the plugin is
registered; the image plugin that runs the job (and the Image panel's list) then find the names here, so
no plugin imports another.  Built-in names always win: a plugin name that is taken is skipped, and the
reason is kept for ``studio plugins``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from studio.plugin_api import CONTROL_MAP_TYPES, ControlPreprocessor

from . import preprocess

#: model-based preprocessors people know from A1111 / ComfyUI, and what kind of plugin provides one
KNOWN_MODEL_KINDS = {
    "depth-anything": "depth estimation", "midas": "depth estimation", "zoe": "depth estimation",
    "leres": "depth estimation", "openpose": "pose detection", "dwpose": "pose detection",
    "hed": "soft edges", "pidinet": "soft edges", "mlsd": "straight lines", "normal": "normal maps",
    "normalbae": "normal maps", "seg": "segmentation", "segment": "segmentation", "lineart-anime": "line art",
}

#: the built-in preprocessors' map types (union ControlNets choose their mode from them)
BUILTIN_MAP_TYPES = {"canny": "edges", "scribble": "scribble", "lineart": "lines", "depth": "depth",
                     "pose": "pose", "none": "other"}


@dataclass(frozen=True)
class Provided:
    plugin_id: str
    preprocessor: ControlPreprocessor


_lock = threading.Lock()
_provided: dict[str, Provided] = {}
_skipped: dict[str, list[str]] = {}  # plugin id -> sentences about names not taken


def register(plugin_id: str, preprocessors: Iterable[ControlPreprocessor]) -> list[str]:
    """Add ``plugin_id``'s preprocessors; returns the names taken (the rest are in :func:`skipped`)."""
    taken, skipped = [], []
    with _lock:
        for item in preprocessors:
            name = str(getattr(item, "name", "")).strip().lower()
            if not isinstance(item, ControlPreprocessor) or not name or not callable(item.run):
                skipped.append(f"{name or '?'}: not a ControlPreprocessor with a name and a run function")
            elif name in preprocess.KINDS:
                skipped.append(f"{name}: a built-in preprocessor has that name")
            elif name in _provided and _provided[name].plugin_id != plugin_id:
                skipped.append(f"{name}: already provided by {_provided[name].plugin_id}")
            elif item.map_type not in CONTROL_MAP_TYPES:
                skipped.append(f"{name}: map type {item.map_type!r} is not one of {', '.join(CONTROL_MAP_TYPES)}")
            else:
                _provided[name] = Provided(plugin_id, item)
                taken.append(name)
        _skipped[plugin_id] = skipped
    return taken


def unregister(plugin_id: str) -> None:
    with _lock:
        for name in [n for n, p in _provided.items() if p.plugin_id == plugin_id]:
            del _provided[name]
        _skipped.pop(plugin_id, None)


def provided() -> dict[str, Provided]:
    with _lock:
        return dict(_provided)


def skipped(plugin_id: str) -> list[str]:
    with _lock:
        return list(_skipped.get(plugin_id, ()))


def kinds() -> dict[str, str]:
    """Every preprocessor name -> what it does: the built-in ones first, then the plugins'."""
    out = dict(preprocess.KINDS)
    for name, item in provided().items():
        out[name] = f"{item.preprocessor.description} (from the {item.plugin_id} plugin; runs a model)"
    return out


def map_type(kind: str) -> str:
    if kind in BUILTIN_MAP_TYPES:
        return BUILTIN_MAP_TYPES[kind]
    item = provided().get(kind)
    return item.preprocessor.map_type if item else "other"


def needs_model(kind: str) -> bool:
    return kind not in preprocess.KINDS and kind in provided()


def unknown_kind_sentence(kind: str) -> str:
    """Why ``kind`` is not available, and what to install for it."""
    names = ", ".join(kinds())
    what = KNOWN_MODEL_KINDS.get(kind)
    if what:
        return (f"the {kind!r} preprocessor needs a model ({what}), and no installed plugin provides it: install a "
                f"Studio plugin that provides control preprocessors ({what}) — `studio plugins` lists what each "
                f"installed plugin provides — or pass a map you already made with kind none; available: {names}.")
    return (f"unknown kind {kind!r}; choose one of {names} (control preprocessors that need a model come "
            f"from plugins that provide control preprocessors; `studio plugins` lists them).")


_DEFAULTS = preprocess.Options()


def process(kind: str, image: Any, size: tuple[int, int], options: preprocess.Options = _DEFAULTS) -> Any:
    """The control map for ``kind``: a built-in preprocessor, or the plugin that provides it."""
    if kind in preprocess.KINDS:
        return preprocess.process(kind, image, size, options)
    item = provided().get(kind)
    if item is None:
        sentence = unknown_kind_sentence(kind)
        raise ValueError(sentence[0].upper() + sentence[1:])
    result = item.preprocessor.run(image.convert("RGB"), size)
    if not hasattr(result, "size") or not hasattr(result, "convert"):
        raise ValueError(f"The {kind} preprocessor (plugin {item.plugin_id}) returned no image.")
    result = result.convert("RGB")
    if result.size != size:
        result = preprocess.resize_for_control(result, size, kind)
    return result


__all__ = ["BUILTIN_MAP_TYPES", "KNOWN_MODEL_KINDS", "Provided", "kinds", "map_type", "needs_model", "process",
           "provided", "register", "skipped", "unknown_kind_sentence", "unregister"]
