"""ShapeEval reading: turn an image back into objects and attributes (numpy only).

Procedure (``read_image``):

1. background = dominant colour (mode of coarsely quantised pixels, refined by
   the mean of the pixels in that bin);
2. foreground = pixels whose colour is far from the background; split into
   4-connected components; components smaller than ``min_area`` are noise;
3. per component: colour = median of its core pixels -> nearest palette entry
   (and a continuous hue); coverage alpha per pixel (projection of the pixel
   onto the background->object colour segment) gives a sub-pixel area and
   extents;
4. shape by geometry: fill ratio area / (width x height) (square ~1.0,
   circle ~0.785, triangle ~0.5) plus the top/bottom width asymmetry of a
   triangle; size by the extent (half-size) against ``SIZE_THRESHOLD``;
   position by the bounding-box centre in thirds.
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass, field

import numpy as np

from .world import CELL_CENTERS, COLUMNS, IMAGE_SIZE, PALETTE, ROWS, SIZE_THRESHOLD

_PAL_NAMES = list(PALETTE)
_PAL = np.array([PALETTE[n] for n in _PAL_NAMES], dtype=np.float64)


@dataclass
class Detected:
    shape: str
    color: str
    size: str
    col: int
    row: int
    cx: float  # bounding-box centre (pixels)
    cy: float
    centroid: tuple  # alpha-weighted centroid (x, y)
    half: float  # half-size estimate from area and shape
    area: float
    fill: float
    rgb: tuple
    hue: float
    n_pixels: int = 0

    @property
    def column_name(self) -> str:
        return COLUMNS[self.col]

    @property
    def row_name(self) -> str:
        return ROWS[self.row]


@dataclass
class Reading:
    background: str
    bg_rgb: tuple
    objects: list = field(default_factory=list)

    def factors(self) -> dict:
        return {
            "background": self.background,
            "objects": [
                {"shape": o.shape, "color": o.color, "size": o.size, "column": o.column_name,
                 "row": o.row_name, "cx": o.cx, "cy": o.cy, "half": o.half, "hue": o.hue}
                for o in self.objects
            ],
        }


def nearest_palette(rgb) -> str:
    d = np.sum((_PAL - np.asarray(rgb, dtype=np.float64)[None]) ** 2, axis=1)
    return _PAL_NAMES[int(np.argmin(d))]


def rgb_hue(rgb) -> float:
    r, g, b = (float(c) / 255.0 for c in rgb)
    return colorsys.rgb_to_hsv(r, g, b)[0]


def dominant_color(img: np.ndarray) -> np.ndarray:
    px = img.reshape(-1, 3).astype(np.int64)
    q = px // 32
    key = q[:, 0] * 64 + q[:, 1] * 8 + q[:, 2]
    counts = np.bincount(key, minlength=512)
    k = int(np.argmax(counts))
    return px[key == k].mean(axis=0)


def connected_components(mask: np.ndarray):
    """4-connected components of a boolean mask -> list of (ys, xs) index arrays."""
    h, w = mask.shape
    labels = np.zeros((h, w), dtype=np.int32)
    comps = []
    ys0, xs0 = np.nonzero(mask)
    cur = 0
    for y0, x0 in zip(ys0.tolist(), xs0.tolist(), strict=True):
        if labels[y0, x0]:
            continue
        cur += 1
        stack = [(y0, x0)]
        labels[y0, x0] = cur
        ys, xs = [], []
        while stack:
            y, x = stack.pop()
            ys.append(y)
            xs.append(x)
            if y > 0 and mask[y - 1, x] and not labels[y - 1, x]:
                labels[y - 1, x] = cur
                stack.append((y - 1, x))
            if y < h - 1 and mask[y + 1, x] and not labels[y + 1, x]:
                labels[y + 1, x] = cur
                stack.append((y + 1, x))
            if x > 0 and mask[y, x - 1] and not labels[y, x - 1]:
                labels[y, x - 1] = cur
                stack.append((y, x - 1))
            if x < w - 1 and mask[y, x + 1] and not labels[y, x + 1]:
                labels[y, x + 1] = cur
                stack.append((y, x + 1))
        comps.append((np.array(ys), np.array(xs)))
    return comps


def _classify_shape(alpha: np.ndarray, fill: float) -> str:
    """alpha: coverage crop (rows x cols) of one object."""
    rows = alpha.max(axis=1)
    keep = rows > 0.5
    widths = alpha.sum(axis=1)[keep]
    if len(widths) >= 4:
        k = max(1, len(widths) // 4)
        top, bot = widths[:k].mean(), widths[-k:].mean()
        asym = (bot - top) / max(bot, top, 1e-6)
    else:
        asym = 0.0
    if fill < 0.62 or (fill < 0.7 and asym > 0.5):
        return "triangle"
    if fill > 0.89:
        return "square"
    return "circle"


def read_image(img, min_area: float = 12.0, fg_threshold: float = 60.0) -> Reading:
    """Read objects back from an RGB image (HxWx3 uint8 array or PIL image)."""
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    if img.shape[0] != IMAGE_SIZE or img.shape[1] != IMAGE_SIZE:
        from PIL import Image

        img = np.asarray(Image.fromarray(img.astype(np.uint8)).resize((IMAGE_SIZE, IMAGE_SIZE), Image.BOX))
    imgf = img.astype(np.float64)
    bg = dominant_color(img)
    dist = np.sqrt(np.sum((imgf - bg[None, None]) ** 2, axis=2))
    mask = dist > fg_threshold
    reading = Reading(background=nearest_palette(bg), bg_rgb=tuple(float(c) for c in bg))
    for ys, xs in connected_components(mask):
        if len(ys) < min_area * 0.5:
            continue
        comp = np.zeros(mask.shape, dtype=bool)
        comp[ys, xs] = True
        # core pixels: component pixels whose 4 neighbours are in the component
        core = comp.copy()
        core[1:, :] &= comp[:-1, :]
        core[:-1, :] &= comp[1:, :]
        core[:, 1:] &= comp[:, :-1]
        core[:, :-1] &= comp[:, 1:]
        src = core if core.sum() >= 3 else comp
        col = np.median(imgf[src], axis=0)
        # coverage alpha over a 1-px dilated window
        y0, y1 = max(ys.min() - 1, 0), min(ys.max() + 2, mask.shape[0])
        x0, x1 = max(xs.min() - 1, 0), min(xs.max() + 2, mask.shape[1])
        crop = imgf[y0:y1, x0:x1]
        d = col - bg
        dd = float(np.dot(d, d))
        if dd < 1e-6:
            continue
        alpha = np.clip(((crop - bg[None, None]) @ d) / dd, 0.0, 1.0)
        # only the pixels of this component (and its 1-px ring) count
        ring = np.zeros_like(comp)
        ring[ys, xs] = True
        ring2 = ring.copy()
        ring2[1:, :] |= ring[:-1, :]
        ring2[:-1, :] |= ring[1:, :]
        ring2[:, 1:] |= ring[:, :-1]
        ring2[:, :-1] |= ring[:, 1:]
        alpha = alpha * ring2[y0:y1, x0:x1]
        area = float(alpha.sum())
        if area < min_area:
            continue
        width = float(alpha.max(axis=0).sum())
        height = float(alpha.max(axis=1).sum())
        fill = area / max(width * height, 1e-6)
        shape = _classify_shape(alpha, fill)
        if shape == "circle":
            half = float(np.sqrt(area / np.pi))
        elif shape == "square":
            half = float(np.sqrt(area) / 2.0)
        else:
            half = float(np.sqrt(area / 2.0))
        cols = np.nonzero(alpha.max(axis=0) > 0.5)[0]
        rws = np.nonzero(alpha.max(axis=1) > 0.5)[0]
        if len(cols) == 0 or len(rws) == 0:
            continue
        # sub-pixel extents: partial coverage of the border rows/cols
        colmax = alpha.max(axis=0)
        rowmax = alpha.max(axis=1)
        # (a partially covered neighbour row/column extends the extent by its coverage)
        left = x0 + cols[0] - (colmax[cols[0] - 1] if cols[0] > 0 else 0)
        right = x0 + cols[-1] + 1 + (colmax[cols[-1] + 1] if cols[-1] + 1 < len(colmax) else 0)
        top = y0 + rws[0] - (rowmax[rws[0] - 1] if rws[0] > 0 else 0)
        bottom = y0 + rws[-1] + 1 + (rowmax[rws[-1] + 1] if rws[-1] + 1 < len(rowmax) else 0)
        cx = (left + right) / 2.0
        cy = (top + bottom) / 2.0
        gy, gx = np.mgrid[y0:y1, x0:x1]
        centroid = (float((alpha * (gx + 0.5)).sum() / area), float((alpha * (gy + 0.5)).sum() / area))
        third = IMAGE_SIZE / 3.0
        reading.objects.append(
            Detected(
                shape=shape,
                color=nearest_palette(col),
                size="large" if half >= SIZE_THRESHOLD else "small",
                col=int(np.clip(cx // third, 0, 2)),
                row=int(np.clip(cy // third, 0, 2)),
                cx=float(cx),
                cy=float(cy),
                centroid=centroid,
                half=half,
                area=area,
                fill=fill,
                rgb=tuple(float(c) for c in col),
                hue=rgb_hue(col),
                n_pixels=int(len(ys)),
            )
        )
    reading.objects.sort(key=lambda o: -o.area)
    return reading


def relation_of(a, b) -> str:
    """Spatial relation of object a to object b by the dominant centre offset."""
    dx, dy = a.cx - b.cx, a.cy - b.cy
    if abs(dx) >= abs(dy):
        return "left of" if dx < 0 else "right of"
    return "above" if dy < 0 else "below"


def match_scene(reading: Reading, scene) -> dict:
    """Compare a reading with a ground-truth scene -> per-factor booleans."""
    out = {"count": len(reading.objects) == len(scene.objects), "background": reading.background == scene.background}
    if len(scene.objects) == 1:
        o = scene.objects[0]
        d = reading.objects[0] if reading.objects else None
        for k in ("shape", "color", "size", "col", "row"):
            out[k] = d is not None and getattr(d, k) == getattr(o, k)
        return out
    # two objects: greedy match by position
    dets = list(reading.objects[:4])
    for i, o in enumerate(scene.objects):
        best = None
        if dets:
            best = min(dets, key=lambda d: (d.cx - o.cx) ** 2 + (d.cy - o.cy) ** 2)
            dets.remove(best)
        for k in ("shape", "color", "size", "col", "row"):
            out[f"{k}{i}"] = best is not None and getattr(best, k) == getattr(o, k)
    if len(reading.objects) >= 2:
        a = min(reading.objects, key=lambda d: (d.cx - scene.objects[0].cx) ** 2 + (d.cy - scene.objects[0].cy) ** 2)
        b = min((d for d in reading.objects if d is not a),
                key=lambda d: (d.cx - scene.objects[1].cx) ** 2 + (d.cy - scene.objects[1].cy) ** 2)
        out["relation"] = relation_of(a, b) == scene.relation
    else:
        out["relation"] = False
    return out


__all__ = ["Detected", "Reading", "read_image", "nearest_palette", "relation_of", "match_scene", "rgb_hue",
           "CELL_CENTERS"]
