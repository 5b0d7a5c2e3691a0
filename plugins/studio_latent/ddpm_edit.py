"""Edit-friendly DDPM inversion and guided re-sampling (torch; no pipeline call).

Inversion (Huberman-Spiegelglas et al., "An edit friendly DDPM noise space", the inversion
LEDITS++ builds on): the image's VAE latent ``x0`` is noised *independently* at every kept
timestep, ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) n_t``; then, for each step t -> prev,
the model's DDPM (eta = 1) mean ``mu(x_t)`` is computed and the residual
``r_t = x_prev - mu(x_t)`` stored.  Sampling from ``x_start`` with ``x_prev = mu(x_t) + r_t``
walks the same chain back to ``x0`` exactly, whatever the prompt was -- so no prompt is
needed and amount 0 is the VAE's own reconstruction.  An edit changes only ``mu`` (the
model's prediction gets semantic guidance); the residuals keep everything the edit does not
touch.  Because every ``x_t`` is known up front, the inversion is one batched UNet call.

Guidance is done in the model's own output space (epsilon, v or sample prediction), which is
linear in both epsilon and x0, so any prediction type works.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

#: the model: (latents [B,C,H,W], timesteps [B]) -> raw output [B,C,H,W] for a batch of conditions; a
#: guide with ``structure`` also passes ``reference=`` (the unedited latent) and ``keep=`` (where to share)
Model = Callable[..., torch.Tensor]


@dataclass
class Schedule:
    """The timesteps (descending) and cumulative alphas of a scheduler config."""

    timesteps: list[int]
    alphas_cumprod: torch.Tensor
    prediction_type: str
    #: abar after the last step (DDIM's ``final_alpha_cumprod``: 1, or abar_0 without set_alpha_to_one)
    final: float = 1.0
    #: DDIM's clip_sample: clip the predicted clean latent to +-clip_range (0: off)
    clip: float = 0.0

    @classmethod
    def from_config(cls, config, steps: int) -> Schedule:
        from diffusers import DDIMScheduler

        ddim = DDIMScheduler.from_config(config)
        ddim.set_timesteps(int(steps))
        kind = str(getattr(ddim.config, "prediction_type", "epsilon"))
        clip = float(ddim.config.clip_sample_range) if ddim.config.clip_sample else 0.0
        return cls([int(t) for t in ddim.timesteps], ddim.alphas_cumprod.double(), kind,
                   float(ddim.final_alpha_cumprod), clip)

    def abar(self, t: int) -> float:
        return self.final if t < 0 else float(self.alphas_cumprod[int(t)])

    def ddim_step(self, out: torch.Tensor, x: torch.Tensor, t: int, prev: int) -> torch.Tensor:
        """Deterministic DDIM (eta 0), as the diffusers DDIMScheduler steps."""
        x0, eps = self.split(out, x, t)
        if self.clip:
            a = self.abar(t)
            x0 = x0.clamp(-self.clip, self.clip)
            eps = (x - a ** 0.5 * x0) / (1.0 - a) ** 0.5
        ap = self.abar(prev)
        return ap ** 0.5 * x0 + (1.0 - ap) ** 0.5 * eps

    def pairs(self) -> list[tuple[int, int]]:
        """(t, prev) for every step; the last step goes to the clean image (prev = -1)."""
        ts = self.timesteps
        return [(t, ts[i + 1] if i + 1 < len(ts) else -1) for i, t in enumerate(ts)]

    def split(self, out: torch.Tensor, x: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(x0, eps) from the model's raw output at ``x`` (timestep ``t``)."""
        a = self.abar(t)
        sa, sb = a ** 0.5, (1.0 - a) ** 0.5
        if self.prediction_type == "epsilon":
            eps = out
            x0 = (x - sb * eps) / sa
        elif self.prediction_type == "v_prediction":
            x0 = sa * x - sb * out
            eps = sa * out + sb * x
        elif self.prediction_type == "sample":
            x0 = out
            eps = (x - sa * x0) / sb
        else:
            raise ValueError(f"prediction type {self.prediction_type!r} is not supported")
        return x0, eps

    def variance(self, t: int, prev: int) -> float:
        """The DDPM (eta = 1) posterior variance of x_prev given x_t."""
        a, ap = self.abar(t), self.abar(prev)
        return 0.0 if prev < 0 else (1.0 - ap) / (1.0 - a) * (1.0 - a / ap)

    def mean(self, out: torch.Tensor, x: torch.Tensor, t: int, prev: int) -> torch.Tensor:
        """The DDPM (DDIM with eta = 1) posterior mean of x_prev."""
        ap = self.abar(prev)
        x0, eps = self.split(out, x, t)
        return ap ** 0.5 * x0 + max(1.0 - ap - self.variance(t, prev), 0.0) ** 0.5 * eps


