"""The loaded diffusers model: runs txt2img / img2img / inpaint requests as event generators.

``pipe(...)`` blocks until the whole image is done, so each image is generated on a short-lived
worker thread; its ``callback_on_step_end`` posts Progress / Preview events to a queue that
:meth:`DiffusersModel.run` yields from.  Cancel and interrupt are checked in that callback,
after every denoising step.
"""

from __future__ import annotations

import gc
import hashlib
import importlib
import inspect
import json
import math
import queue
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import torch
from PIL import Image

from studio.plugin_api import (Artifact, ArtifactReady, CancelToken, Cancelled, Event, Kind, LoadOptions, Log,
                               ParamError, Preview, Progress, Result)
from studio.plugin_kit import seeds
from studio.plugin_kit.diffusion import loading
from studio.plugin_kit.diffusion.sources import Source
from studio.plugin_kit.images import open_user_image

from . import control, image_prompt, inpaint_options, schedulers
from . import hires as hires_fix
from .loras import LoraSet, parse_entries
from .previews import LatentRGB, fit_latent_rgb
from .prompting import Prompter

MODES = ("txt2img", "img2img", "inpaint")
IMAGE_MODES = ("img2img", "inpaint")


class _Abort(Exception):
    """Raised inside the step callback to stop a pipeline call at once (cancel, or consumer gone)."""


@dataclass
class _Outcome:
    images: list = field(default_factory=list)
    interrupted: bool = False
    steps_done: int = 0


class _DenoisedRecorder:
    """Wraps a fresh scheduler's ``step`` to keep the latest denoised (x0) estimate, when the
    scheduler offers one; previews and partial results look much better from it than from x_t."""

    def __init__(self, scheduler: Any) -> None:
        self.latest: torch.Tensor | None = None
        self._step = scheduler.step
        scheduler.step = self._wrapped
        self._scheduler = scheduler

    def _wrapped(self, *args: Any, **kwargs: Any) -> Any:
        out = self._step(*args, **kwargs)
        x0 = getattr(out, "pred_original_sample", None)
        if x0 is None and isinstance(out, tuple) and len(out) > 1 and isinstance(out[1], torch.Tensor):
            x0 = out[1]
        if x0 is None:  # multistep solvers in x0-prediction form keep it as their last model output
            outputs = getattr(self._scheduler, "model_outputs", None)
            config = self._scheduler.config
            if outputs and outputs[-1] is not None and (
                    config.get("algorithm_type", "") in ("dpmsolver++", "sde-dpmsolver++")
                    or config.get("predict_x0", False)):
                x0 = outputs[-1]
        self.latest = x0
        return out


def _counted(i: int, n_timesteps: int, order: int, n_steps: int) -> bool:
    """Whether timestep index ``i`` completes a user-visible step (diffusers' progress-bar rule)."""
    warmup = n_timesteps - n_steps * order
    return i == n_timesteps - 1 or ((i + 1) > warmup and (i + 1) % order == 0)


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()[:10]


def _open_image(path: Any, label: str, size: tuple[int, int], convert: str) -> Image.Image:
    image = open_user_image(path, label, convert)
    if image.size != size:
        image = image.resize(size, Image.Resampling.LANCZOS if convert == "RGB" else Image.Resampling.BILINEAR)
    return image


