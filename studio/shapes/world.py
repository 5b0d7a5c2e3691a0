"""The Shapes world: factors, deterministic sampling and a numpy/PIL renderer.

A scene is a 64x64 image with a flat background colour and one or two flat
objects.  Every scene keeps its ground-truth factors (``Scene`` / ``Obj``), so a
caption can be written from it and a generated image can be scored against it.

Discrete factors (the text-to-image world):

* shape:    circle, square, triangle
* colour:   red, green, blue, yellow, purple, orange, white, black
* size:     small, large
* position: column (left/center/right) x row (top/middle/bottom)
* relation (two objects): left of, right of, above, below

Continuous scenes (the vector-VAE world) use the same renderer with a free
centre, half-size and hue (see :func:`sample_continuous_scene`).

Pure numpy + PIL; importing this module has no side effects.
"""
from __future__ import annotations

import colorsys
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 64
SUPERSAMPLE = 4

SHAPES = ("circle", "square", "triangle")

PALETTE = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 70, 230),
    "yellow": (245, 220, 30),
    "purple": (145, 45, 190),
    "orange": (250, 140, 20),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
}
COLORS = tuple(PALETTE)

SIZES = ("small", "large")
#: nominal half-size (pixels) of an object's bounding box for each size
SIZE_HALF = {"small": 5.0, "large": 9.5}
#: half-size threshold between small and large (used by the scorer)
SIZE_THRESHOLD = 7.25

COLUMNS = ("left", "center", "right")
ROWS = ("top", "middle", "bottom")
#: centre coordinate (pixels) of each third along an axis
CELL_CENTERS = (11.0, 32.0, 53.0)

RELATIONS = ("left of", "right of", "above", "below")
INVERSE_RELATION = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}


@dataclass(frozen=True)
class Obj:
    """One object with its ground-truth factors and exact geometry."""

    shape: str
    color: str
    size: str
    col: int  # 0..2 (left, center, right)
    row: int  # 0..2 (top, middle, bottom)
    cx: float  # bounding-box centre, pixels
    cy: float
    half: float  # half of the bounding-box side, pixels
    rgb: tuple = ()  # explicit colour; defaults to PALETTE[color]

    @property
    def fill(self) -> tuple:
        return tuple(self.rgb) if self.rgb else PALETTE[self.color]

    @property
    def column_name(self) -> str:
        return COLUMNS[self.col]

    @property
    def row_name(self) -> str:
        return ROWS[self.row]


@dataclass(frozen=True)
class Scene:
    """A whole scene: background + objects (+ relation of objects[0] to objects[1])."""

    background: str
    objects: tuple
    relation: str | None = None
    bg_rgb: tuple = ()
    seed: int | None = field(default=None, compare=False)

    @property
    def bg(self) -> tuple:
        return tuple(self.bg_rgb) if self.bg_rgb else PALETTE[self.background]

    def factors(self) -> dict:
        """Plain-dict ground truth (JSON friendly)."""
        return {
            "background": self.background,
            "relation": self.relation,
            "objects": [
                {
                    "shape": o.shape,
                    "color": o.color,
                    "size": o.size,
                    "column": o.column_name,
                    "row": o.row_name,
                    "cx": o.cx,
                    "cy": o.cy,
                    "half": o.half,
                }
                for o in self.objects
            ],
        }


# ---------------------------------------------------------------------------
# rendering


def _shape_outline(shape: str, cx: float, cy: float, half: float, s: int):
    """Outline in super-sampled pixel coordinates (PIL convention: pixel i covers [i, i+1))."""
    x0, y0, x1, y1 = (cx - half) * s, (cy - half) * s, (cx + half) * s, (cy + half) * s
    if shape == "circle":
        return ("ellipse", [x0, y0, x1 - 1, y1 - 1])
    if shape == "square":
        return ("rectangle", [x0, y0, x1 - 1, y1 - 1])
    if shape == "triangle":
        return ("polygon", [((x0 + x1) / 2.0, y0), (x1, y1), (x0, y1)])
    raise ValueError(f"unknown shape {shape!r}")


def render(scene: Scene, size: int = IMAGE_SIZE) -> np.ndarray:
    """Render ``scene`` to a uint8 HxWx3 array (deterministic, anti-aliased)."""
    s = SUPERSAMPLE
    scale = size / IMAGE_SIZE
    img = Image.new("RGB", (size * s, size * s), tuple(int(c) for c in scene.bg))
    draw = ImageDraw.Draw(img)
    for o in scene.objects:
        kind, geom = _shape_outline(o.shape, o.cx * scale, o.cy * scale, o.half * scale, s)
        fill = tuple(int(c) for c in o.fill)
        if kind == "ellipse":
            draw.ellipse(geom, fill=fill)
        elif kind == "rectangle":
            draw.rectangle(geom, fill=fill)
        else:
            draw.polygon(geom, fill=fill)
    img = img.resize((size, size), Image.BOX)
    return np.asarray(img, dtype=np.uint8).copy()