@dataclass
class Inversion:
    """What re-sampling needs: the start latent, the kept (t, prev) steps and their residuals."""

    x0: torch.Tensor
    start: torch.Tensor
    steps: list[tuple[int, int]]
    residuals: list[torch.Tensor]
    noisy: list[torch.Tensor] = field(default_factory=list)


@torch.no_grad()
def invert(model: Model, schedule: Schedule, x0: torch.Tensor, skip: float, seed: int,
           batch: int = 16) -> Inversion:
    """Edit-friendly inversion of the clean latent ``x0`` ([1,C,H,W]); ``skip`` (0..1) drops
    that share of the noisiest steps, so edits keep more of the layout."""
    pairs = schedule.pairs()
    first = min(int(round(skip * len(pairs))), len(pairs) - 1)
    pairs = pairs[first:]
    gen = torch.Generator("cpu").manual_seed(int(seed))
    x0 = x0.float()
    noisy = []
    for t, _ in pairs:
        a = schedule.abar(t)
        n = torch.randn(x0.shape, generator=gen, dtype=torch.float32).to(x0.device)
        noisy.append(a ** 0.5 * x0 + (1.0 - a) ** 0.5 * n)
    outs: list[torch.Tensor] = []
    ts = torch.tensor([t for t, _ in pairs], device=x0.device)
    xs = torch.cat(noisy)
    for i in range(0, len(pairs), batch):
        outs.extend(model(xs[i:i + batch], ts[i:i + batch]).float().split(1))
    residuals = []
    for i, ((t, prev), out) in enumerate(zip(pairs, outs, strict=True)):
        target = noisy[i + 1] if i + 1 < len(noisy) else x0
        residuals.append(target - schedule.mean(out, noisy[i], t, prev))
    return Inversion(x0, noisy[0], pairs, residuals, noisy)


# ---------------------------------------------------------------------------------- edits
@dataclass
class Guide:
    """One edit: ``amount * (out[plus] - out[minus])`` added to the source prediction at
    every step (semantic guidance; SEGA / LEDITS++).  With a ``mask`` ([1,1,h,w], 0..1) the
    guidance acts only inside it, and outside it the chain is held on the inverted one, so what
    the edit is not about stays exactly as it was.

    ``reshape`` (0..1) frees the layout inside the mask (blended latent diffusion): in the
    noisiest ``reshape`` share of the steps the stored residuals there -- which carry the old
    outline through every step -- are mixed with fresh noise, the more the larger
    ``|amount| / full`` (all fresh from ``full`` on; variance kept), so the model draws the target's
    outline instead of re-tracing the source's, while the region's low frequencies stay those of
    the inverted chain (``HOLD_SIGMA``): the object keeps its place, colour and mass."""

    plus: int
    minus: int
    amount: float
    mask: torch.Tensor | None = None
    reshape: float = 0.0
    #: the amount at which the residuals are fully replaced (strength 1 of a text edit)
    full: float = 1.0
    #: latent pixels of a low-pass on the guidance difference (0: none): a kept-layout edit changes
    #: what regions look like, and the fine part of the difference would redraw their outlines
    smooth: float = 0.0
    #: the model attends with the unedited picture's self-attention maps while sampling (outside any
    #: reshaped region): the layout is the picture's, only what its regions look like changes.  Needs
    #: a model that takes ``reference`` and ``keep`` (:class:`denoiser.Denoiser`)
    structure: bool = False


#: a cross-attention map is used only when its peak is this many times its mean
PEAKED = 2.0