def import_for_first_run(folder: Path | None = None) -> None:
    """Import the modules a first load + run would import: the pipelines ``pipe_for`` uses, and
    the component classes named in ``folder``'s ``model_index.json`` (when it has one)."""
    loading._quiet_libraries()  # first: importing the pipelines prints notices otherwise
    from diffusers import (AutoPipelineForImage2Image, AutoPipelineForInpainting,  # noqa: F401
                           AutoPipelineForText2Image, DiffusionPipeline)

    if folder is None:
        return
    try:
        index = json.loads((Path(folder) / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    names = [("diffusers", index.get("_class_name"))]
    names += [tuple(v) for v in index.values() if isinstance(v, list) and len(v) == 2]
    for library, class_name in names:
        if library in ("diffusers", "transformers") and isinstance(class_name, str):
            cls = getattr(importlib.import_module(library), class_name, None)
            compatibles = getattr(cls, "_get_compatibles", None)  # schedulers: the sampler list
            if callable(compatibles):
                compatibles()
    try:
        importlib.import_module("diffusers.guiders")  # from_pretrained looks for guider components
    except ImportError:
        pass


class DiffusersModel:
    """A :class:`studio.plugin_api.LoadedModel` around one diffusers pipeline."""

    def __init__(self, source: str, resolved: Source, loaded: loading.LoadedPipeline,
                 options: LoadOptions) -> None:
        self.source = source
        self.name = resolved.name
        self.options = options
        self.device = loaded.device
        self.dtype = loaded.dtype
        self._base = loaded.pipe
        self._pipes: dict[str, Any] = {}
        self._notes = list(loaded.notes)
        self._weights_file = loaded.weights_file
        self._hash: str | None = None
        self._rgb: LatentRGB | None = None
        self._rgb_error: str | None = None
        self._loras = LoraSet(self._base)
        self._controls = control.ControlModels()
        self._image_prompt = image_prompt.ImagePromptState()
        self._upscalers: dict[Path, Any] = {}  # the hires fix's upscaler model (one at a time)
        self._lock = threading.Lock()
        # One long-lived thread runs every pipeline call of this model: a fresh thread per call
        # measured ~5-10% slower on the CPU (torch's per-thread worker pools start cold).
        self._runner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="studio-diffusers-run")
        self.memory_bytes = loading.memory_bytes(self._base)
        denoiser = self.denoiser
        self.inpaint_model = denoiser is not None and getattr(denoiser.config, "in_channels", 4) == 9
        self.size_multiple = self._size_multiple()
        self.defaults = {"size": self._native_size(), "steps": 20, "cfg_scale": 7.0}
        self.choices = {"scheduler": schedulers.compatible_names(self._base.scheduler)}
        self.modes = self._supported_modes()

    @classmethod
    def load(cls, source: str, resolved: Source, options: LoadOptions,
             progress: Callable[[str], None]) -> "DiffusersModel":
        loaded = loading.load_pipeline(resolved, options, progress)
        model = cls(source, resolved, loaded, options)
        progress(f"Loaded {model.name} on {model.device} ({model.memory_bytes / 2**20:.0f} MiB)")
        return model

    # ------------------------------------------------------------------ facts about the model
    def _supported_modes(self) -> tuple[str, ...]:
        """The modes this pipeline can switch to: those diffusers' auto pipelines map its family
        to (``from_pipe``).  A 9-channel inpainting UNet runs every mode through its own pipeline;
        a pipeline the auto pipelines do not know keeps every mode (``pipe_for`` then says why
        one fails)."""
        if self.inpaint_model:
            return MODES
        from diffusers.pipelines import auto_pipeline as auto

        by_mode = {"txt2img": auto.AUTO_TEXT2IMAGE_PIPELINES_MAPPING,
                   "img2img": auto.AUTO_IMAGE2IMAGE_PIPELINES_MAPPING,
                   "inpaint": auto.AUTO_INPAINT_PIPELINES_MAPPING}
        name = type(self._base).__name__
        family = next((key for mapping in by_mode.values() for key, cls in mapping.items()
                       if getattr(cls, "__name__", "") == name), None)
        if family is None:
            return MODES
        return tuple(mode for mode in MODES if family in by_mode[mode])


    @property
    def pipe(self) -> Any:
        return self._base

    @property
    def denoiser(self) -> Any:
        return getattr(self._base, "unet", None) or getattr(self._base, "transformer", None)

    def _vae_factor(self) -> int:
        factor = getattr(self._base, "vae_scale_factor", None)
        if factor:
            return int(factor)
        vae = getattr(self._base, "vae", None)
        return 2 ** (len(vae.config.block_out_channels) - 1) if vae is not None else 8

    def _size_multiple(self) -> int:
        # UNets pad odd latent sizes themselves (forward_upsample_size), so only the VAE's factor
        # and the pipelines' own multiple-of-8 check bind them (A1111's rule); transformer
        # denoisers need whole patches.
        config = getattr(self.denoiser, "config", None)
        if config is not None and getattr(config, "down_block_types", None):
            return math.lcm(8, self._vae_factor())
        patch = getattr(config, "patch_size", None) if config is not None else None
        return self._vae_factor() * int(patch or 1)

    def _native_size(self) -> tuple[int, int]:
        sample = getattr(getattr(self.denoiser, "config", None), "sample_size", None)
        if sample is None:
            return (512, 512)
        if isinstance(sample, (list, tuple)):
            height, width = int(sample[0]), int(sample[-1])
        else:
            height = width = int(sample)
        factor = self._vae_factor()
        return (width * factor, height * factor)

    def model_hash(self) -> str:
        """A1111 'Model hash': first 10 hex digits of the main weights file's sha256 (computed once)."""
        if self._hash is None:
            self._hash = _file_hash(self._weights_file) if self._weights_file else ""
        return self._hash

    def latent_rgb(self) -> LatentRGB | None:
        """The cached latent->RGB preview map for this model's VAE (fitted on first use)."""
        if self._rgb is None and self._rgb_error is None:
            vae = getattr(self._base, "vae", None)
            try:
                if vae is None:
                    raise ValueError("the pipeline has no VAE")
                self._rgb = fit_latent_rgb(vae, getattr(self._base, "_execution_device", None))
            except Exception as exc:  # noqa: BLE001 - previews are optional
                self._rgb_error = str(exc) or type(exc).__name__
        return self._rgb

    def pipe_for(self, mode: str) -> Any:
        """The pipeline for ``mode``, sharing the loaded weights (``from_pipe``)."""
        key = "inpaint" if self.inpaint_model else mode
        if key not in self._pipes:
            from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting, AutoPipelineForText2Image

            auto = {"txt2img": AutoPipelineForText2Image, "img2img": AutoPipelineForImage2Image,
                    "inpaint": AutoPipelineForInpainting}[key]
            try:
                pipe = auto.from_pipe(self._base)
            except Exception as exc:  # noqa: BLE001 - no such pipeline for this family
                raise ParamError(f"This model ({type(self._base).__name__}) cannot run {mode}: {exc}") from exc
            pipe.set_progress_bar_config(disable=True)
            self._pipes[key] = pipe
        return self._pipes[key]

    # ------------------------------------------------------------------ running

    def run(self, request: Mapping[str, Any], cancel: CancelToken) -> Iterator[Event]:
        with self._lock:  # one run at a time per pipeline
            yield from self._run(request, cancel)

    def _run(self, request: Mapping[str, Any], cancel: CancelToken) -> Iterator[Event]:
        started = time.perf_counter()
        mode = request.get("mode") or "txt2img"
        if mode not in MODES:
            raise ParamError(f"Mode must be one of {', '.join(MODES)} (got {mode!r}).")
        width, height = (int(v) for v in (request.get("size") or self.defaults["size"]))
        m = self.size_multiple
        if width % m or height % m or width <= 0 or height <= 0:
            raise ParamError(f"Size must be a multiple of {m} on both sides for this model "
                             f"(got {width}x{height}); try {max(m, round(width / m) * m)}x"
                             f"{max(m, round(height / m) * m)}.")
        steps = int(request.get("steps") or self.defaults["steps"])
        cfg = float(request.get("cfg_scale", self.defaults["cfg_scale"]))
        strength = float(request.get("strength", 0.75)) if mode in IMAGE_MODES else 1.0
        n_run = steps if mode == "txt2img" else min(int(steps * strength), steps)
        if n_run < 1:
            raise ParamError(f"With denoising strength {strength:g}, {steps} step(s) run no denoising at all; "
                             f"raise the strength or the steps.")
        hires = hires_fix.from_request(request, steps, mode, self.options.allow_pickle)
        per_image = n_run + (hires.runs if hires else 0)
        sampler = request.get("scheduler") or schedulers.DEFAULT
        if sampler not in self.choices["scheduler"]:
            raise ParamError(f"Sampler {sampler!r} does not work with this model; choose one of: "
                             f"{', '.join(self.choices['scheduler'])}.")
        init = mask = None
        if mode in IMAGE_MODES:
            init = _open_image(request.get("init_image"), "Init image", (width, height), "RGB")
        inpaint = None
        if mode == "inpaint":  # mask blur, only-masked crop, masked content (see inpaint_options)
            inpaint = inpaint_options.prepare(request, (width, height), int(request.get("seed") or 0))
            init, mask = inpaint.init, inpaint.mask
        loras = parse_entries(request.get("loras") or (), self.options.allow_pickle)
        controls = control.parse(request.get("controls"), control.builtin_for(self.source))
        control_maps = control.control_maps(controls, (width, height)) if controls else []
        image_prompts, adapter = image_prompt.parse(request.get("image_prompts"), request.get("image_prompt_model"),
                                                    self.options.allow_pickle)
        preview_every = int(request.get("preview_every", 1) or 0)
        seed = seeds.pick_seed(request.get("seed"))
        count = int(request.get("batch_count", 1) or 1)
        prompt = request.get("prompt") or ""
        negative = request.get("negative_prompt") or ""
        prompter = Prompter()
        prompter.check(prompt, negative)  # a bad {choice} or __wildcard__ fails before any model work

        for note in self._notes:
            yield Log(note, "warning")
        self._notes.clear()
        for line in self._loras.apply(loras):
            yield Log(line)
        if self._hash is None and self._weights_file is not None:
            yield Log(f"Hashing {self._weights_file.name} for the metadata (once per model)")
        model_hash = self.model_hash()
        rgb = None
        if preview_every:
            had_error = self._rgb_error
            rgb = self.latent_rgb()
            if rgb is None and had_error is None:
                yield Log(f"Previews are off for this model: {self._rgb_error}", "warning")

        pipe = (self._controls.pipeline(self._base, mode, controls, self.dtype, self.device, self.options.allow_pickle)
                if controls else self.pipe_for(mode))
        original = pipe.scheduler
        pipe.scheduler = schedulers.make_scheduler(sampler, original)
        sampler_name = schedulers.name_for(original) if sampler == schedulers.DEFAULT else sampler
        recorder = _DenoisedRecorder(pipe.scheduler)
        kwargs, dropped = self._call_kwargs(pipe, mode, prompt, negative, steps, cfg, width, height,
                                            init, mask, strength)
        if dropped:
            yield Log(f"{type(pipe).__name__} ignores: {', '.join(dropped)}", "warning")
        self._image_prompt.prepare(pipe, adapter, self.dtype, self.device)
        if image_prompts:
            kwargs.update(self._image_prompt.call_kwargs(pipe, image_prompts))
        if controls:
            kwargs.update(control.call_kwargs(mode, controls, control_maps))
            yield Log(f"control: {'; '.join(item.a1111() for item in controls)}")
            if hires is not None:
                yield Log("The hires fix's second pass runs without the control inputs (they guide the "
                          "composition in the first pass).", "warning")
        if hires is not None and hires.upscaler == "Latent":
            kwargs["output_type"] = "latent"  # the first pass hands its latents to the second
        if hires is not None:
            yield Log(f"hires fix: x{hires.scale:g} with {hires.label}, then {hires.runs} step(s) at "
                      f"{'x'.join(map(str, hires.target(width, height, self.size_multiple)))}")
        yield Log(f"{mode} {width}x{height}, {steps} steps, {sampler_name}, seed {seed}"
                  + (f", {count} images" if count > 1 else ""))

        artifacts: list[Artifact] = []
        interrupted = False
        done_steps = 0
        try:
            for index, image_seed in enumerate(seeds.batch_seeds(seed, count)):
                if cancel.is_set:
                    if not cancel.keep_partial:
                        raise Cancelled()
                    interrupted = True
                    break
                recorder.latest = None
                kwargs["generator"] = [seeds.cpu_generator(image_seed)]
                prompt_call = prompter.apply(pipe, kwargs, prompt, negative, image_seed)
                for note in prompt_call.notices:
                    yield Log(note, "warning")
                outcome = yield from self._stream(
                    pipe, kwargs, cancel, recorder, rgb, preview_every, (width, height),
                    offset=index * per_image, n_steps=n_run, grand_total=per_image * count,
                    label=f"image {index + 1}/{count}" if count > 1 else "")
                done_steps += outcome.steps_done
                if hires is not None:
                    outcome = yield from self._hires_pass(
                        hires, outcome, kwargs, sampler, image_seed, cancel, rgb, preview_every, (width, height),
                        offset=index * per_image + n_run, grand_total=per_image * count,
                        label=f"image {index + 1}/{count}" if count > 1 else "")
                    done_steps += outcome.steps_done
                params = {
                    "prompt": prompt, "negative_prompt": negative, "steps": steps, "sampler": sampler_name,
                    "cfg_scale": cfg, "seed": image_seed, "width": width, "height": height,
                    "model": self.name, "model_hash": model_hash, "mode": mode,
                    "loras": [(path.stem, weight) for path, weight in loras], "batch_index": index,
                }
                params.update(prompt_call.params)
                if hires is not None:
                    params.update(hires.metadata())
                params.update(control.metadata(controls))
                params.update(image_prompt.metadata(image_prompts, adapter))
                if mode in IMAGE_MODES:
                    params["denoising_strength"] = strength
                if inpaint is not None:
                    params.update(inpaint.applied or {})
                for image in outcome.images:
                    image = inpaint.finish(image) if inpaint is not None else image
                    artifact = Artifact(Kind.IMAGE, image=image.convert("RGB"), seed=image_seed, parameters=params)
                    artifacts.append(artifact)
                    if count > 1 and not outcome.interrupted:
                        yield ArtifactReady(artifact)  # saved now: a crash at image 3 keeps 1 and 2
                if outcome.interrupted:
                    interrupted = True
                    break
        finally:
            pipe.scheduler = original
        yield Result(tuple(artifacts), interrupted=interrupted,
                     info={"seed": seed, "device": self.device, "steps_done": done_steps,
                           "seconds": round(time.perf_counter() - started, 3)})

    def _hires_pass(self, hires: hires_fix.Hires, first: _Outcome, kwargs: dict, sampler: str, seed: int,
                    cancel: CancelToken, rgb: LatentRGB | None, preview_every: int, size: tuple[int, int], *,
                    offset: int, grand_total: int, label: str) -> Iterator[Event]:
        """The second, img2img pass of the hires fix on the first pass's output; returns an _Outcome."""
        base = self.pipe_for("txt2img")
        if first.interrupted:  # stopped in the first pass: that partial image is the result
            if first.images and not isinstance(first.images[0], Image.Image):
                first.images = self._decode(base, first.images)
            return first
        target = hires.target(size[0], size[1], self.size_multiple)
        if hires.upscaler == "Latent":
            latents = torch.stack(list(first.images)) if isinstance(first.images, list) else first.images
            start: Any = hires_fix.upscale_latents(latents, target, self._vae_factor())
        else:
            upscaler = None
            if hires.upscaler == "Model" and hires.model is not None:
                upscaler = self._upscaler(hires.model)
            start = hires_fix.upscale_images(first.images, target, upscaler)
        pipe = self.pipe_for("img2img")
        if self._image_prompt.loaded is not None:  # the UNet holds the adapter: the second pass needs its encoder
            self._image_prompt.prepare(pipe, self._image_prompt.loaded, self.dtype, self.device)
        original = pipe.scheduler
        pipe.scheduler = schedulers.make_scheduler(sampler, original)
        recorder = _DenoisedRecorder(pipe.scheduler)
        accepted = set(inspect.signature(pipe.__call__).parameters)
        call = {k: v for k, v in kwargs.items() if k in accepted and k not in ("height", "width")}
        call.update(image=start, strength=hires.strength, num_inference_steps=hires.steps, output_type="pil",
                    generator=[seeds.cpu_generator(seed)])
        try:
            second = yield from self._stream(pipe, call, cancel, recorder, rgb, preview_every, target,
                                             offset=offset, n_steps=hires.runs, grand_total=grand_total, label=label)
        finally:
            pipe.scheduler = original
        return second

    def _upscaler(self, path: Path) -> Any:
        """An upscaler model for the hires fix, loaded once per file and kept with this model."""
        cache = self._upscalers
        if path not in cache:
            from studio.plugin_kit.upscale import models as upscale_models

            cache.clear()  # one at a time: they are not small
            cache[path] = upscale_models.load(path, allow_pickle=self.options.allow_pickle, device=str(self.device))
        return cache[path]

    def _decode(self, pipe: Any, latents: Any) -> list:
        batch = torch.stack(list(latents)) if isinstance(latents, list) else latents
        vae = pipe.vae
        with torch.inference_mode():
            decoded = vae.decode(batch.to(vae.dtype) / vae.config.scaling_factor).sample
        return list(pipe.image_processor.postprocess(decoded, output_type="pil"))

    def _call_kwargs(self, pipe: Any, mode: str, prompt: str, negative: str, steps: int, cfg: float,
                     width: int, height: int, init: Any, mask: Any, strength: float) -> tuple[dict, list[str]]:
        kwargs: dict[str, Any] = {
            "prompt": prompt, "negative_prompt": negative, "num_inference_steps": steps,
            "guidance_scale": cfg, "height": height, "width": width, "output_type": "pil",
        }
        if self.inpaint_model:  # 9-channel UNet: every mode goes through the inpaint pipeline
            if init is None:
                init = Image.new("RGB", (width, height), (127, 127, 127))
            if mask is None:
                mask = Image.new("L", (width, height), 255)
        if init is not None:
            kwargs.update(image=init, strength=strength)
        if mask is not None:
            kwargs["mask_image"] = mask
        accepted = set(inspect.signature(pipe.__call__).parameters)
        dropped = [k for k in list(kwargs) if k not in accepted]
        for k in dropped:
            value = kwargs.pop(k)
            if k in ("height", "width") or (k == "negative_prompt" and not value):
                dropped.remove(k)
        return kwargs, dropped

    def _stream(self, pipe: Any, kwargs: dict, cancel: CancelToken, recorder: _DenoisedRecorder,
                rgb: LatentRGB | None, preview_every: int, size: tuple[int, int], *, offset: int,
                n_steps: int, grand_total: int, label: str) -> Iterator[Event]:
        """Run one pipeline call on a worker thread, yielding its events; returns an _Outcome."""
        events: queue.SimpleQueue = queue.SimpleQueue()
        consumer_gone = threading.Event()
        outcome = _Outcome()

        def on_step(p: Any, i: int, t: Any, tensors: dict) -> dict:
            if consumer_gone.is_set():
                p._interrupt = True
                raise _Abort()
            n_timesteps = getattr(p, "_num_timesteps", None) or n_steps
            if _counted(i, n_timesteps, p.scheduler.order, n_steps):
                outcome.steps_done += 1
                step = offset + outcome.steps_done
                events.put(Progress(step, grand_total, label))
                if rgb is not None and preview_every and outcome.steps_done % preview_every == 0:
                    latents = recorder.latest if recorder.latest is not None else tensors.get("latents")
                    if latents is not None and latents.ndim == 4 and latents.shape[1] == rgb.channels:
                        events.put(Preview(step, image=rgb.to_image(latents[0], size)))
                # No lockstep with the consumer: waiting for it every step cost ~2 ms a step in
                # thread hand-offs. A cancel sets the token directly, and the token is checked
                # below after every step, so a stop still lands within one step.
            if cancel.is_set:
                p._interrupt = True
                if not cancel.keep_partial:
                    raise _Abort()
                if not outcome.interrupted:  # decode the denoised estimate as the partial image
                    outcome.interrupted = True
                    x0 = recorder.latest
                    latents = tensors.get("latents")
                    if x0 is not None and latents is not None and x0.shape == latents.shape:
                        return {"latents": x0.to(latents.dtype)}
            return {}

        def work() -> None:
            try:
                # Inference mode (the pipelines only turn off autograd) skips version counting
                # and view tracking on every tensor op: ~5% faster on the CPU for the built-in
                # model, same pixels.  Nothing made in the call outlives it as a tensor (the
                # scheduler is a fresh one, the images leave as PIL), except with CPU offload,
                # whose hooks move the weights inside the call: those must stay normal tensors
                # (LoRA loading later updates them in place).
                with torch.inference_mode(not self.options.cpu_offload):
                    result = pipe(**kwargs, callback_on_step_end=on_step,
                                  callback_on_step_end_tensor_inputs=["latents"])
                events.put(("done", result.images))
            except _Abort:
                events.put(("aborted", None))
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
                events.put(("error", exc))

        worker = self._runner.submit(work)
        try:
            while True:
                item = events.get()
                if not isinstance(item, tuple):
                    yield item
                    continue
                tag, payload = item
                if tag == "done":
                    outcome.images = list(payload)
                    return outcome
                if tag == "aborted":
                    free = getattr(pipe, "maybe_free_model_hooks", None)
                    if free is not None:
                        free()
                    raise Cancelled()
                raise payload
        finally:
            consumer_gone.set()
            futures_wait([worker])

    def unload(self) -> None:
        self._runner.shutdown(wait=True)
        with self._lock:
            self._pipes.clear()
            self._controls.clear()
            self._upscalers.clear()
            self._base = None
            self._loras = None
            self._rgb = None
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
