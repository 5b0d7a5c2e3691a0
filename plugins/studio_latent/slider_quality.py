"""How good is one edit slider? A short strength sweep, measured (numpy + PIL; the edit is a callable).

Every slider of the diffusion editor -- a prompt pair, a concept, a text-embedding or h-space
direction ("PC n") -- is swept over a few strengths on an image and each result compared with the
reconstruction (strength 0).  Figures any model gets:

* **area**: the share of the picture that visibly changes at the strongest setting (a pixel whose
  colour moves by more than ``VISIBLE`` in some channel);
* **inside**: for edits with an implicit mask, the share of all the change that lies inside the
  mask -- how well the edit stays where it is about (1 = nothing outside moved);
* **steady**: of all the movement of the mean change along the sweep, the share that goes forward
  minus the share that goes back (-1..1): 1 when the picture only ever changes more as the slider
  moves (an edit that is complete at 0.5 and then holds still counts as steady, where a rank
  correlation would call its flat tail noise), lower when it jumps back and forth.

On the built-in Shapes model the results are also read back with ShapeEval (colour, shape,
position, size, background; :mod:`diffusion_quality`): **selectivity** is the share of the
read-back change on the edit's attribute -- the named one for a colour or shape pair, otherwise the
attribute that changed most (reported, so a "PC 3" can be named) -- and **monotonicity** is the
same forward-minus-back share of the progress on that attribute.  A sweep that changes fewer than
``NO_EFFECT`` of the pixels is graded "no visible change" whatever its read-backs say.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from studio.plugin_kit.latent import metrics

from . import diffusion_quality as dq

#: the default sweep (strength 0 is the reconstruction itself and costs no model call)
SWEEP = (0.0, 0.5, 1.0, 1.5, 2.0)
#: a pixel "visibly changed" when one of its channels moved by more than this (0..1)
VISIBLE = 24 / 255
#: below this share of visibly changed pixels an edit is "no visible change"
NO_EFFECT = 0.005
#: continuous read-backs for the steadiness of a categorical attribute's change
ATTRIBUTE_WORDS = {"color": "colour", "shape": "shape", "x": "position", "y": "position", "size": "size",
                   "background": "background"}


@dataclass
class SweepPoint:
    strength: float
    image: Image.Image
    #: the edit's implicit mask at image size (0..1), when it has one
    mask: np.ndarray | None = None


#: edit_at(strength) -> (image, mask or None)
EditAt = Callable[[float], tuple[Image.Image, "np.ndarray | None"]]


def sweep(edit_at: EditAt, strengths: Sequence[float]) -> list[SweepPoint]:
    return [SweepPoint(float(s), *edit_at(float(s))) for s in strengths]


def steadiness(values: Sequence[float]) -> float | None:
    """(forward movement - backward movement) / all movement along ``values``; None if they never move."""
    steps = np.diff(np.asarray(values, dtype=np.float64))
    forward, back = float(steps[steps > 0].sum()), float(-steps[steps < 0].sum())
    return None if forward + back <= 1e-12 else (forward - back) / (forward + back)


def _ordered(points: Sequence[SweepPoint], values: Sequence[float]) -> list[float]:
    """``values`` in order of growing |strength|."""
    order = sorted(range(len(points)), key=lambda i: abs(points[i].strength))
    return [values[i] for i in order]


def pixel_figures(points: Sequence[SweepPoint], reconstruction: Image.Image) -> dict[str, Any]:
    """area, inside and steady (see the module docstring) against ``reconstruction``."""
    base = np.asarray(reconstruction.convert("RGB"), dtype=np.float64) / 255.0
    changes = [np.abs(np.asarray(p.image.convert("RGB"), dtype=np.float64) / 255.0 - base) for p in points]
    strengths = [abs(p.strength) for p in points]
    strongest = int(np.argmax(strengths))
    per_pixel = changes[strongest].mean(axis=2)
    total = float(per_pixel.sum())
    inside = None
    mask = points[strongest].mask
    if mask is not None and total > 0:
        inside = float((per_pixel * mask).sum() / total)
    means = [float(c.mean()) for c in changes]
    steady = steadiness(_ordered(points, means))
    return {"area": float((changes[strongest].max(axis=2) > VISIBLE).mean()), "inside": inside,
            "steady": steady, "change": means[strongest]}


def _attribute_value(reading: dict | None, attribute: str, start: dict) -> float:
    """A number that grows as ``attribute`` moves away from ``start`` (for monotonicity)."""
    if reading is None:
        return 0.0
    if attribute == "color":
        return float(np.linalg.norm(reading["rgb"] - start["rgb"]))
    if attribute in ("x", "y", "size"):
        return abs(float(reading[attribute]) - float(start[attribute]))
    return 0.0 if reading[attribute] == start[attribute] else 1.0


def shapes_figures(points: Sequence[SweepPoint], case: dq.EditCase | None) -> dict[str, Any] | None:
    """selectivity / monotonicity / attribute from ShapeEval read-backs (None when the
    reconstruction does not read as a Shapes scene)."""
    readings = [dq.read(p.image) for p in points]
    base = next((r for p, r in zip(points, readings, strict=True) if p.strength == 0), readings[0])
    if base is None:
        return None
    traj = dq.trajectory(readings)
    if len(traj["x"]) < 2:
        return None
    if case is not None and case.attribute == "color" and base["background"] == case.source != base["color"]:
        attribute = "background"  # "black->white" on a black background names the background, not the object
        prog = [0.0 if r is None else float(r["background"] == case.target) for r in readings]
    elif case is not None:
        attribute = case.attribute
        prog = [dq.progress(r, attribute, base, case.target) for r in readings]
    else:
        tvs = {k: metrics.total_variation(v, dq.NORMS.get(k, 1.0), k in dq.CATEGORICAL) for k, v in traj.items()}
        attribute = max(tvs, key=lambda k: tvs[k]) if any(tvs.values()) else "color"
        prog = [_attribute_value(r, attribute, base) for r in readings]
    sel = metrics.selectivity(traj, attribute, dq.NORMS, dq.CATEGORICAL)
    mono = steadiness(_ordered(points, prog))
    return {"attribute": ATTRIBUTE_WORDS.get(attribute, attribute), "selectivity": sel, "monotonicity": mono,
            "target": case.target if case is not None else None}


def measure(points: Sequence[SweepPoint], reconstruction: Image.Image, scorer: bool,
            case: dq.EditCase | None) -> dict[str, Any]:
    """Every figure of one sweep, and a one-word grade."""
    out = pixel_figures(points, reconstruction)
    read = shapes_figures(points, case) if scorer else None
    if read is not None:
        out.update(read)
        out["grade"] = metrics.grade(read["selectivity"], read["monotonicity"])
    elif out["inside"] is not None:
        out["grade"] = metrics.grade(out["inside"], out["steady"])
    else:
        out["grade"] = "steady" if (out["steady"] or 0) >= 0.9 else "uneven"
    if out["area"] < NO_EFFECT:
        out["grade"] = "no visible change"
    out["scorer"] = "ShapeEval" if read is not None else "pixels"
    return out


def mean_figures(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Figures of several images (e.g. drawn scenes) as one row: means, the most common attribute."""
    out: dict[str, Any] = {"n": len(rows)}
    for key in ("area", "inside", "steady", "change", "selectivity", "monotonicity"):
        values = [r[key] for r in rows if r.get(key) is not None]
        out[key] = float(np.mean(values)) if values else None
    attributes = Counter(r["attribute"] for r in rows if r.get("attribute"))
    out["attribute"] = attributes.most_common(1)[0][0] if attributes else None
    if out["selectivity"] is not None:
        out["grade"] = metrics.grade(out["selectivity"], out["monotonicity"])
        out["scorer"] = "ShapeEval"
    else:
        out["grade"] = (metrics.grade(out["inside"], out["steady"]) if out["inside"] is not None
                        else "steady" if (out["steady"] or 0) >= 0.9 else "uneven")
        out["scorer"] = "pixels"
    if out["area"] is not None and out["area"] < NO_EFFECT:
        out["grade"] = "no visible change"
    return out


def case_for(kind: str, text: str) -> dq.EditCase | None:
    """The ShapeEval case of a colour / shape prompt pair (None for anything else)."""
    if kind != "pair":
        return None
    try:
        return dq.parse_case(text)
    except ValueError:
        return None