def implicit_masks(model: Model, schedule: Schedule, inv: Inversion, pairs: Sequence[tuple[int, int]],
                   attention: Sequence[tuple[int, list[int]] | None] = (), capture: Callable | None = None,
                   levels: Sequence[float] = (0.6, 0.75, 0.9), threshold: float = 0.5,
                   grow: int = 1) -> list[torch.Tensor]:
    """Where each (plus, minus) pair of conditions is about *this* image.

    Two cues, intersected as in LEDITS++: (1) where the two conditions' predictions disagree
    (DiffEdit / SEGA: mean |out[plus] - out[minus]| over a few of the inversion's own noisy
    latents -- the less noisy ones, where the model can no longer picture the edit somewhere
    else, so the cue sits on what is in the image) and (2) when ``attention[k] = (row, token
    positions)`` is given, where the UNet's
    cross-attention looks at those tokens (e.g. "red" in "a red circle ...": the red object),
    recorded by ``capture(store)``.  Each cue is normalised to its maximum and thresholded; the
    result is grown by ``grow`` latent pixels (a reshaped object may reach a little further)
    and softened at the border."""
    if not pairs:
        return []
    n = len(inv.noisy)
    picks = sorted({min(n - 1, int(round(level * (n - 1)))) for level in levels})
    sums = [torch.zeros_like(inv.x0[:, :1]) for _ in pairs]
    attn: list[torch.Tensor] = []
    h, w = inv.x0.shape[-2:]
    with torch.no_grad():
        for i in picks:
            t = inv.steps[i][0]
            store: list[torch.Tensor] = []
            if capture is not None and any(a is not None for a in attention):
                with capture(store):
                    outs = model(inv.noisy[i], torch.tensor([t], device=inv.x0.device)).float()
            else:
                outs = model(inv.noisy[i], torch.tensor([t], device=inv.x0.device)).float()
            for k, (p, m) in enumerate(pairs):
                sums[k] += (outs[p:p + 1] - outs[m:m + 1]).abs().mean(dim=1, keepdim=True)
            attn.extend(store)
    masks = []
    for k, s in enumerate(sums):
        s = torch.nn.functional.avg_pool2d(s, 3, stride=1, padding=1, count_include_pad=False)
        hard = (s >= threshold * s.max().clamp_min(1e-12)).float()
        cue = attention[k] if k < len(attention) else None
        if cue is not None and cue[1] and attn:
            a = _attention_map(attn, cue[0], cue[1], h, w).to(hard)
            if a.max() > PEAKED * a.mean():  # a flat map (a small or untrained model) says nothing
                hard = hard * (a >= threshold * a.max()).float()
        if grow:
            hard = torch.nn.functional.max_pool2d(hard, 2 * grow + 1, stride=1, padding=grow)
        soft = torch.nn.functional.avg_pool2d(hard, 3, stride=1, padding=1, count_include_pad=False)
        masks.append(torch.maximum(hard, soft))
    return masks


def _attention_map(store: Sequence[torch.Tensor], row: int, tokens: Sequence[int], h: int, w: int) -> torch.Tensor:
    """Mean attention of ``row`` on ``tokens`` over every recorded layer, at latent size [1,1,h,w]."""
    total = torch.zeros((1, 1, h, w))
    for probs in store:
        pixels = probs.shape[1]
        f = max(1, int(round((h * w / pixels) ** 0.5)))
        lh, lw = h // f, w // f
        if lh * lw != pixels:
            continue
        m = probs[row, :, list(tokens)].sum(dim=-1).reshape(1, 1, lh, lw)
        m = m / m.max().clamp_min(1e-12)
        total += torch.nn.functional.interpolate(m, size=(h, w), mode="bilinear", align_corners=False)
    return total


#: latent pixels of the low-pass a reshaping edit holds (the object's place and mass, not its outline).
#: Chosen on the tuning scenes (quality seed 1): 0.5 kept the old outline, 1.0-1.5 rounded the new one
HOLD_SIGMA = 0.7
#: seed of the fresh noise of a reshaping edit: the same edit always draws the same picture, and a
#: strength sweep differs only by how much of it is mixed in
FRESH_SEED = 1