def render_pil(scene: Scene, size: int = IMAGE_SIZE) -> Image.Image:
    return Image.fromarray(render(scene, size))


# ---------------------------------------------------------------------------
# held-out split


def scene_key(scene: Scene) -> str:
    """Canonical string of the discrete factors (what the held-out split hashes)."""
    parts = [scene.background]
    for o in scene.objects:
        parts.append(f"{o.shape}/{o.color}/{o.size}/{o.col}{o.row}")
    if scene.relation:
        parts.append(scene.relation)
    return "|".join(parts)


def combo_key(scene: Scene) -> str:
    """Key that decides held-out status.

    Single object: (shape, colour, size, position, background).  Two objects:
    the unordered pair of (colour, shape) items, so a held-out two-object
    prompt names two coloured objects that never appear together in training
    (in any order or relation).
    """
    if len(scene.objects) == 1:
        return "1:" + scene_key(scene)
    a, b = sorted(f"{o.color}/{o.shape}" for o in scene.objects[:2])
    return f"2:{a}|{b}"


HELDOUT_MOD = 10


def is_heldout(scene: Scene) -> bool:
    """~10% of factor combinations never appear in training (stable crc32 hash)."""
    return zlib.crc32(combo_key(scene).encode("utf-8")) % HELDOUT_MOD == 0


# ---------------------------------------------------------------------------
# sampling (discrete world)


def _rng(seed_or_rng) -> np.random.Generator:
    if isinstance(seed_or_rng, np.random.Generator):
        return seed_or_rng
    return np.random.default_rng(seed_or_rng)


def make_object(shape: str, color: str, size: str, col: int, row: int, jitter=(0.0, 0.0, 0.0)) -> Obj:
    jx, jy, jh = jitter
    return Obj(
        shape=shape,
        color=color,
        size=size,
        col=int(col),
        row=int(row),
        cx=CELL_CENTERS[col] + jx,
        cy=CELL_CENTERS[row] + jy,
        half=SIZE_HALF[size] + jh,
    )


def _choice(rng, seq, exclude=()):
    opts = [x for x in seq if x not in exclude]
    return opts[int(rng.integers(len(opts)))]


def sample_single(rng, jitter: bool = True, **fixed) -> Scene:
    """Sample a one-object scene; any factor may be fixed by keyword
    (shape, color, size, col, row, background)."""
    rng = _rng(rng)
    shape = fixed.get("shape") or _choice(rng, SHAPES)
    color = fixed.get("color") or _choice(rng, COLORS, exclude=(fixed.get("background"),))
    background = fixed.get("background") or _choice(rng, COLORS, exclude=(color,))
    size = fixed.get("size") or _choice(rng, SIZES)
    col = fixed["col"] if fixed.get("col") is not None else int(rng.integers(3))
    row = fixed["row"] if fixed.get("row") is not None else int(rng.integers(3))
    j = (0.0, 0.0, 0.0)
    if jitter:
        j = (float(rng.uniform(-1.5, 1.5)), float(rng.uniform(-1.5, 1.5)), float(rng.uniform(-0.5, 0.5)))
    return Scene(background=background, objects=(make_object(shape, color, size, col, row, j),))


def _cells_for_relation(rng, relation: str):
    """(col,row) for object A and B such that A <relation> B, same row/column."""
    if relation in ("left of", "right of"):
        row = int(rng.integers(3))
        ca, cb = sorted(rng.choice(3, size=2, replace=False).tolist())
        if relation == "right of":
            ca, cb = cb, ca
        return (ca, row), (cb, row)
    col = int(rng.integers(3))
    ra, rb = sorted(rng.choice(3, size=2, replace=False).tolist())
    if relation == "below":
        ra, rb = rb, ra
    return (col, ra), (col, rb)


def _gap(a: Obj, b: Obj) -> float:
    gx = abs(a.cx - b.cx) - a.half - b.half
    gy = abs(a.cy - b.cy) - a.half - b.half
    return max(gx, gy)


