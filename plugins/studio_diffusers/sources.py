"""Work out what a model ``source`` string is, without importing torch.

Folder with model_index.json, single .safetensors file, pickle checkpoint, or hub id.
Errors are raised here, before any heavy import, with sentences meant for the user.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class Source:
    kind: str  # "folder" | "single_file" | "hub"
    location: str  # folder / file path, or hub id
    name: str  # short name for metadata: folder name, file stem or the hub id
    config_folder: str | None = None  # single files: a local diffusers config folder, when found


def pickle_refusal(path: Path | str, what: str = "checkpoint") -> str:
    return (f"{Path(path).name} is a pickle {what} ({Path(path).suffix}), which can run arbitrary code "
            f"when loaded. Use a .safetensors file, or turn on 'allow pickle' in the load options "
            f"if you trust where it came from.")


def find_config_folder(file: Path) -> Path | None:
    """A diffusers config folder shipped next to a single-file checkpoint, if any.

    Looked for, in order: ``<stem>/``, ``<stem>.config/``, ``<stem>_config/`` beside the file,
    then a ``config/`` folder beside it.  It must hold a model_index.json.
    """
    stem = file.name[: -len(file.suffix)] if file.suffix else file.name
    for candidate in (file.parent / stem, file.parent / f"{stem}.config", file.parent / f"{stem}_config",
                      file.parent / "config"):
        if (candidate / "model_index.json").is_file():
            return candidate
    return None


def resolve(source: str, allow_pickle: bool) -> Source:
    text = (source or "").strip()
    if not text:
        raise ValueError("No model given: choose a diffusers folder, a .safetensors file or a hub id.")
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ValueError(f"{path} is a folder but not a diffusers pipeline: it has no model_index.json.")
        return Source("folder", str(path.resolve()), path.resolve().name)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in PICKLE_SUFFIXES and not allow_pickle:
            raise ValueError(pickle_refusal(path))
        if suffix != ".safetensors" and suffix not in PICKLE_SUFFIXES:
            raise ValueError(f"{path.name} is not a model file Studio can load: use a diffusers folder "
                             f"(with model_index.json) or a .safetensors checkpoint.")
        config = find_config_folder(path)
        return Source("single_file", str(path.resolve()), path.stem, str(config) if config else None)
    looks_like_path = text.startswith((".", "/", "~", "\\")) or "\\" in text or text.count("/") != 1 \
        or Path(text).suffix.lower() in (".safetensors", *PICKLE_SUFFIXES)
    if not looks_like_path and _HUB_ID.match(text):
        return Source("hub", text, text)
    raise FileNotFoundError(f"Model not found: {text} (no such file or folder).")
