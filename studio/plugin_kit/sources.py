"""What a model ``source`` string names: a folder, a single file, or a Hugging Face hub id.

The one rule every plugin, panel and CLI command uses (standard library only, no torch):

* an existing folder is a folder, an existing file is a file;
* otherwise text that can only be a path (starts with ``.``, ``/``, ``~`` or ``\\``, holds a
  backslash, has no slash or more than one, or ends in a weights suffix such as
  ``.safetensors``) is a *missing* path;
* otherwise ``org/name`` made of letters, digits, ``_ . -`` is a hub id.

What a folder must hold (``model_index.json``, ``config.json`` …) is each plugin's own check;
see :mod:`studio.plugin_kit.diffusion.sources` for diffusers pipelines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: weights files that are Python pickles: loading one can run arbitrary code
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
WEIGHT_SUFFIXES = (".safetensors", *PICKLE_SUFFIXES)
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

FOLDER = "folder"
FILE = "single_file"
HUB = "hub"
MISSING = "missing"


def looks_like_path(text: str) -> bool:
    """True when ``text`` exists on disk or can only be meant as a path (never a hub id)."""
    text = (text or "").strip()
    if not text:
        return False
    return (text.startswith((".", "/", "~", "\\")) or "\\" in text or text.count("/") != 1
            or Path(text).suffix.lower() in WEIGHT_SUFFIXES or Path(text).expanduser().exists())


def looks_like_hub_id(text: str) -> bool:
    """True when ``text`` is not a path and has the ``org/name`` shape of a hub id."""
    text = (text or "").strip()
    return bool(text) and not looks_like_path(text) and bool(HUB_ID.match(text))


def classify(text: str) -> str:
    """``FOLDER``, ``FILE``, ``HUB`` or ``MISSING`` (also for empty text)."""
    text = (text or "").strip()
    if not text:
        return MISSING
    path = Path(text).expanduser()
    if path.is_dir():
        return FOLDER
    if path.is_file():
        return FILE
    return HUB if looks_like_hub_id(text) else MISSING


@dataclass(frozen=True)
class Source:
    """A classified model source, as a plugin's loader receives it."""

    kind: str  # FOLDER | FILE | HUB
    location: str  # resolved folder / file path, or the hub id
    name: str  # short name for metadata: folder name, file stem or the hub id
    config_folder: str | None = None  # single files: a local config folder, when the plugin found one


def locate(text: str, what: str = "model") -> Source:
    """The :class:`Source` for ``text``; ``ValueError`` / ``FileNotFoundError`` with a sentence otherwise."""
    text = (text or "").strip()
    if not text:
        raise ValueError(f"No {what} given.")
    kind = classify(text)
    if kind == MISSING:
        raise FileNotFoundError(f"Model not found: {text} (no such file or folder).")
    if kind == HUB:
        return Source(HUB, text, text)
    path = Path(text).expanduser().resolve()
    return Source(kind, str(path), path.name if kind == FOLDER else path.stem)


def pickle_refusal(path: Path | str, what: str = "checkpoint") -> str:
    """The sentence that refuses a pickle file unless the user allowed pickles."""
    return (f"{Path(path).name} is a pickle {what} ({Path(path).suffix}), which can run arbitrary code "
            f"when loaded. Use a .safetensors file, or turn on 'allow pickle' in the load options "
            f"if you trust where it came from.")
