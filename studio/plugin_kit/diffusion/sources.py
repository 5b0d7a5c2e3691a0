"""Work out which diffusers pipeline a model ``source`` string names, without importing torch.

Folder with model_index.json, single .safetensors file, pickle checkpoint, or hub id (the rule
itself is :mod:`studio.plugin_kit.sources`). Errors are raised here, before any heavy import,
with sentences meant for the user.
"""

from __future__ import annotations

from pathlib import Path

from studio.plugin_kit.sources import PICKLE_SUFFIXES, Source, looks_like_hub_id, pickle_refusal

__all__ = ["Source", "PICKLE_SUFFIXES", "pickle_refusal", "find_config_folder", "resolve"]


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
    if looks_like_hub_id(text):
        return Source("hub", text, text)
    raise FileNotFoundError(f"Model not found: {text} (no such file or folder).")
