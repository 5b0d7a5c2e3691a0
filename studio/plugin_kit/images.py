"""Opening an image the user named, with a sentence (ParamError) instead of a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.plugin_api import ParamError


def open_user_image(path: Any, label: str = "Image", convert: str = "RGB"):
    """The image at ``path`` as a loaded PIL image in mode ``convert``."""
    from PIL import Image, UnidentifiedImageError

    if not path:
        raise ParamError(f"{label} is required.")
    file = Path(str(path)).expanduser()
    if not file.is_file():
        raise ParamError(f"{label} not found: {file}")
    try:
        with Image.open(file) as img:
            img.load()
            return img.convert(convert)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ParamError(f"Cannot read the {label.lower()} {file}: {exc}") from None