@torch.no_grad()
def sample(model: Model, schedule: Schedule, inv: Inversion, guides: Sequence[Guide], source: int = 0,
           on_step: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Re-run the inverted chain with the guides applied; returns the clean latent."""
    active = [g for g in guides if g.amount != 0]
    if not active:
        return inv.x0
    region = None
    if all(g.mask is not None for g in active):
        region = torch.stack([g.mask for g in active if g.mask is not None]).amax(dim=0)
    total = len(inv.steps)
    fresh = _fresh_share(active, inv.x0)
    hold = None
    if fresh:
        hold = (sum((w for _, w in fresh), torch.zeros_like(inv.x0[:, :1])) > 0).float()
    gen = torch.Generator("cpu").manual_seed(FRESH_SEED)
    # where the picture keeps its layout: the rows attend with the unedited chain's own self-attention maps
    # there (the model's idea of which pixels belong together), except where a reshaping edit is freed
    structure = None
    if any(g.structure for g in active):
        structure = torch.ones_like(inv.x0[:, :1]) if hold is None else 1.0 - hold

    def predict(x: torch.Tensor, i: int, t: int) -> torch.Tensor:
        if structure is not None:
            outs = model(x, torch.tensor([t], device=x.device), reference=inv.noisy[i], keep=structure).float()
        else:
            outs = model(x, torch.tensor([t], device=x.device)).float()
        out = outs[source:source + 1].clone()
        for g in active:
            delta = outs[g.plus:g.plus + 1] - outs[g.minus:g.minus + 1]
            if g.smooth > 0:
                delta = blur(delta, g.smooth)
            if g.mask is not None:
                delta = delta * g.mask
            out = out + g.amount * delta
        return out

    x = inv.start
    for i, ((t, prev), r) in enumerate(zip(inv.steps, inv.residuals, strict=True)):
        out = predict(x, i, t)
        if fresh:
            # the noise is drawn at every step whether used or not, so the draw does not depend on the steps
            z = torch.randn(x.shape, generator=gen, dtype=torch.float32).to(x.device)
            share = sum((w for cut, w in fresh if i < cut * total), torch.zeros_like(x[:, :1])).clamp(0.0, 1.0)
            if bool(share.any()):
                angle = share * (torch.pi / 2)
                r = r * torch.cos(angle) + schedule.variance(t, prev) ** 0.5 * z * torch.sin(angle)
        x = schedule.mean(out, x, t, prev) + r
        kept = inv.noisy[i + 1] if i + 1 < total else inv.x0
        if hold is not None:
            # the freed region keeps the inverted chain's low frequencies: where the object is and how
            # much of it there is; without this the model redraws it where its training put objects
            x = x + hold * (blur(kept, HOLD_SIGMA) - blur(x, HOLD_SIGMA))
        if region is not None:
            x = region * x + (1.0 - region) * kept
        if on_step is not None:
            on_step(i + 1, total)
    return x


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian low-pass of [B,C,H,W] (edges replicated)."""
    radius = max(1, int(round(3 * sigma)))
    k = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (k / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    y = torch.nn.functional.pad(x, (radius, radius, radius, radius), mode="replicate")
    y = torch.nn.functional.conv2d(y, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return torch.nn.functional.conv2d(y, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def _fresh_share(guides: Sequence[Guide], like: torch.Tensor) -> list[tuple[float, torch.Tensor]]:
    """(share of steps, per-pixel weight) of fresh noise for every reshaping guide."""
    out = []
    for g in guides:
        if g.reshape <= 0:
            continue
        weight = min(abs(g.amount) / max(g.full, 1e-9), 1.0)
        where = g.mask if g.mask is not None else torch.ones_like(like[:, :1])
        out.append((float(g.reshape), where * weight))
    return out


def boxed(mask: torch.Tensor, grow: int = 1, threshold: float = 0.5) -> torch.Tensor:
    """Each connected part of ``mask`` ([1,1,h,w]) replaced by its bounding box grown by ``grow``
    pixels: the room a reshaped object needs (a square drawn where a circle was reaches the
    circle's box, a circle drawn where a triangle was the triangle's)."""
    from scipy import ndimage

    hard = (mask[0, 0] > threshold).cpu().numpy()
    labels, _ = ndimage.label(hard)
    out = torch.zeros_like(mask)
    h, w = hard.shape
    for sl in ndimage.find_objects(labels):
        if sl is None:
            continue
        ys, xs = sl
        out[..., max(ys.start - grow, 0):min(ys.stop + grow, h), max(xs.start - grow, 0):min(xs.stop + grow, w)] = 1.0
    return out


@torch.no_grad()
def broad_share(model: Model, schedule: Schedule, inv: Inversion, pairs: Sequence[tuple[int, int]],
                level: float = 0.9, sigma: float = 1.0) -> list[float]:
    """For each (plus, minus) pair: how much of the change the model predicts for *this* image is
    broad rather than fine -- the energy share of the predicted clean-latent difference that a
    ``sigma``-pixel low-pass keeps, on one of the inversion's less noisy latents (``level`` of the
    chain).  A colour, tone or background edit changes whole regions (high share); a new outline
    changes only edges and corners (low share).  One batched UNet call."""
    if not pairs:
        return []
    n = len(inv.noisy)
    i = min(n - 1, int(round(level * (n - 1))))
    t, x = inv.steps[i][0], inv.noisy[i]
    outs = model(x, torch.tensor([t], device=x.device)).float()
    shares = []
    for p, m in pairs:
        d = schedule.split(outs[p:p + 1], x, t)[0] - schedule.split(outs[m:m + 1], x, t)[0]
        total = float((d ** 2).sum())
        shares.append(float((blur(d, sigma) ** 2).sum()) / total if total > 0 else 1.0)
    return shares
