"""Snap an implicit edit mask to the image's own regions (numpy + scikit-image).

The implicit mask (:func:`ddpm_edit.implicit_masks`) says *which* part of the picture an edit is
about, but its outline is the model's: where the model pictures the object, at the latent's
coarse resolution.  A small or narrowly trained model pictures it a few pixels toward the places
its training put objects, so the mask misses part of the object and takes some background: the
edit then recolours half a circle and smears the background beside it.

The picture itself knows the object's outline.  It is cut into regions of like colour
(Felzenszwalb's graph segmentation, as kept in scikit-image; touching regions of like mean colour
are merged), every region is scored by the model's mean cue over it, and the mask becomes the
regions that score at least ``VOTE`` of the best one -- whole regions, so the mask follows the
object's edges.  The model still chooses the region (a background edit gets the background; of
two objects, the one the edit names); the image only draws its border.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

#: a region joins the mask when its mean cue is at least this share of the best region's
VOTE = 0.5
#: a latent pixel is inside when at least this share of its image pixels is
COVER = 0.5
#: a snapped mask larger than this many times the cue is not the cue's object but a region the
#: segmentation ran together (a textured photo, an object the colour of its background): the cue stays
MAX_GROWTH = 3.0
#: segmentation runs on the image scaled to at most this side (speed on large pictures; edits act
#: on latent pixels of 8 image pixels anyway)
MAX_SIDE = 256
#: Felzenszwalb's scale per pixel of image side (larger: fewer, larger regions)
SCALE_PER_SIDE = 1.0
#: no pre-smoothing: a smoothed edge becomes a ring of in-between colours that is its own region, and a
#: flat object then falls apart into its middle and that ring (13 regions for one drawn disc at 0.8, 2 at 0)
SIGMA = 0.0
#: neighbouring regions whose mean colours are closer than this (RGB, 0..1) are one region: the graph cut
#: still splits a flat, anti-aliased disc along its resampling ripples (a 530-pixel disc into pieces of
#: 360, 126, 58 ...), and a region vote on the pieces would take only the ones the cue happens to sit on
MERGE = 0.1


def segments(image: Image.Image) -> np.ndarray:
    """Integer region labels of ``image`` (at most ``MAX_SIDE`` a side)."""
    from skimage import graph
    from skimage.segmentation import felzenszwalb

    if max(image.size) > MAX_SIDE:
        factor = MAX_SIDE / max(image.size)
        image = image.resize((max(1, round(image.width * factor)), max(1, round(image.height * factor))),
                             Image.Resampling.BILINEAR)
    arr = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
    h, w = arr.shape[:2]
    labels = felzenszwalb(arr, scale=SCALE_PER_SIDE * (h * w) ** 0.5, sigma=SIGMA, min_size=max(4, h * w // 400))
    if labels.max() == 0:
        return labels
    return graph.cut_threshold(labels, graph.rag_mean_color(arr, labels), MERGE)


def snap(cue: torch.Tensor, labels: np.ndarray) -> torch.Tensor | None:
    """``cue`` ([1,1,h,w], 0..1 at latent size) as the union of the regions of ``labels`` it points
    at, back at latent size with a soft one-pixel border; None when the cue is empty or the regions
    are far larger than it (``MAX_GROWTH``)."""
    h, w = cue.shape[-2:]
    up = torch.nn.functional.interpolate(cue.float().cpu(), size=labels.shape, mode="bilinear", align_corners=False)
    up_np = up[0, 0].numpy()
    if not np.isfinite(up_np).all() or up_np.max() <= 0:
        return None
    ids, flat = np.unique(labels, return_inverse=True)
    means = np.bincount(flat.ravel(), weights=up_np.ravel()) / np.bincount(flat.ravel())
    chosen = ids[means >= VOTE * means.max()]
    inside = torch.from_numpy(np.isin(labels, chosen).astype(np.float32))[None, None]
    hard = (torch.nn.functional.adaptive_avg_pool2d(inside, (h, w)) >= COVER).float()
    if not bool(hard.any()) or float(hard.sum()) > MAX_GROWTH * float((cue > 0.5).sum().clamp_min(1)):
        return None
    soft = torch.nn.functional.avg_pool2d(hard, 3, stride=1, padding=1, count_include_pad=False)
    return torch.maximum(hard, soft).to(cue)


def extent(mask: torch.Tensor, labels: np.ndarray | None) -> tuple[float, float, float, float] | None:
    """The box around what ``mask`` ([1,1,h,w] at latent size) covers, as fractions of the picture
    (left, top, right, bottom): with ``labels``, of the whole regions it was snapped to (to the
    pixel, not the latent's coarse grid); None when it covers nothing."""
    inside = None
    if labels is not None:
        up = torch.nn.functional.interpolate(mask.float().cpu(), size=labels.shape, mode="bilinear",
                                             align_corners=False)[0, 0].numpy()
        ids, flat = np.unique(labels, return_inverse=True)
        means = np.bincount(flat.ravel(), weights=up.ravel()) / np.bincount(flat.ravel())
        inside = np.isin(labels, ids[means >= COVER])
        if not inside.any():
            inside = None
    if inside is None:
        inside = (mask[0, 0] > 0.5).cpu().numpy()
    if not inside.any():
        return None
    rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    h, w = inside.shape
    return cols[0] / w, rows[0] / h, (cols[-1] + 1) / w, (rows[-1] + 1) / h
