"""Finding directions from examples (numpy only).

* :func:`fit_linear_boundary` - InterFaceGAN: a linear classifier separating latents with a
  binary label; its unit normal is the edit direction.  (Logistic regression with a small L2
  penalty, fitted by Newton's method; for separable data this gives the same normal as the
  paper's linear SVM up to the margin's details.)
* :func:`fit_regression_direction` - a continuous label: the least-squares read-out
  direction (the normal of the level sets of a linear regressor).
* :func:`fit_pca` - GANSpace: the principal axes of sampled latents, with their standard
  deviations (a slider step of 1 = one standard deviation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray


@dataclass
class FittedDirection:
    vector: np.ndarray  # unit vector, [D]
    scale: float  # latent length per slider unit (std of the samples along the vector)
    score: float  # training accuracy (boundary) or R^2 (regression)
    offset: float = 0.0  # decision value at the latent origin (boundary only)


def _latents(z: ArrayLike) -> NDArray[np.float64]:
    latents = np.asarray(z, dtype=np.float64)
    if latents.ndim != 2:
        raise ValueError(f"latents must be a [N, D] array (got shape {latents.shape})")
    return latents


def _labelled(z: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    latents = _latents(z)
    labels = np.asarray(y, dtype=np.float64).ravel()
    if len(labels) != len(latents):
        raise ValueError(f"{len(latents)} latents but {len(labels)} labels")
    return latents, labels


def fit_linear_boundary(latents: ArrayLike, labels: ArrayLike, l2: float = 1e-2,
                        iterations: int = 50) -> FittedDirection:
    """Labels are 0/1 (or booleans).  The returned vector points from label 0 towards 1."""
    z, y = _labelled(latents, labels)
    classes = set(np.unique(y).tolist())
    if not classes <= {0.0, 1.0} or len(classes) < 2:
        raise ValueError("a linear boundary needs examples of both labels, 0 and 1")
    mean = z.mean(0)
    std = z.std(0) + 1e-8
    x = (z - mean) / std  # well-conditioned Newton steps
    a = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    w = np.zeros(a.shape[1])
    reg = np.full(a.shape[1], l2 * len(x))
    reg[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(a @ w, -30, 30)))
        grad = a.T @ (p - y) + reg * w
        h = (a * (p * (1 - p))[:, None]).T @ a + np.diag(reg + 1e-9)
        step = np.linalg.solve(h, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    normal_x = w[:-1]
    normal = normal_x / std  # back to latent coordinates: w.x = (w/std).(z - mean)
    norm = float(np.linalg.norm(normal))
    if norm < 1e-12:
        raise ValueError("the labels are not linearly related to the latents; no boundary found")
    n = normal / norm
    decision = (z - mean) @ (normal_x / std) + w[-1]
    accuracy = float(np.mean((decision > 0) == (y > 0.5)))
    offset = float(-(mean @ (normal_x / std)) + w[-1]) / norm
    return FittedDirection(n, float(np.std(z @ n)) or 1.0, accuracy, offset)


def fit_regression_direction(latents: ArrayLike, values: ArrayLike) -> FittedDirection:
    """A continuous attribute: the direction of steepest increase of its linear read-out.
    ``scale`` is the latent length that changes the read-out by one unit of the attribute."""
    z, y = _labelled(latents, values)
    if len(z) < 3:
        raise ValueError("need at least 3 examples to fit a direction")
    a = np.concatenate([z - z.mean(0), np.ones((len(z), 1))], axis=1)
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    w = coef[:-1]
    norm = float(np.linalg.norm(w))
    if norm < 1e-12:
        raise ValueError("the values do not change linearly with the latents; no direction found")
    pred = a @ coef
    ss = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((pred - y) ** 2).sum()) / ss if ss > 0 else 0.0
    return FittedDirection(w / norm, 1.0 / norm, r2)


@dataclass
class PCAResult:
    components: np.ndarray  # [k, D] unit rows, by decreasing variance
    std: np.ndarray  # [k]
    explained_ratio: np.ndarray  # [k]
    mean: np.ndarray  # [D]


def fit_pca(latents: ArrayLike, k: int = 8) -> PCAResult:
    z = _latents(latents)
    if len(z) < 2:
        raise ValueError("PCA needs at least 2 samples")
    mean = z.mean(0)
    _, s, vt = np.linalg.svd(z - mean, full_matrices=False)
    var = s ** 2 / max(len(z) - 1, 1)
    k = min(k, vt.shape[0])
    total = float(var.sum()) or 1.0
    comps = vt[:k].copy()
    # a stable sign: the largest-magnitude coordinate of each component is positive
    for i in range(k):
        if comps[i, np.argmax(np.abs(comps[i]))] < 0:
            comps[i] = -comps[i]
    return PCAResult(comps, np.sqrt(var[:k]), var[:k] / total, mean)
