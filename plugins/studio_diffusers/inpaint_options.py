"""Inpainting as artists use it (A1111's options): mask blur, "only masked" at full resolution with padding,
and what the masked area starts from (original / fill / latent noise).

"Only masked": the mask's bounding box, grown by the padding and widened to the output's aspect ratio, is
cut out of the full-size image, inpainted at the generation size (so a small area gets every pixel of it),
scaled back and pasted into the untouched original through the blurred mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from studio.plugin_api import Param, ParamError, ParamType
from studio.plugin_kit.images import open_user_image

AREAS = ("Whole picture", "Only masked")
CONTENTS = ("original", "fill", "latent noise")

PARAMETERS: tuple[Param, ...] = (
    Param("mask_blur", ParamType.INT, default=4, minimum=0, maximum=64, modes=("inpaint",),
          help="Soften the mask's edge by this many pixels (0 = hard edge)."),
    Param("inpaint_area", ParamType.CHOICE, default="Whole picture", choices=AREAS, modes=("inpaint",),
          help="Only masked: repaint just the masked area, at the full generation size, and paste it back."),
    Param("masked_padding", ParamType.INT, default=32, minimum=0, maximum=256, modes=("inpaint",),
          label="Only masked padding", help="Pixels of context around the masked area (Only masked)."),
    Param("masked_content", ParamType.CHOICE, default="original", choices=CONTENTS, modes=("inpaint",),
          help="What the masked area starts from: the original pixels, colours filled in from around it, or "
               "random noise (made in pixels before encoding)."),
)


@dataclass
class Inpaint:
    init: Image.Image  # what the pipeline gets (generation size)
    mask: Image.Image
    original: Image.Image | None = None  # full-size source (Only masked)
    box: tuple[int, int, int, int] | None = None  # crop box in the original (Only masked)
    paste_mask: Image.Image | None = None  # blurred full-size mask (Only masked)
    applied: dict[str, Any] | None = None

    def finish(self, image: Image.Image) -> Image.Image:
        """The pipeline's output made into the final picture (pasted back for Only masked)."""
        if self.original is None or self.box is None or self.paste_mask is None:
            return image
        x0, y0, x1, y1 = self.box
        patch = image.convert("RGB").resize((x1 - x0, y1 - y0), Image.Resampling.LANCZOS)
        canvas = self.original.copy()
        layer = canvas.copy()
        layer.paste(patch, (x0, y0))
        return Image.composite(layer, canvas, self.paste_mask)


def prepare(request: Any, size: tuple[int, int], seed: int) -> Inpaint:
    source = open_user_image(request.get("init_image"), "Init image", "RGB")
    mask = open_user_image(request.get("mask_image"), "Mask image", "L")
    if mask.size != source.size:
        mask = mask.resize(source.size, Image.Resampling.BILINEAR)
    blur = int(request.get("mask_blur", 4) or 0)
    area = request.get("inpaint_area") or "Whole picture"
    content = request.get("masked_content") or "original"
    padding = int(request.get("masked_padding", 32) or 0)
    blurred = mask.filter(ImageFilter.GaussianBlur(blur)) if blur else mask
    applied: dict[str, Any] = {"mask_blur": blur, "inpaint_area": area, "masked_content": content}
    if area == "Only masked":
        box = _crop_box(mask, padding, size)
        applied["masked_padding"] = padding
        crop_init = _content(source.crop(box), mask.crop(box), content, seed).resize(size, Image.Resampling.LANCZOS)
        crop_mask = blurred.crop(box).resize(size, Image.Resampling.BILINEAR)
        return Inpaint(crop_init, crop_mask, source, box, blurred, applied)
    init = _content(source, mask, content, seed).resize(size, Image.Resampling.LANCZOS)
    return Inpaint(init, blurred.resize(size, Image.Resampling.BILINEAR), applied=applied)


def _crop_box(mask: Image.Image, padding: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    box = mask.point(lambda v: 255 if v > 0 else 0).getbbox()
    if box is None:
        raise ParamError("The mask is empty (all black): nothing to inpaint with 'Only masked'.")
    width, height = mask.size
    x0, y0, x1, y1 = box[0] - padding, box[1] - padding, box[2] + padding, box[3] + padding
    # widen the short side to the output's aspect ratio, so the pasted patch is not distorted
    ratio = size[0] / size[1]
    w, h = x1 - x0, y1 - y0
    if w / h < ratio:
        grow = ratio * h - w
        x0, x1 = x0 - grow / 2, x1 + grow / 2
    else:
        grow = w / ratio - h
        y0, y1 = y0 - grow / 2, y1 + grow / 2
    # shift inside the image, then clip (a box larger than the image is cut to it)
    for low, high, limit, axis in ((x0, x1, width, 0), (y0, y1, height, 1)):
        if low < 0:
            low, high = 0, high - low
        if high > limit:
            low, high = max(0, low - (high - limit)), limit
        if axis == 0:
            x0, x1 = low, high
        else:
            y0, y1 = low, high
    return int(round(x0)), int(round(y0)), int(round(x1)), int(round(y1))


def _content(image: Image.Image, mask: Image.Image, content: str, seed: int) -> Image.Image:
    if content == "original":
        return image
    pixels = np.asarray(image, dtype=np.float64)
    inside = (np.asarray(mask, dtype=np.float64) / 255.0)[..., None]
    if content == "fill":
        # colours from around the hole: a normalised blur of the unmasked pixels, wide enough to cross it
        keep = 1.0 - inside
        radius = max(4, int(max(image.size) / 8))
        spread = _blur(pixels * keep, radius)
        weight = _blur(keep, radius)
        filled = np.where(weight > 1e-3, spread / np.maximum(weight, 1e-3), pixels.mean(axis=(0, 1)))
    else:  # latent noise: the masked area starts from random colours
        filled = np.random.default_rng(seed).uniform(0, 255, pixels.shape)
    out = pixels * (1 - inside) + filled * inside
    return Image.fromarray(np.clip(out, 0, 255).round().astype(np.uint8))


def _blur(array: np.ndarray, radius: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.gaussian_filter(array, sigma=(radius, radius, 0) if array.ndim == 3 else radius)


__all__ = ["AREAS", "CONTENTS", "PARAMETERS", "Inpaint", "prepare"]
