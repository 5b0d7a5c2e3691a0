"""Directions found without training (torch): GANSpace-style PCA for diffusion models.

* **h-space** (Asyrp, "Diffusion models already have a semantic latent space"; Haas et al.
  "Discovering interpretable directions in h-space"): the UNet's bottleneck output is recorded
  at every step while ``count`` images are sampled from random seeds; after removing each
  step's mean, the principal components of those activations are directions.  One is applied
  by adding ``amount * scale * vector`` to the bottleneck at every step (see
  :func:`denoiser.mid_shift`); ``scale`` is the component's standard deviation, so amount 1 is
  one typical step of variation.
* **text embeddings**: the principal components of the prompt embeddings of prompt
  variations, applied like any text-embedding direction.

Both come back as :class:`DirectionSet` objects named ``pc1``, ``pc2``... (renamable) in the
ordinary directions-file format, so they are saved, shared and reused across images.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from studio.plugin_kit.latent import directions as dirfile

SPACE = "unet-h"
#: added to the prompt when no variations are given: attributes most image models know
DEFAULT_VARIATIONS = ("red", "blue", "green", "yellow", "white", "black", "small", "large", "on the left",
                      "on the right", "at the top", "at the bottom", "on a white background",
                      "on a black background", "a circle", "a square", "a triangle")


def empty_set(model: str) -> dirfile.DirectionSet:
    return dirfile.DirectionSet([], SPACE, model, ())


def _pca(rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(components [k, D], standard deviations [k], explained-variance ratios [k]) of centred rows."""
    _, s, vt = np.linalg.svd(rows, full_matrices=False)
    var = s ** 2 / max(len(rows) - 1, 1)
    k = min(k, len(s))
    return vt[:k], np.sqrt(var[:k]), var[:k] / max(float(var.sum()), 1e-12)


def _as_set(components: np.ndarray, stds: np.ndarray, ratios: np.ndarray, shape: tuple[int, ...], space: str,
            model: str, names: Sequence[str], kind_note: str) -> dirfile.DirectionSet:
    dirs = []
    for i, (vec, std, ratio) in enumerate(zip(components, stds, ratios, strict=True)):
        name = names[i] if i < len(names) and names[i] else f"pc{i + 1}"
        dirs.append(dirfile.Direction(name=name, vector=vec.reshape(shape).astype(np.float32), kind="pca",
                                      label=name if i < len(names) and names[i] else f"PC {i + 1}",
                                      scale=float(std), range=(-3.0, 3.0), units="std", score=float(ratio),
                                      notes=kind_note))
    return dirfile.DirectionSet(dirs, space, model, shape)


@torch.no_grad()
def discover_h(pipe: Any, unet_call: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], schedule: Any,
               latent_shape: tuple[int, ...], count: int, seed: int, k: int, model: str,
               names: Sequence[str] = (), cancel: Callable[[], bool] | None = None) -> dirfile.DirectionSet:
    """PCA of bottleneck activations while sampling ``count`` images (DDIM, the schedule's steps)."""
    from .denoiser import mid_capture

    gen = torch.Generator("cpu").manual_seed(int(seed))
    x = torch.randn((count, *latent_shape[1:]), generator=gen).to(pipe.unet.device)
    per_step: list[np.ndarray] = []
    for t, prev in schedule.pairs():
        if cancel is not None and cancel():
            break
        store: list[torch.Tensor] = []
        with mid_capture(pipe.unet, store):
            out = unet_call(x, torch.full((count,), t, device=x.device))
        per_step.append(torch.cat(store).reshape(count, -1).numpy())
        x = schedule.ddim_step(out, x, t, prev)
    shape = tuple(store[0].shape[1:])
    rows = np.concatenate([h - h.mean(axis=0, keepdims=True) for h in per_step])
    comps, stds, ratios = _pca(rows, k)
    note = f"h-space PCA over {count} samples x {len(per_step)} steps"
    return _as_set(comps, stds, ratios, shape, SPACE, model, names, note)


@torch.no_grad()
def discover_text(embed: Callable[[str], torch.Tensor], prompt: str, variations: Sequence[str], k: int,
                  model: str, names: Sequence[str] = ()) -> dirfile.DirectionSet:
    """PCA over the token embeddings of the prompt's variations (``prompt + ", " + v``)."""
    texts = [f"{prompt}, {v}" if prompt else v for v in (variations or DEFAULT_VARIATIONS)]
    if len(texts) < 3:
        raise ValueError("Text-embedding PCA needs at least three prompt variations.")
    embeds = [embed(t)[0].float().cpu().numpy() for t in texts]
    shape = embeds[0].shape
    rows = np.stack([e.ravel() for e in embeds])
    rows = rows - rows.mean(axis=0, keepdims=True)
    comps, stds, ratios = _pca(rows, min(k, len(texts) - 1))
    note = f"text-embedding PCA over {len(texts)} prompt variations"
    return _as_set(comps, stds, ratios, shape, "text-embedding", model, names, note)
