"""Opening an image the user named, with a sentence (ParamError) instead of a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.plugin_kit.image_limits import bomb_sentence, check_declared_size, image_limit
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
        with image_limit(), Image.open(file) as img:
            check_declared_size(img.size, f"{label.lower()} {file}")  # before decoding: bombs stop here
            img.load()
            return img.convert(convert)
    except Image.DecompressionBombError as exc:
        raise ParamError(bomb_sentence(exc, f"{label.lower()} {file}")) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        if isinstance(exc, ParamError):
            raise
        raise ParamError(f"Cannot read the {label.lower()} {file}: {exc}") from None
