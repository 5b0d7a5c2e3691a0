"""FlowEdit: inversion-free text edits of your own image on rectified-flow models (SD3, Flux.1).

After Kulikov et al. 2024, "FlowEdit: Inversion-Free Text-Based Editing Using Pre-Trained Flow
Models".  A flow model predicts the velocity ``v = noise - x0`` of the straight path
``z_t = (1 - t) x0 + t noise``.  FlowEdit never inverts the image: it walks an edit latent
``Z`` from the image's latent ``X`` by integrating the *difference* of two velocities:

    for each step t -> t_next, from t_start (``n_max`` of ``steps`` steps) down to 0:
        n ~ N(0, 1) (fresh)                     Z_src = (1 - t) X + t n
        Z_tar = Z + (Z_src - X)                 Z += (t_next - t) * mean_n(dV)

With one edit, ``dV = v(Z_tar | target) - v(Z_src | source)``: noise that both branches share
cancels, so what the prompts agree on stays, and ``Z = X`` exactly when nothing is edited.

Several edits and signed strengths: ``dV`` is split into a *correction* term (both sides under
the source prompt) and one *edit* term per edit, each scaled by its strength s_k:

    dV = [v(Z_tar | source) - v(Z_src | source)] + sum_k s_k [v(Z_tar | target_k) - v(Z_tar | source_k)]

At s = 1 with one edit whose source is the prompt this is FlowEdit's update term for term; s = 0
leaves ``Z = X`` (the correction is 0 while ``Z_tar = Z_src``); a negative s moves against the edit
while the correction still pulls the result back to the image.  Guidance follows the paper: the
source side at a low scale, the target side at the user's (higher) scale.

The model-specific calls (SD3: true CFG with a negative prompt; Flux: packed latents, guidance
as an input for dev, none for schnell) are :class:`FlowTransformer`.  Imports torch + diffusers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

#: evaluations sent to the transformer in one batch (bounds memory on big models)
MAX_BATCH = 4
#: the paper's source-side guidance (SD3: 3.5 with target 13.5; Flux: 1.5 with target 5.5); the
#: target side uses the request's CFG scale, the source side this, never more than the target's
SOURCE_GUIDANCE = {"sd3": 3.5, "flux": 1.5}

FAMILIES = {"SD3Transformer2DModel": "sd3", "FluxTransformer2DModel": "flux"}


def family_of(pipe: object) -> str | None:
    """"sd3" / "flux" for pipelines FlowEdit runs on (their transformer class), else None."""
    transformer = getattr(pipe, "transformer", None)
    if transformer is None or not hasattr(pipe, "encode_prompt") or getattr(pipe, "vae", None) is None:
        return None
    family = FAMILIES.get(type(transformer).__name__)
    # plain text-to-image transformers only: Fill / Control variants take extra input channels
    latent = int(getattr(pipe.vae.config, "latent_channels", 0) or 0)
    wanted = latent * 4 if family == "flux" else latent
    if family is None or int(getattr(transformer.config, "in_channels", 0) or 0) != wanted:
        return None
    return family


@dataclass(frozen=True)
class Query:
    """One velocity to evaluate: at ``latent`` (an index into the batch of latents), under the
    prompt ``text`` with guidance ``guidance`` (<= 1: the conditional prediction alone)."""

    latent: int
    text: str
    guidance: float


@dataclass(frozen=True)
class Edit:
    source: str  # the text the image is described by for this edit
    target: str  # the text it should become
    strength: float
    label: str


@dataclass
class _Text:
    hidden: torch.Tensor  # (1, tokens, width)
    pooled: torch.Tensor  # (1, width)
    ids: torch.Tensor | None  # Flux: the text tokens' position ids


class FlowTransformer:
    """The calling conventions of one SD3 or Flux.1 pipeline: prompts -> conditions, the sigma
    schedule, and batched velocities ``v(z | text)`` (with CFG for SD3)."""

    def __init__(self, pipe, negative: str = ""):
        family = family_of(pipe)
        if family is None:
            raise ValueError(f"{type(pipe).__name__} is not an SD3 or Flux.1 pipeline.")
        self.pipe, self.family, self.negative = pipe, family, negative
        self.transformer = pipe.transformer
        self.vae_factor = int(getattr(pipe, "vae_scale_factor", 8) or 8)
        #: Flux.1-dev is guidance-distilled (guidance is an input); schnell has no guidance at all
        self.guidance_input = family == "flux" and bool(self.transformer.config.guidance_embeds)
        #: SD3 guides with a negative prompt (true CFG), Flux.1 does not
        self.true_cfg = family == "sd3"
        self._texts: dict[str, _Text] = {}
        #: conditions made from embeddings, not prompts (a prompt walk's blends), by name
        self.blends: dict[str, _Text] = {}

    @property
    def device(self) -> torch.device:
        return self.pipe._execution_device

    @property
    def multiple(self) -> int:
        """Image sides must be a multiple of this (VAE factor x patch / packing)."""
        patch = int(getattr(self.transformer.config, "patch_size", 1) or 1) if self.family == "sd3" else 2
        return self.vae_factor * patch

    def uses_guidance(self) -> bool:
        return self.true_cfg or self.guidance_input

    # -------------------------------------------------------------------------- text
    def blend(self, a: str, b: str, s: float) -> str:
        """A condition halfway (``s``) between prompts ``a`` and ``b``: their sequence and pooled
        embeddings lerped.  Returns its name for :class:`Query`; :attr:`blends` holds it."""
        name = f"\x00blend {s:.6f} {a!r} {b!r}"
        ta, tb = self.text(a), self.text(b)
        self.blends[name] = _Text(torch.lerp(ta.hidden, tb.hidden, s), torch.lerp(ta.pooled, tb.pooled, s), ta.ids)
        return name

    @torch.no_grad()
    def text(self, prompt: str) -> _Text:
        if prompt in self.blends:
            return self.blends[prompt]
        if prompt not in self._texts:
            if len(self._texts) > 64:
                self._texts.clear()
            device = self.device
            if self.family == "sd3":
                hidden, _, pooled, _ = self.pipe.encode_prompt(prompt=prompt, prompt_2=None, prompt_3=None,
                                                               device=device, num_images_per_prompt=1,
                                                               do_classifier_free_guidance=False)
                self._texts[prompt] = _Text(hidden, pooled, None)
            else:
                hidden, pooled, ids = self.pipe.encode_prompt(prompt=prompt, prompt_2=None, device=device,
                                                              num_images_per_prompt=1)
                self._texts[prompt] = _Text(hidden, pooled, ids)
        return self._texts[prompt]

    # -------------------------------------------------------------------------- schedule
    def sigmas(self, steps: int, latent_shape: Sequence[int]) -> torch.Tensor:
        """The pipeline's own noise levels for ``steps`` steps, 1 -> 0 (``steps + 1`` values)."""
        from diffusers import FlowMatchEulerDiscreteScheduler

        scheduler = FlowMatchEulerDiscreteScheduler.from_config(self.pipe.scheduler.config)
        h, w = int(latent_shape[-2]), int(latent_shape[-1])
        kwargs: dict = {}
        if scheduler.config.get("use_dynamic_shifting"):
            patch = 2 if self.family == "flux" else int(self.transformer.config.patch_size)
            kwargs["mu"] = _shift_for((h // patch) * (w // patch), scheduler.config)
        if self.family == "flux":  # FluxPipeline passes explicit sigmas; SD3's pipeline does not
            kwargs["sigmas"] = np.linspace(1.0, 1.0 / steps, steps)
            scheduler.set_timesteps(device="cpu", **kwargs)
        else:
            scheduler.set_timesteps(steps, device="cpu", **kwargs)
        return scheduler.sigmas.float().cpu()

    # -------------------------------------------------------------------------- velocities
    @torch.no_grad()
    def velocities(self, latents: torch.Tensor, sigma: float, queries: Sequence[Query]) -> torch.Tensor:
        """``v(latents[q.latent] | q.text)`` for every query, guided; (len(queries), C, h, w) float32."""
        rows: list[tuple[int, str, float]] = []  # (latent, text, flux guidance)
        index: dict[tuple[int, str, float], int] = {}

        def row(latent: int, text: str, guidance: float) -> int:
            key = (latent, text, guidance if self.guidance_input else 0.0)
            if key not in index:
                index[key] = len(rows)
                rows.append(key)
            return index[key]

        plan = []
        for q in queries:
            if self.true_cfg and q.guidance > 1.0:
                plan.append((row(q.latent, q.text, 0.0), row(q.latent, self.negative, 0.0), q.guidance))
            else:
                plan.append((row(q.latent, q.text, q.guidance), -1, 1.0))
        raw = torch.cat([self._call(latents, sigma, rows[i:i + MAX_BATCH]) for i in range(0, len(rows), MAX_BATCH)])
        out = []
        for cond, uncond, scale in plan:
            out.append(raw[cond] if uncond < 0 else raw[uncond] + scale * (raw[cond] - raw[uncond]))
        return torch.stack(out)

    def _call(self, latents: torch.Tensor, sigma: float, rows: Sequence[tuple[int, str, float]]) -> torch.Tensor:
        tr = self.transformer
        dtype, device = tr.dtype, self.device
        z = torch.stack([latents[i] for i, _, _ in rows]).to(device, dtype)
        texts = [self.text(t) for _, t, _ in rows]
        hidden = torch.cat([t.hidden for t in texts]).to(device, dtype)
        pooled = torch.cat([t.pooled for t in texts]).to(device, dtype)
        n = len(rows)
        if self.family == "sd3":
            t = torch.full((n,), float(sigma) * 1000.0, device=device, dtype=dtype)
            v = tr(hidden_states=z, timestep=t, encoder_hidden_states=hidden, pooled_projections=pooled,
                   return_dict=False)[0]
            return v.float().cpu()
        _, c, h, w = z.shape
        packed = self.pipe._pack_latents(z, n, c, h, w)
        img_ids = self.pipe._prepare_latent_image_ids(n, h // 2, w // 2, device, dtype)
        guidance = torch.tensor([g for _, _, g in rows], device=device, dtype=torch.float32) \
            if self.guidance_input else None
        t = torch.full((n,), float(sigma), device=device, dtype=dtype)
        v = tr(hidden_states=packed, timestep=t, guidance=guidance, pooled_projections=pooled,
               encoder_hidden_states=hidden, txt_ids=texts[0].ids, img_ids=img_ids, return_dict=False)[0]
        unpacked = self.pipe._unpack_latents(v, h * self.vae_factor, w * self.vae_factor, self.vae_factor)
        return unpacked.float().cpu()


def _shift_for(seq_len: int, config) -> float:
    """Resolution-dependent shift ``mu`` (a line through (base_seq, base_shift), (max_seq, max_shift)),
    as the Flux and SD3.5 pipelines compute it."""
    base_len, max_len = config.get("base_image_seq_len", 256), config.get("max_image_seq_len", 4096)
    base, top = config.get("base_shift", 0.5), config.get("max_shift", 1.15)
    slope = (top - base) / (max_len - base_len)
    return float(seq_len * slope + base - slope * base_len)


def flow_edit(model: FlowTransformer, x_src: torch.Tensor, sigmas: torch.Tensor, n_max: int, source: str,
              edits: Sequence[Edit], source_guidance: float, target_guidance: float, seed: int,
              n_avg: int = 1, on_step: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """The edited clean latent (float32, on the CPU) of ``x_src`` (a (1, C, h, w) latent); see the
    module docstring.  ``sigmas`` has ``steps + 1`` values from 1 down to 0; the edit starts
    ``n_max`` steps before the end.  Noise comes from ``seed`` (the same call, the same result)."""
    x = x_src.float().cpu()
    z = x.clone()
    active = [e for e in edits if e.strength]
    if not active:
        return z  # nothing to edit: Z = X exactly
    steps = len(sigmas) - 1
    n_max = max(1, min(int(n_max), steps))
    generator = torch.Generator().manual_seed(int(seed))
    queries = [Query(0, source, source_guidance), Query(1, source, source_guidance)]
    terms: list[tuple[int, int, float]] = []  # (target row, source row, strength)
    for e in active:
        queries.append(Query(1, e.target, target_guidance))
        if e.source == source:
            terms.append((len(queries) - 1, 1, e.strength))
        else:
            queries.append(Query(1, e.source, source_guidance))
            terms.append((len(queries) - 2, len(queries) - 1, e.strength))
    first = steps - n_max
    for i in range(first, steps):
        t, t_next = float(sigmas[i]), float(sigmas[i + 1])
        delta = torch.zeros_like(x)
        for _ in range(max(1, int(n_avg))):
            noise = torch.randn(x.shape, generator=generator, dtype=torch.float32)
            z_src = (1.0 - t) * x + t * noise
            z_tar = z + (z_src - x)
            v = model.velocities(torch.cat([z_src, z_tar]), t, queries)
            d = v[1] - v[0]
            for target, src, strength in terms:
                d = d + strength * (v[target] - v[src])
            delta += d[None] / max(1, int(n_avg))
        z = z + (t_next - t) * delta
        if on_step is not None:
            on_step(i - first + 1, n_max)
    return z


@torch.no_grad()
def sample(noise: torch.Tensor, sigmas: torch.Tensor, velocity: Callable[[torch.Tensor, float], torch.Tensor],
           on_step: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Euler integration of ``velocity(z, sigma)`` from ``noise`` (sigma 1) to a clean latent, as
    the flow-match Euler scheduler steps."""
    z = noise.float().cpu()
    steps = len(sigmas) - 1
    for i in range(steps):
        t, t_next = float(sigmas[i]), float(sigmas[i + 1])
        z = z + (t_next - t) * velocity(z, t)
        if on_step is not None:
            on_step(i + 1, steps)
    return z
