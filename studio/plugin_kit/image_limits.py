"""The largest image a user may hand in, as a decompression-bomb guard the user can raise.

A PNG of a few hundred bytes can declare 20000x20000 pixels and make a decoder allocate
gigabytes.  Every image the user names is checked from its header, before decoding, against
``Settings.max_image_pixels`` (64 megapixels unless raised in Settings); Pillow's own guard is
set to the same figure, so code that opens images directly refuses them too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from studio.plugin_api import ParamError

DEFAULT_MAX_PIXELS = 64_000_000
_max_pixels = DEFAULT_MAX_PIXELS


def set_max_pixels(pixels: int) -> None:
    """Take the Settings value into use (the GUI, the CLI and the engine read it from there)."""
    global _max_pixels
    _max_pixels = max(1, int(pixels))
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        return
    Image.MAX_IMAGE_PIXELS = _pillow_guard()


def max_pixels() -> int:
    return _max_pixels


@contextmanager
def image_limit() -> Iterator[None]:
    """Pillow's guard at the current limit for the block (it is process-wide state)."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = _pillow_guard()
    yield


def _pillow_guard() -> int:
    """Pillow warns above MAX_IMAGE_PIXELS and refuses (at open) above twice that: half our limit
    makes it refuse exactly where we do; its warning in between goes to the log."""
    return max(1, _max_pixels // 2)


def bomb_sentence(exc: Exception, what: str) -> str:
    """Our sentence for Pillow's DecompressionBombError (it stopped the file at open)."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{int(found.group(1)) / 1e6:.0f} megapixels" if found else "too many pixels"
    return (f"The {what} has {size}, more than the limit of {_max_pixels / 1e6:g} megapixels; raise "
            "'Largest image' in Settings if you trust it.")


def check_declared_size(size: tuple[int, int], what: str) -> None:
    """ParamError when an image's declared size is over the limit."""
    width, height = size
    if width * height > _max_pixels:
        raise ParamError(f"The {what} is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels), more "
                         f"than the limit of {_max_pixels / 1e6:g} megapixels; raise 'Largest image' in Settings "
                         "if you trust it.")
