"""Latent editing on flow-matching pipelines (SD3, Flux.1): the latent plugin's modes for them.
Imports torch + diffusers.

* **edit** your own image with :func:`flow_edit.flow_edit` (FlowEdit, inversion-free): the same
  request as on SD/SDXL -- prompt pairs "FROM->TO" with a strength, +/- concepts, several at once;
  ``skip`` ("Keep layout") is the share of the noisiest steps FlowEdit leaves out.  Nothing to edit
  gives the VAE reconstruction itself.  Without an image the source is the seed's sample.
* **encode**: the VAE reconstruction and its PSNR (FlowEdit needs no inversion).
* **walk**: seed / prompt walks sampled with flow-match Euler (slerped noise; lerped prompt and
  pooled embeddings, or mixed predictions), frames placed as in :mod:`walks`.
* **quality**: the held-out drawn-scene figures of the UNet models (:func:`image_modes.drawn_rows`), every
  edit a FlowEdit.
* refused in one sentence each: h-space / text direction discovery, direction files and
  direction sliders, slider measurements.  The DDPM path's implicit masks do not exist here;
  the first job of a loaded model says so (FlowEdit keeps what the prompts agree on by itself).
"""

from __future__ import annotations

import gc
import re
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from PIL import Image

from studio.plugin_api import (
    Artifact,
    Cancelled,
    CancelToken,
    Event,
    Kind,
    LoadOptions,
    Log,
    ParamError,
    Progress,
    Result,
)
from studio.plugin_kit import seeds
from studio.plugin_kit.diffusion import loading
from studio.plugin_kit.diffusion.sources import Source
from studio.plugin_kit.latent import metrics

from . import DIFFUSION_MODES, common, cpu_threads, image_modes, walks
from .flow_edit import SOURCE_GUIDANCE, Edit, FlowTransformer, Query, flow_edit, sample
from .image_edit import ImageEditor

METHOD = "FlowEdit"
#: the paper's target guidance per family: the model's default CFG scale here
TARGET_GUIDANCE = {"sd3": 13.5, "flux": 5.5}
FAMILY_NAMES = {"sd3": "SD3", "flux": "Flux.1"}


def flow_edits(prompt: str, pairs, concepts) -> list[Edit]:
    """Prompt pairs and concepts as FlowEdit's (source, target) prompt pairs: a pair whose FROM is
    in the prompt edits the prompt (FROM replaced by TO), else FROM -> TO on their own; a concept
    is appended to the prompt (a negative strength removes it)."""
    out = []
    for a, b, strength in pairs:
        pattern = re.compile(rf"\b{re.escape(a)}\b", re.IGNORECASE)
        if prompt and pattern.search(prompt):
            out.append(Edit(prompt, pattern.sub(b.replace('\\', '\\\\'), prompt), strength, f"{a}->{b} x{strength:g}"))
        else:
            out.append(Edit(a, b, strength, f"{a}->{b} x{strength:g}"))
    for concept, strength in concepts:
        target = f"{prompt}, {concept}" if prompt else concept
        out.append(Edit(prompt, target, strength, f"{'+' if strength > 0 else '-'}{concept} x{abs(strength):g}"))
    return out


