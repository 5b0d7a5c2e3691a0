"""Seed and prompt walks that walk instead of snapping (torch).

A frame at position ``s`` (0..1) is sampled with DDIM (eta 0) from the spherical interpolation
(slerp) of the two seeds' noises -- slerp keeps the noise at the norm the model expects, so every
frame stays on the model's manifold -- and, for a prompt walk, with the two prompts mixed in the
*prediction*: at every step ``out = uncond + cfg * ((1 - s) (A - uncond) + s (B - uncond))``
(composable-diffusion style).  Mixing predictions changes the sampler's vector field linearly
in ``s``; lerping the text embeddings instead goes through the text encoder's attention, where
the image flips from A to B within a few per cent of the way (the 6.9x jump of issue #13).

Frames are then placed adaptively: after the requested evenly spaced frames, a frame is added
halfway across the largest perceptual step (mean absolute pixel change) until the largest step
is at most ``2 x`` the mean or the frame budget is spent.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image

from studio.core.latent import metrics, vectors

from . import ddpm_edit
from .denoiser import Conditions, Denoiser

#: stop bisecting once the largest frame-to-frame step is at most this many times the mean
TARGET_RATIO = 2.0


@torch.no_grad()
def render_frame(unet, conds: Conditions, schedule: ddpm_edit.Schedule, noise: torch.Tensor, s: float,
                 cfg: float, rows: tuple[int, int, int]) -> torch.Tensor:
    """One frame's clean latent: DDIM from ``noise`` with predictions A and B mixed by ``s``."""
    uncond, a, b = rows
    model = Denoiser(unet, conds)
    x = noise
    for t, prev in schedule.pairs():
        outs = model(x, torch.tensor([t], device=x.device))
        mixed = (1.0 - s) * outs[a:a + 1] + s * outs[b:b + 1]
        out = outs[uncond:uncond + 1] + cfg * (mixed - outs[uncond:uncond + 1]) if cfg != 1.0 else mixed
        x = schedule.ddim_step(out, x, t, prev)
    return x


def slerp_noise(na: torch.Tensor, nb: torch.Tensor, s: float) -> torch.Tensor:
    if torch.equal(na, nb):
        return na
    return torch.from_numpy(vectors.slerp(na.numpy(), nb.numpy(), s).astype(np.float32))


class AdaptiveWalk:
    """Evenly spaced frames, then bisection of the largest perceptual step while it is more than
    ``TARGET_RATIO`` x the mean and fewer than ``frames + budget`` frames were made.  ``run()``
    yields after every frame; ``positions`` / ``images`` stay sorted by position."""

    def __init__(self, frame_at: Callable[[float], Image.Image], frames: int, budget: int):
        self.frame_at, self.frames, self.budget = frame_at, frames, budget
        self.positions: list[float] = []
        self.images: list[Image.Image] = []
        self.added = 0

    def run(self) -> Iterator[Image.Image]:
        for i in range(self.frames):
            s = i / (self.frames - 1)
            self.positions.append(s)
            self.images.append(self.frame_at(s))
            yield self.images[-1]
        while self.added < self.budget:
            steps = metrics.frame_steps([np.asarray(im) for im in self.images])
            if steps.mean() <= 0 or steps.max() <= TARGET_RATIO * steps.mean():
                return
            k = int(np.argmax(steps))
            if self.positions[k + 1] - self.positions[k] < 1e-3:
                return
            s = (self.positions[k] + self.positions[k + 1]) / 2.0
            image = self.frame_at(s)
            self.positions.insert(k + 1, s)
            self.images.insert(k + 1, image)
            self.added += 1
            yield image
