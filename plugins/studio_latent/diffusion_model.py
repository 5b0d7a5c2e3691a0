"""Latent navigation on Stable Diffusion style diffusers pipelines.  Imports torch + diffusers.

The pipeline is loaded with the loader the image plugin uses too (:mod:`studio.plugin_kit.diffusion.loading`).
Every image here is made with a DDIM scheduler built from the pipeline's config, so a frame
is a deterministic function of (initial noise, text embeddings):

* **seed walk**: spherical interpolation (slerp) between the two seeds' initial noises;
* **prompt walk**: linear interpolation of the two prompts' text embeddings (and pooled
  embeddings on SDXL); both at once is allowed;
* **prompt-pair direction** ("red" -> "blue"): if the prompt contains the first word,
  d = E(prompt with the word replaced) - E(prompt), so strength 1 lands exactly on the
  replaced prompt's embedding and 0.5 halfway; otherwise d = E("blue") - E("red").  The
  edited embedding is E(prompt) + strength * d.
* **your own image**: DDIM inversion (the image's VAE latent run *up* the noise schedule
  with DDIMInverseScheduler; regenerated at guidance 1, where inversion is faithful) or
  img2img / SDEdit (noised to ``img2img_strength`` and denoised).  The reconstruction is the
  same path with no edits, so amount 0 reproduces it.
"""

from __future__ import annotations

import gc
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
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
    Result,
)
from studio.plugin_kit import seeds
from studio.plugin_kit.diffusion import loading
from studio.plugin_kit.diffusion.sources import Source
from studio.plugin_kit.latent import directions as dirfile
from studio.plugin_kit.latent import metrics

from . import DIFFUSION_MODES, common, cpu_threads, ddpm_edit, flow_edit, flow_model, hspace, image_modes, walks
from .denoiser import mid_shift
from .flow_model import FlowLatentModel
from .image_edit import ImageEditor

SPACE = "text-embedding"


