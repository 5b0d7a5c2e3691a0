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

from typing import Iterable, Mapping, Sequence

import numpy as np

EPS = 1e-12


def as_vector(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


def unit(v) -> np.ndarray:
    v = as_vector(v)
    norm = float(np.linalg.norm(v))
    if norm < EPS:
        raise ValueError("a direction of length zero has no direction")
    return v / norm


def cosine(a, b) -> float:
    a, b = as_vector(a).ravel(), as_vector(b).ravel()
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na < EPS or nb < EPS:
        return 0.0
    return float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))


def cosine_table(vectors: Mapping[str, np.ndarray] | Sequence[np.ndarray]) -> np.ndarray:
    """Pairwise cosines, ``[n, n]``; the order is the mapping's (or sequence's) order."""
    items = list(vectors.values()) if isinstance(vectors, Mapping) else list(vectors)
    if not items:
        return np.zeros((0, 0))
    m = np.stack([as_vector(v).ravel() for v in items])
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    m = m / np.maximum(norms, EPS)
    return np.clip(m @ m.T, -1.0, 1.0)


def lerp(a, b, t: float) -> np.ndarray:
    a, b = as_vector(a), as_vector(b)
    return (1.0 - t) * a + t * b


def slerp(a, b, t: float, dot_threshold: float = 0.9995) -> np.ndarray:
    """Spherical interpolation: keeps the norm profile of Gaussian noise between two samples
    (a straight line through the middle of the ball would pass through low-norm noise the
    denoiser never saw).  Falls back to lerp for (nearly) parallel inputs."""
    a, b = as_vector(a), as_vector(b)
    fa, fb = a.ravel(), b.ravel()
    na, nb = float(np.linalg.norm(fa)), float(np.linalg.norm(fb))
    if na < EPS or nb < EPS:
        return lerp(a, b, t)
    dot = float(np.dot(fa, fb) / (na * nb))
    if abs(dot) > dot_threshold:
        return lerp(a, b, t)
    theta = float(np.arccos(np.clip(dot, -1.0, 1.0)))
    s = np.sin(theta)
    return (np.sin((1.0 - t) * theta) / s) * a + (np.sin(t * theta) / s) * b


def interpolate(a, b, frames: int, method: str = "lerp") -> list[np.ndarray]:
    """``frames`` evenly spaced points from ``a`` to ``b`` inclusive."""
    if frames < 2:
        raise ValueError("a walk needs at least 2 frames")
    fn = {"lerp": lerp, "slerp": slerp}.get(method)
    if fn is None:
        raise ValueError(f"interpolation must be lerp or slerp (got {method!r})")
    return [fn(a, b, i / (frames - 1)) for i in range(frames)]


def orthonormal_basis(vectors: Iterable) -> np.ndarray:
    """Rows spanning the same space as ``vectors`` (QR, dependent ones dropped): ``[k, D]``."""
    rows = [as_vector(v).ravel() for v in vectors]
    if not rows:
        return np.zeros((0, 0))
    m = np.stack(rows).T  # [D, k]
    q, r = np.linalg.qr(m)
    keep = np.abs(np.diag(r)) > 1e-9 * max(1.0, float(np.abs(r).max()))
    return q[:, keep].T


def project_out(v, conditions: Iterable) -> np.ndarray:
    """``v`` minus its projection on the span of ``conditions`` (shape kept)."""
    v = as_vector(v)
    basis = orthonormal_basis(conditions)
    if basis.size == 0:
        return v.copy()
    flat = v.ravel()
    flat = flat - basis.T @ (basis @ flat)
    return flat.reshape(v.shape)


def conditional_direction(target, conditions: Iterable, renormalise: bool = True) -> np.ndarray:
    """InterFaceGAN conditional manipulation: n' = n - sum_i (n . c_i) c_i over an orthonormal
    basis c of the conditions, renormalised to the target's length.  The result has cosine 0
    with every condition."""
    target = as_vector(target)
    conds = [c for c in conditions]
    out = project_out(target, conds)
    norm = float(np.linalg.norm(out))
    if norm < 1e-9 * max(1.0, float(np.linalg.norm(target))):
        raise ValueError("the direction lies inside the span of the attributes kept fixed; "
                         "nothing is left to edit")
    return out * (float(np.linalg.norm(target)) / norm) if renormalise else out


def apply_edits(base, directions: Mapping[str, np.ndarray], amounts: Mapping[str, float],
                scales: Mapping[str, float] | None = None) -> np.ndarray:
    """``base + sum amount[name] * scale[name] * directions[name]`` (unknown names raise KeyError)."""
    out = as_vector(base).copy()
    for name, amount in amounts.items():
        if not amount:
            continue
        d = as_vector(directions[name])
        s = 1.0 if scales is None else float(scales.get(name, 1.0))
        if d.size == out.size:
            d = d.reshape(out.shape)
        out = out + float(amount) * s * d  # otherwise broadcast (a pooled [C] over [T, C])
    return out
