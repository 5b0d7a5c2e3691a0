"""Edit quality on the Shapes world, read back with the ShapeEval scorer (numpy only).

For one direction and one base latent, the slider is swept; every decoded frame is read
back into factors (x, y, size, hue, background, shape); the sweep's selectivity and
monotonicity come from :mod:`studio.plugin_kit.latent.metrics`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from studio.plugin_kit.latent import metrics
from studio.plugin_kit.shapes import scorer, world

FACTORS = ("x", "y", "size", "hue", "background", "shape")
NORMS = {"x": 40.0, "y": 40.0, "size": 7.0, "hue": 0.8, "background": 1.0, "shape": 1.0}
CATEGORICAL = ("background", "shape")
SHAPE_ID = {"circle": 0, "square": 1, "triangle": 2}
#: the world's range of each continuous factor, in its own units
WORLD_RANGE = {"x": world.CONT_X, "y": world.CONT_Y, "size": world.CONT_HALF, "hue": world.CONT_HUE}
#: which read-back factor a shipped direction name targets
TARGET_OF = {"x": "x", "y": "y", "size": "size", "hue": "hue", "background": "background",
             "shape_circle": "shape", "shape_square": "shape", "shape_triangle": "shape"}


def read_factors(image) -> dict | None:
    reading = scorer.read_image(np.asarray(image))
    if not reading.objects:
        return None
    o = reading.objects[0]
    hue = o.hue - 1.0 if o.hue > 0.9 else o.hue  # red wraps around
    return {"x": o.cx, "y": o.cy, "size": o.half, "hue": hue,
            "background": 1.0 if reading.background == "white" else 0.0, "shape": SHAPE_ID[o.shape],
            "objects": len(reading.objects)}


def scene_factors(f: dict) -> dict:
    """Ground-truth factors of :func:`world.sample_continuous_scene` in read-back naming."""
    return {"x": f["x"], "y": f["y"], "size": f["half"], "hue": f["hue"],
            "background": 1.0 if f["background"] == "white" else 0.0, "shape": SHAPE_ID[f["shape"]]}


def sweep_amounts(name: str, base_reading: dict | None, slider_range: tuple[float, float],
                  points: int) -> np.ndarray:
    """Slider amounts for a sweep.  Named continuous factors sweep the target across the
    world's range (margin 10%) from wherever the base is; others sweep +-half the slider range."""
    target = TARGET_OF.get(name)
    if target in WORLD_RANGE and base_reading is not None:
        lo, hi = WORLD_RANGE[target]
        m = 0.1 * (hi - lo)
        return np.linspace(lo + m, hi - m, points) - base_reading[target]
    lo, hi = slider_range
    mid, half = (lo + hi) / 2.0, (hi - lo) / 4.0
    return np.linspace(mid - half, mid + half, points)


def sweep_quality(decode: Callable[[np.ndarray], np.ndarray], base: np.ndarray, offsets: np.ndarray,
                  amounts: Sequence[float], name: str) -> dict | None:
    """``decode([N, D]) -> uint8 [N, H, W, 3]``; ``offsets`` is the latent move per slider unit."""
    zs = np.stack([base + a * offsets for a in amounts]).astype(np.float32)
    readings = [read_factors(im) for im in decode(zs)]
    if any(r is None for r in readings):
        return None
    traj = {f: [r[f] for r in readings] for f in FACTORS}
    target = TARGET_OF.get(name)
    if target is None:  # unsupervised: the factor it moves most is its target
        tvs = {f: metrics.total_variation(traj[f], NORMS[f], f in CATEGORICAL) for f in FACTORS}
        target = max(tvs, key=tvs.get)
    sel = metrics.selectivity(traj, target, NORMS, CATEGORICAL)
    mono = None if target == "shape" else metrics.monotonicity(amounts, traj[target])
    return {"target": target, "selectivity": sel, "monotonicity": mono}


def summarise(rows: list[dict | None]) -> dict:
    ok = [r for r in rows if r is not None]
    if not ok:
        return {"target": "?", "selectivity": 0.0, "monotonicity": None, "grade": "entangled",
                "failed": len(rows), "n": len(rows)}
    targets = [r["target"] for r in ok]
    target = max(set(targets), key=targets.count)
    # failed read-backs (the object left the frame or vanished) count as zero selectivity
    sel = float(np.sum([r["selectivity"] for r in ok]) / len(rows))
    monos = [r["monotonicity"] for r in ok if r["monotonicity"] is not None and r["target"] == target]
    mono = float(np.mean(monos)) if monos else None
    return {"target": target, "selectivity": sel, "monotonicity": mono, "grade": metrics.grade(sel, mono),
            "failed": len(rows) - len(ok), "n": len(rows)}
