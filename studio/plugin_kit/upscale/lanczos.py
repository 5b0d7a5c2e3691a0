"""The upscaler that needs no model: PIL's Lanczos filter."""

from __future__ import annotations

from PIL import Image

NAME = "Lanczos"


def upscale(image: Image.Image, scale: float) -> Image.Image:
    width, height = image.size
    return image.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.LANCZOS)


def resize_to(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    return image if image.size == size else image.resize(size, Image.Resampling.LANCZOS)


__all__ = ["NAME", "resize_to", "upscale"]