class DiffusionLatentModel:
    def __init__(self, source: str, resolved: Source, loaded: loading.LoadedPipeline, options: LoadOptions):
        self.source = source
        self.name = resolved.name
        self.pipe = loaded.pipe
        self.device = loaded.device
        self.dtype = loaded.dtype
        self.options = options
        self.notes = list(loaded.notes)
        self.memory_bytes = loading.memory_bytes(self.pipe)
        unet = getattr(self.pipe, "unet", None)
        self.small = cpu_threads.is_small(unet)
        if getattr(self.pipe, "transformer", None) is not None and unet is None:
            raise ValueError(f"{type(self.pipe).__name__} is a transformer pipeline that latent editing does not "
                             f"support; it supports SD 1.x/2.x, SDXL (UNet) and SD3 / Flux.1 (FlowEdit).")
        if not hasattr(self.pipe, "encode_prompt") or getattr(self.pipe, "unet", None) is None:
            raise ValueError(f"{type(self.pipe).__name__} is not a Stable Diffusion style pipeline (UNet + text "
                             f"encoder); latent walks and prompt directions support SD 1.x/2.x and SDXL.")
        self.xl = getattr(self.pipe, "text_encoder_2", None) is not None
        self.vae_factor = int(getattr(self.pipe, "vae_scale_factor", 8) or 8)
        sample = self.pipe.unet.config.sample_size
        h, w = (sample, sample) if isinstance(sample, int) else (sample[0], sample[-1])
        self.native_size = (int(w) * self.vae_factor, int(h) * self.vae_factor)
        self.defaults = {"size": self.native_size, "steps": 20, "cfg_scale": 7.0}
        self.choices: dict[str, list[Any]] = {}
        self.modes = DIFFUSION_MODES
        self._inverted: dict[tuple, torch.Tensor] = {}
        self.editor = ImageEditor(self.pipe, self.xl, self.name)
        self.h_directions = hspace.empty_set(self.name)
        self._files: dict[tuple, dirfile.DirectionSet] = {}
        self._lock = threading.Lock()
        shape = self._embed_shape()
        self.directions = dirfile.DirectionSet([], SPACE, self.name, shape)
        extra, notes = common.contributed_directions(SPACE, shape)
        self.directions = self.directions.merged(extra)
        self.notes += notes

    @classmethod
    def load(cls, source: str, resolved: Source, options: LoadOptions,
             progress: Callable[[str], None]) -> DiffusionLatentModel | FlowLatentModel:
        loaded = loading.load_pipeline(resolved, options, progress)
        if flow_edit.family_of(loaded.pipe) is not None:  # SD3 / Flux.1: FlowEdit, see flow_model
            flow = FlowLatentModel(source, resolved, loaded, options)
            progress(f"Loaded {flow.name} for latent navigation ({flow_model.METHOD}) on {flow.device}")
            return flow
        model = cls(source, resolved, loaded, options)
        progress(f"Loaded {model.name} for latent navigation on {model.device}")
        return model

    # ------------------------------------------------------------------------------ pieces
    def _embed_shape(self) -> tuple[int, ...]:
        tok = self.pipe.tokenizer
        width = int(self.pipe.unet.config.cross_attention_dim)
        return (int(tok.model_max_length), width)

    @torch.no_grad()
    def embed(self, prompt: str, negative: str, guided: bool) -> dict[str, torch.Tensor]:
        device = self.pipe._execution_device
        if self.xl:
            pe, ne, ppe, npe = self.pipe.encode_prompt(prompt=prompt, device=device, num_images_per_prompt=1,
                                                       do_classifier_free_guidance=guided, negative_prompt=negative)
            out = {"prompt_embeds": pe, "pooled_prompt_embeds": ppe}
            if guided:
                out.update(negative_prompt_embeds=ne, negative_pooled_prompt_embeds=npe)
            return out
        pe, ne = self.pipe.encode_prompt(prompt, device, 1, guided, negative_prompt=negative)
        out = {"prompt_embeds": pe}
        if guided:
            out["negative_prompt_embeds"] = ne
        return out

    def noise(self, seed: int, width: int, height: int) -> torch.Tensor:
        shape = (1, int(self.pipe.unet.config.in_channels), height // self.vae_factor, width // self.vae_factor)
        return torch.randn(shape, generator=seeds.cpu_generator(int(seed)), dtype=torch.float32)

    def _ddim(self):
        from diffusers import DDIMScheduler

        return DDIMScheduler.from_config(self.pipe.scheduler.config)

    @torch.no_grad()
    def generate(self, embeds: Mapping[str, torch.Tensor], latents: torch.Tensor, steps: int, cfg: float,
                 size: tuple[int, int], cancel: CancelToken | None = None) -> Image.Image:
        """DDIM from ``latents`` with ready-made embeddings (the same sampler as the walks, so a
        walk's end frames are exactly these images)."""
        if cancel is not None and cancel.is_set and not cancel.keep_partial:
            raise Cancelled()
        conds = walks.Conditions(self.pipe, size, self.xl)
        neg = embeds.get("negative_prompt_embeds")
        if neg is None:
            neg_row = conds.add("")
        else:
            neg_row = conds.add_embedding("negative", neg, embeds.get("negative_pooled_prompt_embeds"))
        row = conds.add_embedding("prompt", embeds["prompt_embeds"], embeds.get("pooled_prompt_embeds"))
        schedule = ddpm_edit.Schedule.from_config(self.pipe.scheduler.config, steps)
        latent = walks.render_frame(self.pipe.unet, conds, schedule, latents.to(self.device), 0.0, cfg,
                                    (neg_row, row, row))
        return self.editor.decode(latent)

    def _size(self, request, image: Image.Image | None = None) -> tuple[int, int]:
        """The request's size; else, for your image, its own shape at about the model's native area
        (squashing a 4:3 photo into the model's square would edit a different picture); else the
        native size.  Sides are multiples of the model's step."""
        m = self.vae_factor * 2 if self.vae_factor < 8 else 8
        if request.get("size"):
            w, h = (int(v) for v in request["size"])
        elif image is not None and image.width * self.native_size[1] != image.height * self.native_size[0]:
            k = (self.native_size[0] * self.native_size[1] / (image.width * image.height)) ** 0.5
            w, h = (max(m, int(round(v * k / m)) * m) for v in image.size)
        else:
            w, h = self.native_size
        if w % m or h % m:
            raise ParamError(f"Size must be a multiple of {m} on both sides for this model (got {w}x{h}).")
        return w, h

    def _image_tensor(self, image: Image.Image, size: tuple[int, int]) -> torch.Tensor:
        if image.size != size:
            image = image.resize(size, Image.Resampling.LANCZOS)
        x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
        return x.to(self.device, self.dtype)

    @torch.no_grad()
    def invert(self, image: Image.Image, embeds: Mapping[str, torch.Tensor], steps: int,
               size: tuple[int, int]) -> torch.Tensor:
        """DDIM inversion: the noise that DDIM (guidance 1) turns back into ``image``."""
        from diffusers import DDIMInverseScheduler

        unet = self.pipe.unet
        if getattr(unet.config, "addition_embed_type", None) or \
                unet.config.in_channels != self.pipe.vae.config.latent_channels:
            raise ParamError("DDIM inversion here supports SD 1.x/2.x style UNets; use encode method img2img "
                             "for this model.")
        vae = self.pipe.vae
        posterior = vae.encode(self._image_tensor(image, size)).latent_dist
        lat = posterior.mean
        shift = getattr(vae.config, "shift_factor", None) or 0.0
        lat = (lat - shift) * vae.config.scaling_factor
        inverse = DDIMInverseScheduler.from_config(self.pipe.scheduler.config)
        inverse.set_timesteps(steps, device=lat.device)
        cond = embeds["prompt_embeds"]
        for t in inverse.timesteps:
            eps = unet(lat, t, encoder_hidden_states=cond).sample
            lat = inverse.step(eps, t, lat).prev_sample
        return lat.float().cpu()

    def directions_for(self, request) -> dirfile.DirectionSet:
        """Text-embedding directions: the model's plus the request's files in that space."""
        return self._direction_sets(request)[0]

    def _direction_sets(self, request) -> tuple[dirfile.DirectionSet, dirfile.DirectionSet]:
        """(text-embedding directions, h-space directions), each with the request's files."""
        text, h = self.directions, self.h_directions
        for f in request.get("direction_files") or ():
            key = common.file_key(f)
            if key not in self._files:
                try:
                    self._files[key] = dirfile.load(f)
                except dirfile.DirectionFileError as exc:
                    raise ParamError(str(exc)) from None
            extra = self._files[key]
            target = h if extra.space == hspace.SPACE else text
            if target.latent_shape and tuple(extra.latent_shape) != tuple(target.latent_shape) and \
                    extra.space != hspace.SPACE:
                raise ParamError(f"{f} holds directions of shape {list(extra.latent_shape)}; this model's "
                                 f"{target.space} is {list(target.latent_shape)}.")
            merged = target.merged(extra, prefix=f"{str(f).rsplit('/', 1)[-1].rsplit('.', 1)[0]}:")
            if extra.space == hspace.SPACE:
                h = dirfile.DirectionSet(merged.directions, hspace.SPACE, self.name, extra.latent_shape)
            else:
                text = merged
        return text, h

    def pair_direction(self, prompt: str, a: str, b: str, negative: str, guided: bool) -> dict[str, torch.Tensor]:
        """Text-embedding direction of a prompt pair (see the module docstring)."""
        pattern = re.compile(rf"\b{re.escape(a)}\b", re.IGNORECASE)
        if prompt and pattern.search(prompt):
            start = self.embed(prompt, negative, False)
            end = self.embed(pattern.sub(b, prompt), negative, False)
        else:
            start = self.embed(a, negative, False)
            end = self.embed(b, negative, False)
        return {k: end[k] - start[k] for k in start}

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
            with cpu_threads.one_thread_if_small(self.small, self.device):
                yield from handler(request, cancel)

    def _art(self, image: Image.Image, seed: int | None, params: dict) -> Artifact:
        return Artifact(Kind.LATENT, image=image, seed=seed, parameters={"model": self.name, **params})

    def _run_info(self, request, cancel) -> Iterator[Event]:
        dset, hset = self._direction_sets(request)
        headers = [{**d.header(), "space": SPACE} for d in dset.directions]
        headers += [{**d.header(), "space": hspace.SPACE} for d in hset.directions]
        yield Result((), info={"directions": headers, "space": SPACE,
                               "latent_shape": list(self.directions.latent_shape), "model": self.name,
                               "native_size": list(self.native_size), "quality_available": False,
                               "encode_available": True, "kind": "diffusion", "xl": self.xl,
                               "encode_methods": ["ddpm-inversion", "ddim-inversion", "img2img"]})

    def _run_quality(self, request, cancel) -> Iterator[Event]:
        yield from image_modes.run_quality(self, request, cancel)

    def _run_discover(self, request, cancel) -> Iterator[Event]:
        yield from image_modes.run_discover(self, request, cancel)

    def _run_walk(self, request, cancel) -> Iterator[Event]:
        """Seed and/or prompt walk; see :mod:`walks` (slerped noise, mixed predictions, adaptive frames)."""
        size = self._size(request)
        steps, cfg = int(request.get("steps") or 20), float(request.get("cfg_scale", 7.0))
        frames = int(request.get("frames") or 8)
        budget = int(request.get("extra_frames", frames)) if request.get("adaptive", True) else 0
        prompt_a = request.get("prompt") or ""
        prompt_b = request.get("prompt_to") or prompt_a
        negative = request.get("negative_prompt") or ""
        seed_a = seeds.pick_seed(request.get("seed"))
        seed_b = int(request["seed_to"]) if request.get("seed_to") is not None else seed_a
        conds = walks.Conditions(self.pipe, size, self.xl, [negative, prompt_a, prompt_b])
        rows = (conds.add(negative), conds.add(prompt_a), conds.add(prompt_b))
        schedule = ddpm_edit.Schedule.from_config(self.pipe.scheduler.config, steps)
        na, nb = self.noise(seed_a, *size), self.noise(seed_b, *size)

        mixing = request.get("interpolation") == "predictions"

        def frame_at(s: float) -> tuple[Image.Image, torch.Tensor]:
            if cancel.is_set and not cancel.keep_partial:
                raise Cancelled()
            noise = walks.slerp_noise(na, nb, s).to(self.device)
            if mixing:
                latent = walks.render_frame(self.pipe.unet, conds, schedule, noise, s, cfg, rows)
            else:
                frame_conds, frame_rows = walks.lerped(conds, rows, s)
                latent = walks.render_frame(self.pipe.unet, frame_conds, schedule, noise, 0.0, cfg, frame_rows)
            return self.editor.decode(latent), latent

        yield Log(f"walk {seed_a}->{seed_b}, {prompt_a!r}->{prompt_b!r}, {frames} frames (+ up to {budget} "
                  f"placed where the change is largest), {steps} DDIM steps")
        walk = walks.AdaptiveWalk(frame_at, frames, budget,
                                  lambda a, b, w: self.editor.decode(torch.lerp(a, b, w)))
        yield from walks.play(walk, frames, budget, cancel)
        keep = walks.kept(walk, frames, budget)
        images, positions = [walk.images[i] for i in keep], [walk.positions[i] for i in keep]
        bridged = sum(1 for i in keep if walk.is_bridge[i])
        params = {"mode": "walk", "prompt": prompt_a, "prompt_to": prompt_b, "seed": seed_a, "seed_to": seed_b,
                  "steps": steps, "cfg_scale": cfg, "frames": len(images)}
        arts = tuple(self._art(im, seed_a, {**params, "frame": i, "position": round(p, 4)})
                     for i, (im, p) in enumerate(zip(images, positions, strict=True)))
        yield Result(arts, interrupted=cancel.is_set,
                     info={"smoothness": metrics.walk_smoothness([np.asarray(im) for im in images]),
                           "seed": seed_a, "seed_to": seed_b, "positions": positions, "bridged_in_output": bridged,
                           "explored": len(walk.images),
                           "frames_added": walk.added, "frames_bridged": walk.bridged,
                           "interpolation": "slerp noise, " + ("mixed predictions" if mixing else "lerped embeddings")})

    def _encode(self, request, image, size, steps, embeds_fn) -> tuple[Image.Image, torch.Tensor | None, str]:
        method = request.get("encode_method") or "ddim-inversion"
        if method == "img2img":
            return image, None, method
        prompt = request.get("prompt") or ""
        key = (common.file_key(request["image"]), size, steps, prompt)
        if key not in self._inverted:
            if len(self._inverted) > 16:
                self._inverted.clear()
            self._inverted[key] = self.invert(image, embeds_fn(prompt), steps, size)
        return image, self._inverted[key], method

    @torch.no_grad()
    def _img2img(self, embeds, image, strength, steps, cfg, size, seed) -> Image.Image:
        from diffusers import AutoPipelineForImage2Image

        pipe = AutoPipelineForImage2Image.from_pipe(self.pipe)
        pipe.set_progress_bar_config(disable=True)
        pipe.scheduler = self._ddim()
        if image.size != size:
            image = image.resize(size, Image.Resampling.LANCZOS)
        out = pipe(**embeds, image=image, strength=strength, num_inference_steps=steps, guidance_scale=cfg,
                   generator=seeds.cpu_generator(seed), output_type="pil")
        return out.images[0].convert("RGB")

    def _edited_embeds(self, request, prompt, negative, guided) -> tuple[dict, list[str], dict]:
        base = self.embed(prompt, negative, guided)
        embeds = dict(base)
        applied = []
        pair_dirs = {}
        for a, b, strength in image_modes.parse_pairs(request.get("pairs")):
            d = self.pair_direction(prompt, a, b, negative, guided)
            pair_dirs[f"{a}->{b}"] = d
            for k, v in d.items():
                embeds[k] = embeds[k] + strength * v
            applied.append(f"{a}->{b} x{strength:g}")
        edits = common.parse_edits(request.get("edits"))
        if edits:
            dset, hset = self._direction_sets(request)
            for name, amount in edits.items():
                if name in hset:
                    continue  # applied as a bottleneck shift while sampling (see _h_shift)
                if name not in dset:
                    raise common.unknown_direction(name, dset.names() + hset.names())
                d = dset.get(name)
                vec = torch.from_numpy(d.vector.astype(np.float32)).to(embeds["prompt_embeds"].device,
                                                                       embeds["prompt_embeds"].dtype)
                embeds["prompt_embeds"] = embeds["prompt_embeds"] + float(amount) * d.scale * vec.reshape(
                    embeds["prompt_embeds"].shape[1:])
                applied.append(f"{name} x{amount:g}")
        return embeds, applied, pair_dirs

    def _h_shift(self, request, size) -> tuple[torch.Tensor | None, list[str]]:
        """The summed bottleneck shift of the request's h-space edits (None if there are none)."""
        spec = image_modes.edit_spec(self, {**request, "pairs": (), "concepts": ()},
                                     image_modes.h_shape(self, size))
        if not spec.h_directions:
            return None, []
        total = sum(torch.from_numpy(v) for _, v in spec.h_directions)
        return total.to(self.device)[None], [n for n, _ in spec.h_directions]

    def _save_pairs(self, path, pair_dirs: dict) -> str:
        dirs = []
        for name, d in pair_dirs.items():
            vec = d["prompt_embeds"][0].float().cpu().numpy()
            safe = re.sub(r"[^A-Za-z0-9_.:+\-]", "_", name.replace("->", "-to-"))[:80]
            dirs.append(dirfile.Direction(name=safe, vector=vec, kind="prompt-pair", scale=1.0, range=(-2, 2),
                                          label=name, notes="text-embedding difference of a prompt pair"))
        try:
            return str(dirfile.save(dirfile.DirectionSet(dirs, SPACE, self.name, self._embed_shape()), path))
        except (dirfile.DirectionFileError, OSError) as exc:
            raise ParamError(f"Could not save the directions: {exc}") from None

    def _run_edit(self, request, cancel) -> Iterator[Event]:
        if request.get("image") and (request.get("encode_method") or "ddpm-inversion") == "ddpm-inversion":
            yield from image_modes.run_edit(self, request, cancel)
            return
        if request.get("concepts"):
            raise ParamError("Concept edits work on your own image (ddpm-inversion); for a generated image "
                             "write the concept into the prompt.")
        started = time.perf_counter()
        given = common.open_rgb(request["image"]) if request.get("image") else None
        size = self._size(request, given)
        steps, cfg = int(request.get("steps") or 20), float(request.get("cfg_scale", 7.0))
        prompt, negative = request.get("prompt") or "", request.get("negative_prompt") or ""
        seed = seeds.pick_seed(request.get("seed"))
        method = None
        if given is not None:
            image, noise, method = self._encode(request, given, size, steps, lambda p: self.embed(p, negative, False))
            if method == "ddim-inversion":
                cfg = 1.0  # plain DDIM inversion is faithful without guidance
        else:
            image, noise = None, self.noise(seed, *size)
        guided = cfg > 1.0
        embeds, applied, pair_dirs = self._edited_embeds(request, prompt, negative, guided)
        shift, h_applied = self._h_shift(request, size)
        applied += h_applied
        with mid_shift(self.pipe.unet, shift):
            if method == "img2img":
                out = self._img2img(embeds, image, float(request.get("img2img_strength") or 0.6), steps, cfg, size,
                                    seed)
            else:
                out = self.generate(embeds, noise, steps, cfg, size, cancel)
        saved = self._save_pairs(request["save_direction"], pair_dirs) if request.get("save_direction") and \
            pair_dirs else None
        params = {"mode": "edit", "prompt": prompt, "seed": seed, "steps": steps, "cfg_scale": cfg,
                  "edits": applied, "encode_method": method}
        yield Result((self._art(out, seed, params),),
                     info={"seed": seed, "applied": applied, "saved_direction": saved,
                           "seconds": round(time.perf_counter() - started, 3)})

    def _run_encode(self, request, cancel) -> Iterator[Event]:
        if not request.get("image"):
            raise ParamError("Choose an image to encode.")
        if (request.get("encode_method") or "ddpm-inversion") == "ddpm-inversion":
            yield from image_modes.run_encode(self, request, cancel)
            return
        given = common.open_rgb(request["image"])
        size = self._size(request, given)
        steps, cfg = int(request.get("steps") or 20), float(request.get("cfg_scale", 7.0))
        prompt, negative = request.get("prompt") or "", request.get("negative_prompt") or ""
        seed = seeds.pick_seed(request.get("seed"))
        image, noise, method = self._encode(request, given, size, steps, lambda p: self.embed(p, negative, False))
        seen = image.resize(size, Image.Resampling.LANCZOS) if image.size != size else image
        if method == "img2img":
            embeds = self.embed(prompt, negative, cfg > 1.0)
            rec = self._img2img(embeds, image, float(request.get("img2img_strength") or 0.6), steps, cfg, size, seed)
        else:
            rec = self.generate(self.embed(prompt, negative, False), noise, steps, 1.0, size, cancel)
        value = metrics.psnr(np.asarray(seen), np.asarray(rec))
        yield Result((self._art(rec, seed, {"mode": "encode", "encode_method": method, "psnr": round(value, 2)}),),
                     info={"psnr": value, "original": seen, "method": method, "seed": seed})

    def unload(self) -> None:
        with self._lock:
            self.pipe = None
            self._inverted.clear()
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
