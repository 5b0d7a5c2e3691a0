"""Opening an image the user named, with a sentence (ParamError) instead of a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.plugin_api import ParamError
from studio.plugin_kit.image_limits import bomb_sentence, check_declared_size, image_limit

if TYPE_CHECKING:  # PIL is imported when an image is opened
    from PIL.Image import Image as PILImage


def open_user_image(path: Any, label: str = "Image", convert: str = "RGB") -> PILImage:
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
            converted: PILImage = img.convert(convert)
            return converted
    except Image.DecompressionBombError as exc:
        raise ParamError(bomb_sentence(exc, f"{label.lower()} {file}")) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        if isinstance(exc, ParamError):
            raise
        raise ParamError(f"Cannot read the {label.lower()} {file}: {exc}") from None
