"""Vector arithmetic for latent editing (numpy only).

* :func:`slerp` / :func:`lerp` / :func:`interpolate` - walks between two latents or noises;
* :func:`unit`, :func:`cosine`, :func:`cosine_table` - how related two directions are;
* :func:`conditional_direction` - InterFaceGAN's conditional manipulation: the edited
  direction with its components along the kept attributes' directions projected out, so
  moving along it leaves their (linear) read-outs unchanged;
* :func:`apply_edits` - a base latent plus several scaled directions.

Vectors of any shape are accepted (a text-embedding direction is [tokens, width]); they are
flattened for the dot products and keep their shape on the way out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

EPS = 1e-12
Vector = NDArray[np.float64]


def as_vector(value: ArrayLike) -> Vector:
    return np.asarray(value, dtype=np.float64)


def unit(value: ArrayLike) -> Vector:
    v = as_vector(value)
    norm = float(np.linalg.norm(v))
    if norm < EPS:
        raise ValueError("a direction of length zero has no direction")
    return v / norm


def cosine(a: ArrayLike, b: ArrayLike) -> float:
    fa, fb = as_vector(a).ravel(), as_vector(b).ravel()
    na, nb = float(np.linalg.norm(fa)), float(np.linalg.norm(fb))
    if na < EPS or nb < EPS:
        return 0.0
    return float(np.clip(np.dot(fa, fb) / (na * nb), -1.0, 1.0))


def cosine_table(vectors: Mapping[str, ArrayLike] | Sequence[ArrayLike]) -> Vector:
    """Pairwise cosines, ``[n, n]``; the order is the mapping's (or sequence's) order."""
    items = list(vectors.values()) if isinstance(vectors, Mapping) else list(vectors)
    if not items:
        return np.zeros((0, 0))
    m = np.stack([as_vector(v).ravel() for v in items])
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    m = m / np.maximum(norms, EPS)
    return as_vector(np.clip(m @ m.T, -1.0, 1.0))


def lerp(a: ArrayLike, b: ArrayLike, t: float) -> Vector:
    return (1.0 - t) * as_vector(a) + t * as_vector(b)


def slerp(a: ArrayLike, b: ArrayLike, t: float, dot_threshold: float = 0.9995) -> Vector:
    """Spherical interpolation: keeps the norm profile of Gaussian noise between two samples
    (a straight line through the middle of the ball would pass through low-norm noise the
    denoiser never saw).  Falls back to lerp for (nearly) parallel inputs."""
    va, vb = as_vector(a), as_vector(b)
    fa, fb = va.ravel(), vb.ravel()
    na, nb = float(np.linalg.norm(fa)), float(np.linalg.norm(fb))
    if na < EPS or nb < EPS:
        return lerp(va, vb, t)
    dot = float(np.dot(fa, fb) / (na * nb))
    if abs(dot) > dot_threshold:
        return lerp(va, vb, t)
    theta = float(np.arccos(np.clip(dot, -1.0, 1.0)))
    s = float(np.sin(theta))
    return (float(np.sin((1.0 - t) * theta)) / s) * va + (float(np.sin(t * theta)) / s) * vb


def interpolate(a: ArrayLike, b: ArrayLike, frames: int, method: str = "lerp") -> list[Vector]:
    """``frames`` evenly spaced points from ``a`` to ``b`` inclusive."""
    if frames < 2:
        raise ValueError("a walk needs at least 2 frames")
    fn = {"lerp": lerp, "slerp": slerp}.get(method)
    if fn is None:
        raise ValueError(f"interpolation must be lerp or slerp (got {method!r})")
    return [fn(a, b, i / (frames - 1)) for i in range(frames)]


def orthonormal_basis(vectors: Iterable[ArrayLike]) -> Vector:
    """Rows spanning the same space as ``vectors`` (QR, dependent ones dropped): ``[k, D]``."""
    rows = [as_vector(v).ravel() for v in vectors]
    if not rows:
        return np.zeros((0, 0))
    m = np.stack(rows).T  # [D, k]
    q, r = np.linalg.qr(m)
    keep = np.abs(np.diag(r)) > 1e-9 * max(1.0, float(np.abs(r).max()))
    return as_vector(q[:, keep].T)


def project_out(value: ArrayLike, conditions: Iterable[ArrayLike]) -> Vector:
    """``value`` minus its projection on the span of ``conditions`` (shape kept)."""
    v = as_vector(value)
    basis = orthonormal_basis(conditions)
    if basis.size == 0:
        return as_vector(v.copy())
    flat = v.ravel()
    flat = flat - basis.T @ (basis @ flat)
    return as_vector(flat.reshape(v.shape))


def conditional_direction(target: ArrayLike, conditions: Iterable[ArrayLike], renormalise: bool = True) -> Vector:
    """InterFaceGAN conditional manipulation: n' = n - sum_i (n . c_i) c_i over an orthonormal
    basis c of the conditions, renormalised to the target's length.  The result has cosine 0
    with every condition."""
    goal = as_vector(target)
    out = project_out(goal, list(conditions))
    norm = float(np.linalg.norm(out))
    if norm < 1e-9 * max(1.0, float(np.linalg.norm(goal))):
        raise ValueError("the direction lies inside the span of the attributes kept fixed; "
                         "nothing is left to edit")
    return out * (float(np.linalg.norm(goal)) / norm) if renormalise else out


def apply_edits(base: ArrayLike, directions: Mapping[str, ArrayLike], amounts: Mapping[str, float],
                scales: Mapping[str, float] | None = None) -> Vector:
    """``base + sum amount[name] * scale[name] * directions[name]`` (unknown names raise KeyError)."""
    out = as_vector(as_vector(base).copy())
    for name, amount in amounts.items():
        if not amount:
            continue
        d = as_vector(directions[name])
        s = 1.0 if scales is None else float(scales.get(name, 1.0))
        if d.size == out.size:
            d = d.reshape(out.shape)
        out = out + float(amount) * s * d  # otherwise broadcast (a pooled [C] over [T, C])
    return out
