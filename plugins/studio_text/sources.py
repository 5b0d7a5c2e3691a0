"""Work out what a text model ``source`` is, without importing torch.

A transformers folder (config.json + weights + tokenizer) or a Hugging Face hub id.
Errors are raised here with sentences meant for the user.
"""

from __future__ import annotations

import json
from pathlib import Path

from studio.plugin_kit.sources import Source, looks_like_hub_id

PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")

__all__ = ["Source", "resolve"]


def resolve(source: str, allow_pickle: bool = False) -> Source:
    text = (source or "").strip()
    if not text:
        raise ValueError("No model given: choose a transformers model folder or a Hugging Face id.")
    path = Path(text).expanduser()
    if path.is_dir():
        config = path / "config.json"
        if not config.is_file():
            raise ValueError(f"{path} is a folder but not a transformers model: it has no config.json.")
        try:
            json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{config} cannot be read: {exc}") from None
        has_safetensors = any(path.glob("*.safetensors")) or (path / "model.safetensors.index.json").is_file()
        has_pickle = any((path / name).is_file() for name in PICKLE_WEIGHTS)
        if not has_safetensors:
            if has_pickle and not allow_pickle:
                raise ValueError(f"{path.name} only has pickle weights (pytorch_model.bin), which can run "
                                 f"arbitrary code when loaded. Convert them to safetensors, or turn on "
                                 f"'allow pickle' in the load options if you trust where they came from.")
            if not has_pickle:
                raise ValueError(f"{path} has no model weights (*.safetensors).")
        return Source("folder", str(path.resolve()), path.resolve().name)
    if path.is_file():
        raise ValueError(f"{path.name} is a file: choose the model's folder (with config.json) instead.")
    if looks_like_hub_id(text):
        return Source("hub", text, text)
    raise FileNotFoundError(f"Model not found: {text} (no such folder).")
