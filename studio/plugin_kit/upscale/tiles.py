"""Run an image-to-image network tile by tile, so a large image fits in memory (imports torch).

Each tile is cut with ``overlap`` extra pixels of context on every side, upscaled, and only its
core is kept: the seams see the same neighbourhood the whole-image pass would, so no blending is
needed.  The output is assembled in a uint8 array (3 bytes a pixel), never a float copy of it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image


def tile_boxes(width: int, height: int, tile: int) -> list[tuple[int, int, int, int]]:
    """Core boxes (x0, y0, x1, y1) covering the image, at most ``tile`` on a side."""
    xs = list(range(0, width, tile))
    ys = list(range(0, height, tile))
    return [(x, y, min(x + tile, width), min(y + tile, height)) for y in ys for x in xs]


def run_tiled(net: Callable[[torch.Tensor], torch.Tensor], image: Image.Image, scale: int, *, tile: int = 256,
              overlap: int = 16, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
              on_tile: Callable[[int, int], None] | None = None) -> Image.Image:
    """``net`` maps (1, 3, h, w) in [0, 1] to (1, 3, h*scale, w*scale); returns the whole upscaled image.

    ``on_tile(done, total)`` is called after every tile (progress; raise from it to stop)."""
    rgb = np.asarray(image.convert("RGB"))
    height, width = rgb.shape[:2]
    out = np.empty((height * scale, width * scale, 3), dtype=np.uint8)
    boxes = tile_boxes(width, height, tile)
    with torch.inference_mode():
        for index, (x0, y0, x1, y1) in enumerate(boxes):
            px0, py0 = max(0, x0 - overlap), max(0, y0 - overlap)
            px1, py1 = min(width, x1 + overlap), min(height, y1 + overlap)
            patch = torch.from_numpy(rgb[py0:py1, px0:px1].copy()).to(device)
            patch = patch.permute(2, 0, 1)[None].to(dtype) / 255.0
            result = net(patch)[0].float().clamp_(0, 1)
            cx, cy = (x0 - px0) * scale, (y0 - py0) * scale
            core = result[:, cy:cy + (y1 - y0) * scale, cx:cx + (x1 - x0) * scale]
            out[y0 * scale:y1 * scale, x0 * scale:x1 * scale] = (
                core.mul_(255).round_().to(torch.uint8).permute(1, 2, 0).cpu().numpy())
            del patch, result, core
            if on_tile is not None:
                on_tile(index + 1, len(boxes))
    return Image.fromarray(out)


__all__ = ["run_tiled", "tile_boxes"]
