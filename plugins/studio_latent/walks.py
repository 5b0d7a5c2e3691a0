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
is at most ``2 x`` the mean or the frame budget is spent, and snaps the model cannot walk are
bridged (see :class:`AdaptiveWalk`).  The walk handed back has the requested number of frames,
picked evenly along the walk's perceptual length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from PIL import Image

from studio.plugin_api import CancelToken, Event, Preview, Progress
from studio.plugin_kit.latent import metrics, vectors

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


def lerped(conds: Conditions, rows: tuple[int, int, int], s: float) -> tuple[Conditions, tuple[int, int, int]]:
    """Conditions with one row: prompts A and B's embeddings lerped by ``s`` (and the negative)."""
    uncond, a, b = rows
    out = Conditions(conds.pipe, conds.size, conds.xl)
    neg = out.add_embedding("negative", conds.hidden(uncond), conds.pooled(uncond))
    pooled = None if not conds.xl else torch.lerp(conds.pooled(a), conds.pooled(b), s)
    row = out.add_embedding(f"lerp {s:.4f}", torch.lerp(conds.hidden(a), conds.hidden(b), s), pooled)
    return out, (neg, row, row)


def slerp_noise(na: torch.Tensor, nb: torch.Tensor, s: float) -> torch.Tensor:
    if torch.equal(na, nb):
        return na
    return torch.from_numpy(vectors.slerp(na.numpy(), nb.numpy(), s).astype(np.float32))


class AdaptiveWalk:
    """Evenly spaced frames, then bisection of the largest perceptual step while it is more than
    ``TARGET_RATIO`` x the mean and fewer than ``frames + budget`` frames were made.

    Some changes are not continuous for the model at all (on the built-in model a black
    background becomes a white one between two embeddings 0.002 apart: it has never seen grey).
    Bisection cannot walk such a *snap*; once an interval is narrower than ``MIN_GAP`` and still
    the largest step, frames are *bridged* there instead: the two neighbours' clean latents are
    blended and decoded (``blend``), as many as the step needs.  ``bridged`` counts them.
    ``run()`` yields after every frame; ``positions`` / ``images`` stay sorted by position."""

    MIN_GAP = 1.0 / 50

    def __init__(self, frame_at: Callable[[float], tuple[Image.Image, torch.Tensor]], frames: int, budget: int,
                 blend: Callable[[torch.Tensor, torch.Tensor, float], Image.Image] | None = None):
        self.frame_at, self.frames, self.budget, self.blend = frame_at, frames, budget, blend
        self.positions: list[float] = []
        self.images: list[Image.Image] = []
        self.latents: list[torch.Tensor] = []
        self.is_bridge: list[bool] = []
        self.added = 0
        self.bridged = 0

    def _insert(self, k: int, s: float, image: Image.Image, latent: torch.Tensor, bridge: bool = False) -> None:
        self.is_bridge.insert(k, bridge)
        self.positions.insert(k, s)
        self.images.insert(k, image)
        self.latents.insert(k, latent)

    def _steps(self) -> np.ndarray:
        return metrics.frame_steps([np.asarray(im) for im in self.images])

    def run(self) -> Iterator[Image.Image]:
        for i in range(self.frames):
            s = i / (self.frames - 1)
            image, latent = self.frame_at(s)
            self._insert(len(self.images), s, image, latent)
            yield image
        while self.added < self.budget:
            steps = self._steps()
            if steps.mean() <= 0 or steps.max() <= TARGET_RATIO * steps.mean():
                return
            k = int(np.argmax(steps))
            if self.positions[k + 1] - self.positions[k] < self.MIN_GAP:
                break  # a snap: bridge it below
            s = (self.positions[k] + self.positions[k + 1]) / 2.0
            image, latent = self.frame_at(s)
            self._insert(k + 1, s, image, latent)
            self.added += 1
            yield image
        if self.blend is None:
            return
        bridge_budget = 4 * self.frames + self.budget  # a bridged frame is one VAE decode: cheap
        while self.bridged < bridge_budget:
            steps = self._steps()
            if steps.mean() <= 0 or steps.max() <= TARGET_RATIO * steps.mean():
                return
            k = int(np.argmax(steps))
            a, b = self.latents[k], self.latents[k + 1]
            # enough blends that this step comes down to about the typical one
            others = np.delete(steps, k)
            typical = float(others.mean()) if len(others) else float(steps[k]) / 2
            count = int(min(bridge_budget - self.bridged, max(1, np.ceil(steps[k] / max(typical, 1e-6)) - 1)))
            p0, p1 = self.positions[k], self.positions[k + 1]
            for j in range(count, 0, -1):
                w = j / (count + 1)
                self._insert(k + 1, p0 + w * (p1 - p0), self.blend(a, b, w), torch.lerp(a, b, w), True)
                self.bridged += 1
                yield self.images[k + 1]

    def pick(self, count: int) -> list[int]:
        """``count`` indices into the frames, evenly spaced along the walk's perceptual length
        (cumulative frame-to-frame change), always keeping both ends."""
        n = len(self.images)
        if count >= n:
            return list(range(n))
        length = np.concatenate([[0.0], np.cumsum(self._steps())])
        chosen = [0]
        for target in np.linspace(0.0, length[-1], count)[1:-1]:
            i = int(np.argmin(np.abs(length - target)))
            chosen.append(min(max(i, chosen[-1] + 1), n - (count - len(chosen))))
        chosen.append(n - 1)
        return chosen


def play(walk: AdaptiveWalk, frames: int, budget: int, cancel: CancelToken) -> Iterator[Event]:
    """Run ``walk``, showing each frame as it comes, until done or cancelled; then the kept frames'
    indices are ``walk.pick(frames)`` (or all of them without a budget)."""
    for i, image in enumerate(walk.run(), 1):
        yield Preview(i, image=image)
        yield Progress(min(i, frames + budget), frames + budget, f"frame {i}")
        if cancel.is_set:
            break


def kept(walk: AdaptiveWalk, frames: int, budget: int) -> list[int]:
    """The frames a walk hands back: evenly spaced in perceptual change, or all without a budget."""
    return walk.pick(frames) if budget else list(range(len(walk.images)))
