"""Edit quality of diffusion edits on held-out *drawn* scenes, read back with ShapeEval
(numpy + PIL; the edit itself is a callable).

The scenes are drawn here with PIL -- not rendered by the Shapes world the built-in model was
trained on: jittered colours, free positions and sizes, and every other scene without
anti-aliasing.  For each scene and each measured edit the strength is swept; every image is read
back (``studio.shapes.scorer``) into colour, shape, position, size and background, and scored:

* **reconstruction** (strength 0): PSNR against the drawing, and whether colour, shape, position
  (within ``POSITION_TOL`` px) and background read back unchanged;
* **success** at strength 1: the target attribute reached and the others kept;
* **selectivity**: of the normalised change along the sweep, the share on the target attribute;
* **monotonicity**: Spearman of strength vs. progress toward the target (colour: the share of
  the way from the old to the new colour in RGB; shape: 1 once the shape reads as the target).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from studio.plugin_kit.latent import metrics
from studio.plugin_kit.shapes import scorer, world

COLORS = ("red", "green", "blue", "yellow", "purple", "orange")
SHAPES = ("circle", "square", "triangle")
BACKGROUNDS = ("black", "white")
#: what ``studio latent quality`` measures by default: a colour, a shape and a background edit
DEFAULT_CASES = ("red->blue", "circle->square", "black background->white background")
POSITION_TOL = 4.0
SIZE_TOL = 3.0
NORMS = {"x": 40.0, "y": 40.0, "size": 7.0, "color": 1.0, "background": 1.0, "shape": 1.0}
CATEGORICAL = ("color", "background", "shape")


@dataclass
class Drawn:
    image: Image.Image
    shape: str
    color: str
    background: str
    cx: float
    cy: float
    half: float

    @property
    def prompt(self) -> str:
        return f"a {self.color} {self.shape} on a {self.background} background"


def draw_scene(rng: np.random.Generator, shape: str | None = None, color: str | None = None,
               antialias: bool = True, size: int = 64, background: str | None = None) -> Drawn:
    """One object on a flat background, drawn with PIL (jittered colours, free placement)."""
    shape = shape or str(rng.choice(SHAPES))
    color = color or str(rng.choice(COLORS))
    drawn_background = "white" if rng.random() < 0.35 else "black"
    background = background or drawn_background
    half = float(rng.uniform(7.5, 13.0))
    cx, cy = (float(rng.uniform(half + 4, size - half - 4)) for _ in range(2))
    jitter = rng.integers(-18, 19, 3)
    rgb = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(world.PALETTE[color], jitter, strict=True))
    bg = (int(rng.integers(0, 25)),) * 3 if background == "black" else (int(rng.integers(232, 256)),) * 3
    s = 4 if antialias else 1
    canvas = Image.new("RGB", (size * s, size * s), bg)
    d = ImageDraw.Draw(canvas)
    box = [(cx - half) * s, (cy - half) * s, (cx + half) * s, (cy + half) * s]
    if shape == "circle":
        d.ellipse(box, fill=rgb)
    elif shape == "square":
        d.rectangle(box, fill=rgb)
    else:
        d.polygon([(cx * s, (cy - half) * s), ((cx - half) * s, (cy + half) * s), ((cx + half) * s, (cy + half) * s)],
                  fill=rgb)
    image = canvas.resize((size, size), Image.Resampling.LANCZOS) if s > 1 else canvas
    return Drawn(image, shape, color, background, cx, cy, half)


def read(image: Image.Image) -> dict | None:
    r = scorer.read_image(np.asarray(image))
    if not r.objects:
        return None
    o = r.objects[0]
    return {"color": o.color, "shape": o.shape, "x": o.cx, "y": o.cy, "size": o.half, "rgb": np.array(o.rgb),
            "background": r.background, "objects": len(r.objects)}


def kept(a: dict | None, b: dict | None, ignore: Sequence[str] = ()) -> dict[str, bool]:
    """Which attributes of reading ``a`` reading ``b`` keeps (``ignore``: the edited ones)."""
    if a is None or b is None:
        return {k: False for k in ("color", "shape", "position", "size", "background", "count")}
    out = {"color": a["color"] == b["color"], "shape": a["shape"] == b["shape"],
           "position": abs(a["x"] - b["x"]) <= POSITION_TOL and abs(a["y"] - b["y"]) <= POSITION_TOL,
           "size": abs(a["size"] - b["size"]) <= SIZE_TOL, "background": a["background"] == b["background"],
           "count": a["objects"] == b["objects"]}
    return {k: v for k, v in out.items() if k not in ignore}


def progress(reading: dict | None, attribute: str, start: dict, target: str) -> float:
    """How far ``reading`` has gone from ``start`` toward ``target`` (0..1)."""
    if reading is None:
        return 0.0
    if attribute in ("shape", "background"):
        return 1.0 if reading[attribute] == target else 0.0
    a, b = start["rgb"], np.array(world.PALETTE[target], dtype=np.float64)
    da, db = np.linalg.norm(reading["rgb"] - a), np.linalg.norm(reading["rgb"] - b)
    return float(da / max(da + db, 1e-9))


def trajectory(readings: Sequence[dict | None]) -> dict[str, list]:
    ok = [r for r in readings if r is not None]
    return {"x": [r["x"] for r in ok], "y": [r["y"] for r in ok], "size": [r["size"] for r in ok],
            "color": [r["color"] for r in ok], "background": [r["background"] for r in ok],
            "shape": [r["shape"] for r in ok]}


@dataclass
class EditCase:
    """A text edit to measure: "FROM->TO" on the attribute it names ("black background->white
    background": the background; the pair is the words the edit replaces)."""

    source: str
    target: str
    attribute: str = "color"

    @property
    def label(self) -> str:
        suffix = " background" if self.attribute == "background" else ""
        return f"{self.source}{suffix}->{self.target}{suffix}"

    @property
    def words(self) -> tuple[str, str]:
        """(FROM, TO) as the edit gets them."""
        a, b = self.label.split("->")
        return a, b


def parse_case(text: str) -> EditCase:
    a, _, b = text.partition("->")
    a, b = a.strip().lower(), b.strip().lower()
    if a.endswith(" background") and b.endswith(" background"):
        a, b = a.removesuffix(" background").strip(), b.removesuffix(" background").strip()
        if a in BACKGROUNDS and b in BACKGROUNDS and a != b:
            return EditCase(a, b, "background")
    elif a in SHAPES and b in SHAPES:
        return EditCase(a, b, "shape")
    elif a in world.PALETTE and b in world.PALETTE:
        return EditCase(a, b, "color")
    raise ValueError(f"{text!r}: quality is measured for colour, shape or background pairs of the Shapes world "
                     f"(e.g. red->blue, circle->square, black background->white background).")


#: edit(image, prompt, pairs=[(from, to, strength)]) -> (edited image, reconstruction PSNR)
EditFn = Callable[[Image.Image, str, list], tuple[Image.Image, float]]


def measure_reconstruction(edit: EditFn, scenes: Sequence[Drawn], prompted: bool) -> dict:
    psnrs, unchanged = [], []
    for sc in scenes:
        out, value = edit(sc.image, sc.prompt if prompted else "", [])
        psnrs.append(value)
        k = kept(read(sc.image), read(out), ignore=("size", "count"))
        unchanged.append(all(k.values()))
    return {"n": len(scenes), "median_psnr": float(np.median(psnrs)), "min_psnr": float(np.min(psnrs)),
            "unchanged": float(np.mean(unchanged))}


def measure_edit(edit: EditFn, case: EditCase, scenes: Sequence[Drawn], strengths: Sequence[float],
                 prompted: bool) -> dict:
    success, sels, monos, failures = [], [], [], {}
    for sc in scenes:
        start = read(sc.image)
        if start is None:
            continue
        readings = []
        for s in strengths:
            out, _ = edit(sc.image, sc.prompt if prompted else "", [(*case.words, float(s))])
            readings.append(read(out))
        full = readings[list(strengths).index(1.0)] if 1.0 in strengths else readings[-1]
        reached = full is not None and full[case.attribute] == case.target
        others = kept(start, full, ignore=(case.attribute, "size"))
        ok = reached and all(others.values())
        success.append(ok)
        if not ok:
            why = "target not reached" if not reached else "lost " + ", ".join(k for k, v in others.items() if not v)
            failures[why] = failures.get(why, 0) + 1
        traj = trajectory(readings)
        if len(traj["x"]) >= 2:
            sels.append(metrics.selectivity(traj, case.attribute, NORMS, CATEGORICAL))
        prog = [progress(r, case.attribute, start, case.target) for r in readings]
        monos.append(metrics.monotonicity(strengths, prog))
    n = len(success)
    sel = float(np.mean(sels)) if sels else 0.0
    mono = float(np.mean(monos)) if monos else None
    return {"edit": case.label, "n": n, "success": float(np.mean(success)) if n else 0.0, "selectivity": sel,
            "monotonicity": mono, "grade": metrics.grade(sel, mono), "failures": failures,
            "strengths": list(strengths)}


def scenes_for(case: EditCase | None, count: int, seed: int) -> list[Drawn]:
    """``count`` drawn scenes; for an edit case, scenes that hold its source attribute."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        kwargs: dict = {}
        if case is not None:
            kwargs = {case.attribute: case.source}
            if case.attribute == "shape":
                kwargs["color"] = str(rng.choice([c for c in COLORS]))
        out.append(draw_scene(rng, antialias=i % 2 == 0, **kwargs))
    return out