class FlowLatentModel:
    def __init__(self, source: str, resolved: Source, loaded: loading.LoadedPipeline, options: LoadOptions):
        self.source = source
        self.name = resolved.name
        self.pipe = loaded.pipe
        self.device = loaded.device
        self.dtype = loaded.dtype
        self.options = options
        self.flow = FlowTransformer(self.pipe)
        self.family = self.flow.family
        self.memory_bytes = loading.memory_bytes(self.pipe)
        self.small = cpu_threads.is_small(self.pipe.transformer)
        self.vae_factor = self.flow.vae_factor
        self.xl = False
        cfg = self.pipe.transformer.config
        sample_size = getattr(cfg, "sample_size", None) if self.family == "sd3" else None
        side = int(sample_size or getattr(self.pipe, "default_sample_size", 128)) * self.vae_factor
        self.native_size = (side, side)
        #: SD3's learned position table bounds the image size
        self.max_side = int(cfg.pos_embed_max_size) * int(cfg.patch_size) * self.vae_factor \
            if self.family == "sd3" and getattr(cfg, "pos_embed_max_size", None) else None
        self.defaults = {"size": self.native_size, "steps": 20, "cfg_scale": TARGET_GUIDANCE[self.family]}
        self.choices: dict[str, list[Any]] = {}
        self.modes = DIFFUSION_MODES
        self.editor = ImageEditor(self.pipe, False, self.name)  # VAE encode / decode and its cache
        family = FAMILY_NAMES[self.family]
        self.notes = list(loaded.notes) + [
            f"{family} is a flow-matching model: your image is edited with {METHOD} (no inversion). Implicit masks "
            f"('Edit only where it matters'), direction discovery, direction files and slider measurements work "
            f"on SD 1.x/2.x and SDXL only; the quality read-back measures text edits."]
        if not self.flow.uses_guidance():
            self.notes.append(f"{type(self.pipe).__name__} has no guidance input (a schnell-style distilled "
                              f"model): the CFG scale is not used.")
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------ pieces
    def _size(self, request: Mapping[str, Any], image: Image.Image | None = None) -> tuple[int, int]:
        """The request's size; else your image's own (scaled down to the model's native area);
        else the native size.  Sides are multiples of the model's step (16)."""
        m = self.flow.multiple
        if request.get("size"):
            w, h = (int(v) for v in request["size"])
            if w % m or h % m:
                raise ParamError(f"Size must be a multiple of {m} on both sides for this model (got {w}x{h}).")
        elif image is not None:
            w, h = image.size
            area = self.native_size[0] * self.native_size[1]
            if w * h > area:
                k = (area / (w * h)) ** 0.5
                w, h = int(w * k), int(h * k)
            w, h = max(m, w // m * m), max(m, h // m * m)
        else:
            w, h = self.native_size
        if self.max_side and max(w, h) > self.max_side:
            raise ParamError(f"This model draws at most {self.max_side} pixels a side (got {w}x{h}).")
        return w, h

    def _latent_shape(self, size: tuple[int, int]) -> tuple[int, int, int, int]:
        channels = int(self.pipe.vae.config.latent_channels)
        return (1, channels, size[1] // self.vae_factor, size[0] // self.vae_factor)

    def _noise(self, seed: int, size: tuple[int, int]) -> torch.Tensor:
        return torch.randn(self._latent_shape(size), generator=seeds.cpu_generator(int(seed)), dtype=torch.float32)

    def _guidance(self, request: Mapping[str, Any]) -> tuple[float, float]:
        """(source, target) guidance: the target is the CFG scale, the source the paper's lower one."""
        target = float(request.get("cfg_scale", self.defaults["cfg_scale"]))
        return min(SOURCE_GUIDANCE[self.family], target), target

    def _ignored(self, request: Mapping[str, Any]) -> list[str]:
        """Sentences for settings given that do nothing on this model (said, never dropped silently)."""
        out = []
        method = request.get("encode_method") or "ddpm-inversion"
        if method != "ddpm-inversion":
            out.append(f"Encode method {method} is not used: {FAMILY_NAMES[self.family]} images are edited with "
                       f"{METHOD}, which needs no inversion.")
        if request.get("negative_prompt") and not self.flow.true_cfg:
            out.append("The negative prompt is not used: Flux.1 is guided without one.")
        if (request.get("layout") or "auto") != "auto":
            out.append(f"Layout {request['layout']} is not used: it is a setting of the DDPM-inversion edit; "
                       f"{METHOD} has no stored residuals to keep or free.")
        return out

    def _check_edits(self, request: Mapping[str, Any]) -> None:
        if any(common.parse_edits(request.get("edits")).values()):
            raise ParamError(f"Direction sliders are not supported on {FAMILY_NAMES[self.family]} (no text-embedding "
                             f"directions for it); use prompt pairs FROM->TO or +/- concepts.")
        if request.get("direction_files"):
            raise ParamError(f"Direction files are not supported on {FAMILY_NAMES[self.family]}; use prompt pairs "
                             f"FROM->TO or +/- concepts.")
        if request.get("save_direction"):
            raise ParamError(f"Saving a prompt-pair direction is not supported on {FAMILY_NAMES[self.family]}: "
                             f"{METHOD} edits with the prompts themselves.")

    def _sample(self, prompt: str, seed: int, size: tuple[int, int], steps: int, cfg: float,
                cancel: CancelToken) -> torch.Tensor:
        """The seed's sample (flow-match Euler), for edits without an image of yours."""
        sigmas = self.flow.sigmas(steps, self._latent_shape(size))

        def velocity(z: torch.Tensor, t: float) -> torch.Tensor:
            if cancel.is_set and not cancel.keep_partial:
                raise Cancelled()
            return self.flow.velocities(z, t, [Query(0, prompt, cfg)])

        return sample(self._noise(seed, size), sigmas, velocity)

    # ------------------------------------------------------------------------------ running
    def run(self, request: Mapping[str, Any], cancel: CancelToken) -> Iterator[Event]:
        with self._lock:
            for note in self.notes:
                yield Log(note, "warning")
            self.notes = []
            mode = request.get("mode") or "edit"
            handler = getattr(self, f"_run_{mode}", None)
            if handler is None:
                raise ParamError(f"Unknown mode {mode!r}.")
            self.flow.negative = str(request.get("negative_prompt") or "")
            try:
                with cpu_threads.one_thread_if_small(self.small, self.device):
                    yield from handler(request, cancel)
            finally:
                self.flow.blends.clear()

    def _art(self, image: Image.Image, seed: int | None, params: dict) -> Artifact:
        return Artifact(Kind.LATENT, image=image, seed=seed, parameters={"model": self.name, **params})

    def _run_info(self, request, cancel) -> Iterator[Event]:
        if request.get("direction_files"):
            self._check_edits(request)
        yield Result((), info={"directions": [], "space": "text-embedding", "latent_shape": [], "model": self.name,
                               "native_size": list(self.native_size), "quality_available": False,
                               "encode_available": True, "kind": "diffusion", "xl": False, "family": self.family,
                               "edit_method": METHOD, "encode_methods": ["flowedit"]})

    def _run_discover(self, request, cancel) -> Iterator[Event]:
        raise ParamError(f"Direction discovery works on SD 1.x/2.x and SDXL only: h-space is a UNet's bottleneck, "
                         f"which {FAMILY_NAMES[self.family]} transformers do not have.")
        yield  # pragma: no cover - a generator, like the other modes

    def _run_quality(self, request, cancel) -> Iterator[Event]:
        """Reconstruction and text-edit figures on held-out drawn scenes, as for the UNet models, with
        every edit a FlowEdit; slider and direction measurements are UNet-only (one sentence)."""
        from . import diffusion_quality as dq

        if request.get("image") or request.get("sliders") or request.get("direction_files"):
            raise ParamError(f"On {FAMILY_NAMES[self.family]} the quality read-back measures text edits on drawn "
                             f"scenes (--edit FROM->TO); slider and direction measurements need SD 1.x/2.x or SDXL.")
        for sentence in self._ignored(request):
            yield Log(sentence, "warning")
        steps, _ = image_modes._steps(request)
        skip, refine = float(request.get("skip", 0.2)), int(request.get("refine", 30))
        count, seed = int(request.get("scenes") or 20), int(request.get("seed") or 0)
        prompted = bool(request.get("prompted", True))
        strengths = [float(s) for s in request.get("strengths") or (0.0, 0.25, 0.5, 1.0, 1.5)]
        source_g, target_g = self._guidance(request)
        n_max = max(1, min(steps, round(steps * (1.0 - skip))))
        size = self._size(request)
        try:
            cases = [dq.parse_case(str(c)) for c in request.get("measure") or dq.DEFAULT_CASES]
        except ValueError as exc:
            raise ParamError(str(exc)) from None

        def stop_if_cancelled(i: int, total: int) -> None:
            if cancel.is_set:
                raise Cancelled()

        def edit(image: Image.Image, prompt: str, pairs: list) -> tuple[Image.Image, float]:
            stop_if_cancelled(0, 0)
            enc = self.editor.encode(image, size, refine)
            edits = flow_edits(prompt, pairs, [])
            if not any(e.strength for e in edits):
                return enc.reconstruction, enc.psnr  # amount 0: FlowEdit leaves the latent where it is
            latent = flow_edit(self.flow, enc.x0, self.flow.sigmas(steps, enc.x0.shape), n_max, prompt, edits,
                               source_g, target_g, seed, on_step=stop_if_cancelled)
            return self.editor.decode(latent), enc.psnr

        started = time.perf_counter()
        total = 1 + len(cases)
        rows = yield from image_modes.drawn_rows(edit, cases, count, seed, prompted, strengths, total)
        yield Progress(total, total, "done")
        method = (f"{count} held-out PIL-drawn scenes per row (seed {seed}), {METHOD} over the last {n_max} of "
                  f"{steps} steps, refine {refine}, prompt {'= the scene caption' if prompted else 'none'}, "
                  f"no masks ({METHOD} has none), read back with ShapeEval")
        yield Result((), info={"quality": rows, "sliders": {}, "method": method,
                               "seconds": round(time.perf_counter() - started, 1)})

    def _run_encode(self, request, cancel) -> Iterator[Event]:
        if not request.get("image"):
            raise ParamError("Choose an image to encode.")
        for sentence in self._ignored(request):
            yield Log(sentence, "warning")
        image = common.open_rgb(request.get("image"))
        size = self._size(request, image)
        enc = self.editor.encode(image, size, int(request.get("refine", 30)))
        params = {"mode": "encode", "encode_method": "flowedit", "psnr": round(enc.psnr, 2)}
        yield Result((self._art(enc.reconstruction, None, params),),
                     info={"psnr": enc.psnr, "original": enc.seen, "method": "flowedit", "seed": None,
                           "seconds": round(enc.seconds, 3)})

    def _run_edit(self, request, cancel) -> Iterator[Event]:
        started = time.perf_counter()
        self._check_edits(request)
        for sentence in self._ignored(request):
            yield Log(sentence, "warning")
        steps, draft = image_modes._steps(request)
        prompt = request.get("prompt") or ""
        skip, refine = float(request.get("skip", 0.2)), int(request.get("refine", 30))
        seed = int(request.get("seed") or 0)
        source_g, target_g = self._guidance(request)
        pairs = image_modes.parse_pairs(request.get("pairs"))
        concepts = image_modes.parse_concepts(request.get("concepts"))
        edits = flow_edits(prompt, pairs, concepts)
        n_max = max(1, min(steps, round(steps * (1.0 - skip))))
        image = common.open_rgb(request["image"]) if request.get("image") else None
        size = self._size(request, image)

        def on_step(i: int, total: int) -> None:
            if cancel.is_set:
                raise Cancelled()

        if image is not None:
            yield Progress(0, 2, "encoding your image")
            enc = self.editor.encode(image, size, refine)
            x_src, original, reconstruction, psnr = enc.x0, enc.seen, enc.reconstruction, enc.psnr
            digest = enc.key.rsplit(":", 1)[-1]
        else:
            yield Progress(0, 2, f"sampling seed {seed}")
            x_src = self._sample(prompt, seed, size, steps, target_g, cancel)
            original = reconstruction = self.editor.decode(x_src)
            psnr, digest = None, None
        applied = [e.label for e in edits if e.strength]
        yield Progress(1, 2, f"{METHOD}: {n_max} of {steps} steps" if applied else "nothing to edit")
        if applied:
            latent = flow_edit(self.flow, x_src, self.flow.sigmas(steps, x_src.shape), n_max, prompt, edits,
                               source_g, target_g, seed, on_step=on_step)
            out = self.editor.decode(latent)
        else:
            out = reconstruction  # amount 0: the VAE reconstruction itself (FlowEdit leaves Z = X)
        yield Progress(2, 2, "done")
        guidance = {"source_guidance": source_g, "target_guidance": target_g} if self.flow.uses_guidance() else {}
        how = {"method": METHOD, "steps": steps, "n_max": n_max, "noise_seed": seed, **guidance}
        recipe = {"format": image_modes.RECIPE_FORMAT, "version": 1, "model": self.name, "image_sha256": digest,
                  "prompt": prompt, "steps": steps, "skip": skip, "refine": refine,
                  "pairs": [list(p) for p in pairs], "concepts": [list(c) for c in concepts], "edits": [],
                  "direction_files": [], "encode_method": "flowedit", "draft": draft, **how}
        params = {"mode": "edit", "prompt": prompt, "steps": steps, "edits": applied, "encode_method": "flowedit",
                  "recipe": recipe, **how}
        not_used = ["implicit masks (DDPM inversion only)"] if request.get("masks", True) and applied else []
        info = {"applied": applied, "not_used": not_used, "recipe": recipe, "psnr": psnr, "original": original,
                "reconstruction": reconstruction, "draft": draft, "mask_share": [], "seed": seed,
                "saved_direction": None, "seconds": round(time.perf_counter() - started, 3), **how}
        yield Result((self._art(out, seed, params),), info=info)

    def _run_walk(self, request, cancel) -> Iterator[Event]:
        """Seed and/or prompt walk, flow-match Euler from slerped noise (see :mod:`walks`)."""
        for sentence in self._ignored({**request, "encode_method": None}):
            yield Log(sentence, "warning")
        size = self._size(request)
        steps, cfg = int(request.get("steps") or 20), float(request.get("cfg_scale", self.defaults["cfg_scale"]))
        frames = int(request.get("frames") or 8)
        budget = int(request.get("extra_frames", frames)) if request.get("adaptive", True) else 0
        prompt_a = request.get("prompt") or ""
        prompt_b = request.get("prompt_to") or prompt_a
        seed_a = seeds.pick_seed(request.get("seed"))
        seed_b = int(request["seed_to"]) if request.get("seed_to") is not None else seed_a
        sigmas = self.flow.sigmas(steps, self._latent_shape(size))
        na, nb = self._noise(seed_a, size), self._noise(seed_b, size)
        mixing = request.get("interpolation") == "predictions"

        def frame_at(s: float) -> tuple[Image.Image, torch.Tensor]:
            if mixing:
                queries = [Query(0, prompt_a, cfg), Query(0, prompt_b, cfg)]
            else:
                queries = [Query(0, self.flow.blend(prompt_a, prompt_b, s), cfg)]

            def velocity(z: torch.Tensor, t: float) -> torch.Tensor:
                if cancel.is_set and not cancel.keep_partial:
                    raise Cancelled()
                v = self.flow.velocities(z, t, queries)
                return (1.0 - s) * v[0:1] + s * v[1:2] if mixing else v

            latent = sample(walks.slerp_noise(na, nb, s), sigmas, velocity)
            return self.editor.decode(latent), latent

        yield Log(f"walk {seed_a}->{seed_b}, {prompt_a!r}->{prompt_b!r}, {frames} frames (+ up to {budget} placed "
                  f"where the change is largest), {steps} flow-match Euler steps")
        walk = walks.AdaptiveWalk(frame_at, frames, budget,
                                  lambda a, b, w: self.editor.decode(torch.lerp(a, b, w)))
        yield from walks.play(walk, frames, budget, cancel)
        keep = walks.kept(walk, frames, budget)
        images, positions = [walk.images[i] for i in keep], [walk.positions[i] for i in keep]
        params = {"mode": "walk", "prompt": prompt_a, "prompt_to": prompt_b, "seed": seed_a, "seed_to": seed_b,
                  "steps": steps, "cfg_scale": cfg, "frames": len(images), "sampler": "flow-match Euler"}
        arts = tuple(self._art(im, seed_a, {**params, "frame": i, "position": round(p, 4)})
                     for i, (im, p) in enumerate(zip(images, positions, strict=True)))
        yield Result(arts, interrupted=cancel.is_set,
                     info={"smoothness": metrics.walk_smoothness([np.asarray(im) for im in images]),
                           "seed": seed_a, "seed_to": seed_b, "positions": positions,
                           "bridged_in_output": sum(1 for i in keep if walk.is_bridge[i]),
                           "explored": len(walk.images), "frames_added": walk.added,
                           "frames_bridged": walk.bridged,
                           "interpolation": "slerp noise, " + ("mixed predictions" if mixing else
                                                               "lerped sequence + pooled embeddings")})

    def unload(self) -> None:
        with self._lock:
            self.pipe = None
            self.flow.pipe = None
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()


__all__ = ["FlowLatentModel", "flow_edits", "METHOD"]
