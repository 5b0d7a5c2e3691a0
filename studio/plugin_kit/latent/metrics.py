"""How good an edit or a walk is (numpy only).

* :func:`psnr` - reconstruction quality, dB, 8-bit images.
* :func:`walk_smoothness` - frame-to-frame change of a walk; ``jump_ratio`` = largest step /
  mean step (1 for a perfectly even walk; a jump shows as a large ratio).
* :func:`selectivity` - of the total change read back along a sweep, the share that lands
  on the target attribute: TV(target) / sum_f TV(f), each attribute's total variation
  normalised by its range (categorical attributes count 1 per flip).
* :func:`monotonicity` - Spearman rank correlation between the slider value and the
  target attribute's read-back (+1: it only ever goes the slider's way).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


def psnr(a: ArrayLike, b: ArrayLike, peak: float = 255.0) -> float:
    fa = np.asarray(a, dtype=np.float64)
    fb = np.asarray(b, dtype=np.float64)
    if fa.shape != fb.shape:
        raise ValueError(f"images differ in shape: {fa.shape} vs {fb.shape}")
    mse = float(np.mean((fa - fb) ** 2))
    if mse <= 0:
        return float("inf")
    return float(10.0 * np.log10(peak * peak / mse))


def frame_steps(frames: Sequence[ArrayLike]) -> NDArray[np.float64]:
    """Mean absolute pixel change between consecutive frames (0..255 units)."""
    arrays = [np.asarray(f, dtype=np.float64) for f in frames]
    return np.array([float(np.mean(np.abs(b - a))) for a, b in zip(arrays[:-1], arrays[1:], strict=True)])


def walk_smoothness(frames: Sequence[ArrayLike]) -> dict[str, float]:
    steps = frame_steps(frames)
    if len(steps) == 0:
        return {"max_step": 0.0, "mean_step": 0.0, "jump_ratio": 1.0}
    mean = float(steps.mean())
    largest = float(steps.max())
    return {"max_step": largest, "mean_step": mean, "jump_ratio": largest / mean if mean > 0 else 1.0}


def _ranks(v: NDArray[np.float64]) -> NDArray[np.float64]:
    order = np.argsort(v, kind="mergesort")
    r = np.empty(len(v))
    r[order] = np.arange(len(v), dtype=np.float64)
    for value in np.unique(v):  # average ties
        m = v == value
        if m.sum() > 1:
            r[m] = r[m].mean()
    return r


def spearman(a: ArrayLike, b: ArrayLike) -> float:
    fa, fb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(fa) != len(fb) or len(fa) < 2:
        raise ValueError("spearman needs two sequences of the same length >= 2")
    ra, rb = _ranks(fa), _ranks(fb)
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def total_variation(values: Sequence[Any], norm: float = 1.0, categorical: bool = False) -> float:
    if categorical:
        return float(sum(1.0 for u, v in zip(values[:-1], values[1:], strict=True) if u != v))
    v = np.asarray(values, dtype=np.float64)
    return float(np.abs(np.diff(v)).sum() / norm)


def selectivity(trajectories: Mapping[str, Sequence[Any]], target: str, norms: Mapping[str, float],
                categorical: Sequence[str] = ()) -> float:
    tvs = {k: total_variation(v, norms.get(k, 1.0), k in categorical) for k, v in trajectories.items()}
    total = sum(tvs.values())
    return tvs.get(target, 0.0) / total if total > 0 else 0.0


def monotonicity(slider_values: Sequence[float], readback: Sequence[float]) -> float:
    return spearman(slider_values, readback)


def grade(selectivity_value: float, monotonicity_value: float | None) -> str:
    """A one-word verdict for the panel: clean / fair / entangled."""
    mono = 1.0 if monotonicity_value is None else abs(monotonicity_value)
    if selectivity_value >= 0.8 and mono >= 0.9:
        return "clean"
    if selectivity_value >= 0.5 and mono >= 0.7:
        return "fair"
    return "entangled"