def sample_pair(rng, jitter: bool = True, **fixed) -> Scene:
    """Sample a two-object scene with a relation (objects[0] <relation> objects[1]).

    Fixable keywords: shape_a, color_a, size_a, shape_b, color_b, size_b,
    relation, background, distinct_shapes (bool), distinct_colors (bool)."""
    rng = _rng(rng)
    relation = fixed.get("relation") or _choice(rng, RELATIONS)
    bgfix = fixed.get("background")
    shape_a = fixed.get("shape_a") or _choice(rng, SHAPES)
    excl_shape = (shape_a,) if fixed.get("distinct_shapes") else ()
    shape_b = fixed.get("shape_b") or _choice(rng, SHAPES, exclude=excl_shape)
    color_a = fixed.get("color_a") or _choice(rng, COLORS, exclude=(bgfix,))
    excl_col = (bgfix, color_a) if fixed.get("distinct_colors") else (bgfix,)
    color_b = fixed.get("color_b") or _choice(rng, COLORS, exclude=excl_col)
    background = bgfix or _choice(rng, COLORS, exclude=(color_a, color_b))
    size_a = fixed.get("size_a") or _choice(rng, SIZES)
    size_b = fixed.get("size_b") or _choice(rng, SIZES)
    (ca, ra), (cb, rb) = _cells_for_relation(rng, relation)
    for _ in range(20):
        ja = jb = (0.0, 0.0, 0.0)
        if jitter:
            ja = tuple(float(v) for v in rng.uniform([-1.5, -1.5, -0.5], [1.5, 1.5, 0.5]))
            jb = tuple(float(v) for v in rng.uniform([-1.5, -1.5, -0.5], [1.5, 1.5, 0.5]))
        a = make_object(shape_a, color_a, size_a, ca, ra, ja)
        b = make_object(shape_b, color_b, size_b, cb, rb, jb)
        if _gap(a, b) >= 3.0:
            break
    else:  # fall back to no jitter and shrink if needed
        a = make_object(shape_a, color_a, size_a, ca, ra)
        b = make_object(shape_b, color_b, size_b, cb, rb)
    return Scene(background=background, objects=(a, b), relation=relation)


def sample_scene(rng, p_pair: float = 0.5, jitter: bool = True, split: str = "any") -> Scene:
    """Sample a scene; ``split`` is "train" (never held-out), "heldout" or "any"."""
    rng = _rng(rng)
    while True:
        if rng.random() < p_pair:
            scene = sample_pair(rng, jitter=jitter)
        else:
            scene = sample_single(rng, jitter=jitter)
        if split == "any" or (split == "train") != is_heldout(scene):
            return scene


# ---------------------------------------------------------------------------
# continuous world (vector VAE)

#: backgrounds used by the vector-VAE world
CONT_BACKGROUNDS = ("black", "white")
CONT_X = (12.0, 52.0)
CONT_Y = (12.0, 52.0)
CONT_HALF = (4.0, 11.0)
#: hue range of the continuous world: red -> yellow -> green -> cyan -> blue -> purple
#: (no wrap-around, so hue is a linear factor)
CONT_HUE = (0.0, 0.8)
CONT_SAT = 0.85
CONT_VAL = 0.95


def hue_to_rgb(hue: float) -> tuple:
    r, g, b = colorsys.hsv_to_rgb(float(hue) % 1.0, CONT_SAT, CONT_VAL)
    return (int(round(r * 255)), int(round(g * 255)), int(round(b * 255)))


def nearest_color_name(rgb: Sequence[float]) -> str:
    rgb = np.asarray(rgb, dtype=np.float64)
    names = list(PALETTE)
    d = [float(np.sum((rgb - np.asarray(PALETTE[n])) ** 2)) for n in names]
    return names[int(np.argmin(d))]


def continuous_object(shape: str, cx: float, cy: float, half: float, hue: float) -> Obj:
    rgb = hue_to_rgb(hue)
    col = int(np.clip(np.floor(cx / (IMAGE_SIZE / 3.0)), 0, 2))
    row = int(np.clip(np.floor(cy / (IMAGE_SIZE / 3.0)), 0, 2))
    size = "large" if half >= SIZE_THRESHOLD else "small"
    return Obj(shape=shape, color=nearest_color_name(rgb), size=size, col=col, row=row,
               cx=float(cx), cy=float(cy), half=float(half), rgb=rgb)


def sample_continuous_scene(rng) -> tuple:
    """One object with continuous x, y, half-size and hue on a black/white background.

    Returns (scene, factors) where factors = dict(shape, x, y, half, hue, background)."""
    rng = _rng(rng)
    shape = _choice(rng, SHAPES)
    cx = float(rng.uniform(*CONT_X))
    cy = float(rng.uniform(*CONT_Y))
    half = float(rng.uniform(*CONT_HALF))
    hue = float(rng.uniform(*CONT_HUE))
    bg = _choice(rng, CONT_BACKGROUNDS)
    obj = continuous_object(shape, cx, cy, half, hue)
    scene = Scene(background=bg, objects=(obj,))
    return scene, {"shape": shape, "x": cx, "y": cy, "half": half, "hue": hue, "background": bg}


def with_objects(scene: Scene, objects) -> Scene:
    return replace(scene, objects=tuple(objects))
