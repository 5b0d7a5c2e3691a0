"""Control maps that need no model: canny, scribble, line art, pass-through (numpy + PIL + scipy).

Every preprocessor takes the user's image already resized to the generation size and returns an RGB
PIL image: what the control model sees, and what the panel previews.  Models that need their own
weights (depth estimation, pose detection) are plugin capabilities, not here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

#: preprocessor name -> what it does (the panel's choice list and the CLI's KIND)
KINDS = {
    "canny": "edges of the image (Canny: low / high thresholds)",
    "scribble": "your drawing as white strokes on black (inverted when drawn dark on light, thresholded)",
    "lineart": "your line drawing as light lines on black, grey levels kept (inverted when dark on light)",
    "depth": "a depth map you already have, passed through",
    "pose": "a pose skeleton image you already have, passed through",
    "none": "the image is already a control map: passed through",
}


@dataclass(frozen=True)
class Options:
    low: int = 100  # canny thresholds, on the 0..255 scale of an L1 Sobel gradient (OpenCV's convention)
    high: int = 200
    threshold: int = 128  # scribble: stroke pixels are brighter than this after inverting
    invert: str = "auto"  # auto | yes | no (scribble / line art)


def resize_for_control(image: Image.Image, size: tuple[int, int], kind: str) -> Image.Image:
    """The user's image at the generation size.  Drawings are shrunk with a box filter (thin strokes
    stay visible as grey, then thresholding keeps them); photos and maps with Lanczos."""
    if image.size == size:
        return image
    if kind in ("scribble", "lineart"):
        return image.resize(size, Image.Resampling.BOX)
    return image.resize(size, Image.Resampling.LANCZOS)


def process(kind: str, image: Image.Image, size: tuple[int, int], options: Options = Options()) -> Image.Image:
    if kind not in KINDS:
        raise ValueError(f"Unknown control preprocessor {kind!r}; choose one of: {', '.join(KINDS)}.")
    if kind in ("scribble", "lineart"):
        # shrink with the strokes made light first, so a dark-on-light drawing keeps its thin lines
        gray = _light_strokes(image.convert("L"), options.invert)
        gray = resize_for_control(gray, size, kind)
        if kind == "lineart":
            return Image.merge("RGB", [gray] * 3)
        # after a box shrink a 1-px stroke is grey: keep anything covered a quarter or more
        limit = options.threshold if gray.size == image.size else min(options.threshold, 64)
        binary = (np.asarray(gray) >= limit).astype(np.uint8) * 255
        return Image.fromarray(binary).convert("RGB")
    image = resize_for_control(image.convert("RGB"), size, kind)
    if kind == "canny":
        return Image.fromarray(canny(np.asarray(image.convert("L")), options.low, options.high)).convert("RGB")
    return image


def _light_strokes(gray: Image.Image, invert: str) -> Image.Image:
    values = np.asarray(gray)
    flip = invert == "yes" or (invert == "auto" and float(np.median(values)) > 127)
    return Image.fromarray(255 - values) if flip else gray


def canny(gray: np.ndarray, low: float, high: float) -> np.ndarray:
    """Canny edges of a uint8 image -> uint8 0/255: blur, Sobel, thin to ridges, hysteresis."""
    from scipy import ndimage

    smooth = np.asarray(Image.fromarray(gray).filter(ImageFilter.GaussianBlur(1.0)), dtype=np.float64)
    gx = ndimage.sobel(smooth, axis=1)
    gy = ndimage.sobel(smooth, axis=0)
    magnitude = np.abs(gx) + np.abs(gy)
    # direction in four bins: 0 = horizontal gradient (vertical edge), 1 = 45deg, 2 = vertical, 3 = 135deg
    angle = (np.rad2deg(np.arctan2(gy, gx)) + 180.0) % 180.0
    bins = (((angle + 22.5) // 45).astype(int)) % 4
    padded = np.pad(magnitude, 1)
    h, w = magnitude.shape
    neighbours = {0: ((0, 1), (0, -1)), 1: ((1, 1), (-1, -1)), 2: ((1, 0), (-1, 0)), 3: ((1, -1), (-1, 1))}
    ridge = np.zeros_like(magnitude, dtype=bool)
    for b, ((dy1, dx1), (dy2, dx2)) in neighbours.items():
        a = padded[1 + dy1:1 + dy1 + h, 1 + dx1:1 + dx1 + w]
        c = padded[1 + dy2:1 + dy2 + h, 1 + dx2:1 + dx2 + w]
        ridge |= (bins == b) & (magnitude >= a) & (magnitude >= c)
    strong = ridge & (magnitude >= high)
    weak = ridge & (magnitude >= low)
    labels, count = ndimage.label(weak, structure=np.ones((3, 3)))
    if count == 0:
        return np.zeros_like(gray, dtype=np.uint8)
    keep = np.zeros(count + 1, dtype=bool)
    keep[np.unique(labels[strong])] = True
    keep[0] = False
    edges: np.ndarray = (keep[labels] * 255).astype(np.uint8)
    return edges


__all__ = ["KINDS", "Options", "canny", "process", "resize_for_control"]
