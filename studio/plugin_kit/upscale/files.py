"""Upscaler files: what counts as one, and which need the pickle permission (stdlib only)."""

from __future__ import annotations

from pathlib import Path

SAFE_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")
SUFFIXES = SAFE_SUFFIXES + PICKLE_SUFFIXES


class UpscalerFileError(ValueError):
    """An upscaler file that cannot be used; the message is a sentence for the user."""


def check(path: str | Path, allow_pickle: bool) -> Path:
    """``path`` if it names a usable upscaler file, else :class:`UpscalerFileError`."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UpscalerFileError(f"Upscaler model not found: {path}.")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UpscalerFileError(f"{path.name} is not an upscaler file (expected {', '.join(SUFFIXES)}).")
    if suffix in PICKLE_SUFFIXES and not allow_pickle:
        raise UpscalerFileError(f"{path.name} is a pickle file, which can run code when loaded; it is refused unless "
                                f"you allow pickle files (setting allow_pickle, or --allow-pickle). Prefer a "
                                f".safetensors copy.")
    return path


def in_folder(folder: str | Path) -> list[Path]:
    """Upscaler files directly in ``folder``, safetensors first, then by name."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES]
    return sorted(found, key=lambda p: (p.suffix.lower() not in SAFE_SUFFIXES, p.name.lower()))


__all__ = ["PICKLE_SUFFIXES", "SAFE_SUFFIXES", "SUFFIXES", "UpscalerFileError", "check", "in_folder"]
