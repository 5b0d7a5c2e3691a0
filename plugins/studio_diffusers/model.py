"""The loaded diffusers model: runs txt2img / img2img / inpaint / edit requests as event generators.

``pipe(...)`` blocks until the whole image is done, so each image is generated on the model's
worker thread; its ``callback_on_step_end`` posts Progress / Preview events to a queue that
:meth:`DiffusersModel.run` yields from.  Cancel and interrupt are checked in that callback,
after every denoising step.  Pipelines without that callback (PixArt-Sigma) get the same
through a hook on their scheduler's ``step``.  What each pipeline family does with the
parameters is in :mod:`families` (the table) and :mod:`plan` (one call's arguments).

Longer than the project's ~500-line guide on purpose: the run loop (one or two passes, three
ways of streaming steps, interrupt keeping the partial image) is one piece of control flow that
reads best whole; everything that is not that loop already lives beside it (families, plan,
stepping, hires, control, image_prompt, inpaint_options, previews, weights).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import importlib
import inspect
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import torch
from PIL import Image

from studio.plugin_api import (
    Artifact,
    ArtifactReady,
    Cancelled,
    CancelToken,
    Event,
    Kind,
    LoadOptions,
    Log,
    ParamError,
    Preview,
    Progress,
    Result,
)
from studio.plugin_kit import seeds
from studio.plugin_kit.devices import pick_device
from studio.plugin_kit.diffusion import loading
from studio.plugin_kit.diffusion.sources import Source
from studio.plugin_kit.images import open_user_image
from studio.plugin_kit.streaming import ThreadStream

from . import control, control_models, families, image_prompt, inpaint_options, plan, schedulers, stepping, weights
from . import hires as hires_fix
from .loras import LoraSet, parse_entries
from .previews import LatentRGB, fit_latent_rgb, patchified_bn_space, to_grid
from .prompting import Prompter

MODES = ("txt2img", "img2img", "inpaint", "edit")
IMAGE_MODES = ("img2img", "inpaint", "edit")


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
    from diffusers import (  # noqa: F401
        AutoPipelineForImage2Image,
        AutoPipelineForInpainting,
        AutoPipelineForText2Image,
        DiffusionPipeline,
    )

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
    """A :class:`studio.plugin_api.LoadedModel` around one diffusers pipeline (also ``ModelHints``:
    ``defaults``, ``choices`` and ``modes``; ``unsupported`` and ``load_memory`` for the form and the
    status bar)."""

    def __init__(self, source: str, resolved: Source, loaded: loading.LoadedPipeline,
                 options: LoadOptions, load_memory: Mapping[str, Any] | None = None) -> None:
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
        self.memory_bytes = weights.pipeline_bytes(self._base)  # quantized tensors at their real size
        self.load_memory: dict[str, Any] = dict(load_memory or {})
        self.transformer_file = Path(options.transformer) if options.transformer else None
        if self.transformer_file is not None:
            self._weights_file = self.transformer_file
        self.family, self.known = families.family_of(self._base)
        denoiser = self.denoiser
        self.inpaint_model = denoiser is not None and getattr(denoiser.config, "in_channels", 4) == 9
        self.size_multiple = families.size_multiple(self._base, self.family)
        if self.inpaint_model:  # a 9-channel inpainting UNet runs every mode through its own pipeline
            self.modes = ["txt2img", "img2img", "inpaint"]
        else:
            self.modes = families.supported_modes(self._base, self.family) if self.known else ["txt2img"]
        self.unsupported = families.unsupported(self._base, self.family, self.known)
        self.defaults: dict[str, Any] = {"size": families.native_size(self._base, self.family),
                                         "steps": families.default_steps(self._base, self.family)}
        if "cfg_scale" not in self.unsupported:
            self.defaults["cfg_scale"] = families.default_cfg(self._base, self.family)
        distilled = families.default_distilled(self._base, self.family)
        if distilled is not None:
            self.defaults["distilled_guidance"] = distilled
        sampler_names = (schedulers.names_for(self._base.scheduler, self.family.flow, self.family.scheduler_args)
                         if self.known else [schedulers.DEFAULT])
        self.choices = {"scheduler": sampler_names}
        if not self.family.step_callback:
            self._notes.append(f"{self.family.label} pipelines have no step callback: progress, previews and "
                               f"Interrupt come from a hook on the sampler's steps instead.")

    @classmethod
    def load(cls, source: str, resolved: Source, options: LoadOptions,
             progress: Callable[[str], None]) -> DiffusersModel:
        quantize = (options.quantize or "none").lower()
        if quantize not in weights.QUANTIZE_CHOICES:
            raise ValueError(f"Quantization must be one of {', '.join(weights.QUANTIZE_CHOICES)} (got {quantize!r}).")
        device = pick_device(options.device)
        with weights.LoadMeter(device) as meter:
            components: dict[str, Any] = {}
            if options.transformer:
                if resolved.kind != "folder":
                    raise ValueError(f"A separate transformer file goes with a diffusers base folder that provides "
                                     f"the other components; {resolved.name} is not a folder.")
                dtype = loading.pick_dtype(options.dtype, device, [])
                components = weights.load_denoiser_file(Path(options.transformer), Path(resolved.location), dtype,
                                                        progress)
            loaded = loading.load_pipeline(resolved, options, progress, components=components)
            figures: dict[str, Any] = {}
            if quantize != "none":
                figures = weights.quantize_pipeline(loaded.pipe, quantize, progress)
        memory = meter.figures()
        memory.update(figures)
        memory.setdefault("weights_bytes", weights.pipeline_bytes(loaded.pipe))
        if options.transformer:
            memory["transformer_file"] = Path(options.transformer).name
        model = cls(source, resolved, loaded, options, memory)
        saved = (f", {quantize} saved {memory['quantized_saved_bytes'] / 2**20:.1f} MiB"
                 if memory.get("quantized_saved_bytes") else "")
        progress(f"Loaded {model.name} ({model.family.label}) on {model.device} "
                 f"({model.memory_bytes / 2**20:.1f} MiB weights{saved}; peak RSS "
                 f"{memory['peak_rss_bytes'] / 2**20:.0f} MiB)")
        return model

    # ------------------------------------------------------------------ facts about the model
    @property
    def pipe(self) -> Any:
        return self._base

    @property
    def denoiser(self) -> Any:
        return families.denoiser(self._base)

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
                if not self.known:
                    raise ValueError("Studio does not know how this pipeline holds its latents")
                space = patchified_bn_space(vae) if self.family.latents == "flux2" else None
                self._rgb = fit_latent_rgb(vae, getattr(self._base, "_execution_device", None), space=space)
            except Exception as exc:  # noqa: BLE001 - previews are optional
                self._rgb_error = str(exc) or type(exc).__name__
        return self._rgb

    def preview_grid(self, latents: Any, width: int, height: int) -> Any:
        """One image's loop latents as the (C, h, w) grid the preview map reads, or None."""
        if latents is None:
            return None
        return to_grid(latents, self.family.latents, height, width, self.size_multiple)

    def pipe_for(self, mode: str) -> Any:
        """The pipeline for ``mode``, sharing the loaded weights (``from_pipe``)."""
        key = "inpaint" if self.inpaint_model else mode
        if key not in self._pipes:
            if key not in self.modes:
                raise ParamError(self._mode_refusal(mode))
            try:
                pipe = families.pipeline_for(self._base, self.family, key)
            except Exception as exc:
                raise ParamError(f"This model ({type(self._base).__name__}) cannot run {mode}: {exc}") from exc
            pipe.set_progress_bar_config(disable=True)
            self._pipes[key] = pipe
        return self._pipes[key]

    def _mode_refusal(self, mode: str) -> str:
        return (f"{self.family.label} ({type(self._base).__name__}) cannot run {mode} in this diffusers version; "
                f"it supports {', '.join(self.modes)}.")

    # ------------------------------------------------------------------ running

    def check(self, request: Mapping[str, Any]) -> tuple[str, int, int]:
        """Refuse what this model cannot do, before anything runs: (mode, width, height)."""
        mode = request.get("mode") or "txt2img"
        if mode not in MODES:
            raise ParamError(f"Mode must be one of {', '.join(MODES)} (got {mode!r}).")
        if mode not in self.modes and not self.inpaint_model:
            raise ParamError(self._mode_refusal(mode))
        width, height = (int(v) for v in (request.get("size") or self.defaults["size"]))
        m = self.size_multiple
        if width % m or height % m or width <= 0 or height <= 0:
            raise ParamError(f"Size must be a multiple of {m} on both sides for {self.family.label} models "
                             f"(its VAE and latent packing; got {width}x{height}); try "
                             f"{max(m, round(width / m) * m)}x{max(m, round(height / m) * m)}.")
        sampler = request.get("scheduler") or schedulers.DEFAULT
        if sampler not in self.choices["scheduler"]:
            raise ParamError(f"Sampler {sampler!r} does not work with this model; choose one of: "
                             f"{', '.join(self.choices['scheduler'])}.")
        return mode, width, height

    def run(self, request: Mapping[str, Any], cancel: CancelToken) -> Iterator[Event]:
        with self._lock:  # one run at a time per pipeline
            yield from self._run(request, cancel)

    def _run(self, request: Mapping[str, Any], cancel: CancelToken) -> Iterator[Event]:
        started = time.perf_counter()
        mode, width, height = self.check(request)
        steps = int(request.get("steps") or self.defaults["steps"])
        strength = float(request.get("strength", 0.75)) if mode in ("img2img", "inpaint") else 1.0
        n_run = steps if mode not in ("img2img", "inpaint") else min(int(steps * strength), steps)
        if n_run < 1:
            raise ParamError(f"With denoising strength {strength:g}, {steps} step(s) run no denoising at all; "
                             f"raise the strength or the steps.")
        hires = hires_fix.from_request(request, steps, mode, self.options.allow_pickle)
        per_image = n_run + (hires.runs if hires else 0)
        sampler = request.get("scheduler") or schedulers.DEFAULT
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
        inputs = plan.Inputs(mode=mode, prompt=prompt, negative=negative, steps=steps, width=width, height=height,
                             cfg=_optional_float(request.get("cfg_scale")),
                             distilled=_optional_float(request.get("distilled_guidance")), strength=strength,
                             init=init, mask=mask)

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

        if controls:
            pipe, union_modes, control_notices = self._controls.pipeline(self._base, mode, controls, self.dtype,
                                                                         self.device, self.options.allow_pickle)
            controls = control.with_modes(controls, union_modes)
            for notice in control_notices:
                yield Log(notice, "warning")
        else:
            pipe = self.pipe_for(mode)
        call = plan.build(self._base, pipe, self.family, self.known, inputs, inpaint_model=self.inpaint_model)
        for notice in call.notices:
            yield Log(notice, "warning")
        saved_attributes = {name: getattr(pipe, name) for name in call.attributes}
        for name, value in call.attributes.items():
            setattr(pipe, name, value)
        original = pipe.scheduler
        flow = self.family.flow if self.known else schedulers.is_flow(original)
        pipe.scheduler = schedulers.make_scheduler(sampler, original, flow=flow)
        sampler_name = schedulers.name_for(original) if sampler == schedulers.DEFAULT else sampler
        recorder = stepping.DenoisedRecorder(pipe.scheduler)
        kwargs = call.kwargs
        self._image_prompt.prepare(pipe, adapter, self.dtype, self.device)
        if image_prompts:
            kwargs.update(self._image_prompt.call_kwargs(pipe, image_prompts))
        if controls:
            kwargs.update(control.call_kwargs(pipe, controls, control_maps, [item.mode for item in controls]))
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
                apart = (control_models.control_encodes_draw_apart(pipe.vae, len(controls), image_seed)
                         if controls and control_models.encodes_control(pipe.controlnet) else contextlib.nullcontext())
                with apart:
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
                for image in outcome.images:
                    image = inpaint.finish(image) if inpaint is not None else image
                    # What took effect, and the image's real size (never the request's).
                    params = dict(call.applied, sampler=sampler_name, seed=image_seed, width=image.width,
                                  height=image.height, model=self.name, model_hash=model_hash,
                                  loras=[(path.stem, weight) for path, weight in loras], batch_index=index,
                                  negative_prompt=call.applied.get("negative_prompt", ""),
                                  model_family=self.family.label)
                    if self.transformer_file is not None:
                        params["transformer"] = self.transformer_file.name
                    if (self.options.quantize or "none") != "none":
                        params["quantize"] = self.options.quantize
                    if self.load_memory:
                        params["load_memory"] = dict(self.load_memory)
                    resolved = dict(prompt_call.params)  # the resolved prompt (+ its template)
                    if not call.applied.get("negative_prompt"):  # the plan left the negative prompt out: so do we
                        resolved.pop("negative_prompt", None)
                        resolved.pop("negative_template", None)
                    params.update(resolved)
                    if hires is not None:  # A1111: Size is the first pass's, Hires upscale gives the final
                        params.update(hires.metadata(), width=width, height=height)
                    params.update(control.metadata(controls))
                    params.update(image_prompt.metadata(image_prompts, adapter))
                    if inpaint is not None:
                        params.update(inpaint.applied or {})
                    artifact = Artifact(Kind.IMAGE, image=image.convert("RGB"), seed=image_seed, parameters=params)
                    artifacts.append(artifact)
                    if count > 1 and not outcome.interrupted:
                        yield ArtifactReady(artifact)  # saved now: a crash at image 3 keeps 1 and 2
                if outcome.interrupted:
                    interrupted = True
                    break
        finally:
            pipe.scheduler = original
            for name, value in saved_attributes.items():
                setattr(pipe, name, value)
        info = {"seed": seed, "device": self.device, "steps_done": done_steps,
                "seconds": round(time.perf_counter() - started, 3)}
        if self.load_memory:
            info["load_memory"] = dict(self.load_memory)
        yield Result(tuple(artifacts), interrupted=interrupted, info=info)

    def _hires_pass(self, hires: hires_fix.Hires, first: stepping.Outcome, kwargs: dict, sampler: str, seed: int,
                    cancel: CancelToken, rgb: LatentRGB | None, preview_every: int, size: tuple[int, int], *,
                    offset: int, grand_total: int, label: str) -> Iterator[Event]:
        """The second, img2img pass of the hires fix on the first pass's output; returns an stepping.Outcome."""
        base = self.pipe_for("txt2img")
        if first.interrupted:  # stopped in the first pass: that partial image is the result
            if first.images and not isinstance(first.images[0], Image.Image):
                first.images = self._decode(base, first.images)
            return first
        target = hires.target(size[0], size[1], self.size_multiple)
        if hires.upscaler == "Latent":
            latents = torch.stack(list(first.images)) if isinstance(first.images, list) else first.images
            start: Any = hires_fix.upscale_latents(latents, target, families.vae_factor(self._base))
        else:
            upscaler = None
            if hires.upscaler == "Model" and hires.model is not None:
                upscaler = self._upscaler(hires.model)
            start = hires_fix.upscale_images(first.images, target, upscaler)
        pipe = self.pipe_for("img2img")
        if self._image_prompt.loaded is not None:  # the UNet holds the adapter: the second pass needs its encoder
            self._image_prompt.prepare(pipe, self._image_prompt.loaded, self.dtype, self.device)
        original = pipe.scheduler
        flow = self.family.flow if self.known else schedulers.is_flow(original)
        pipe.scheduler = schedulers.make_scheduler(sampler, original, flow=flow)
        recorder = stepping.DenoisedRecorder(pipe.scheduler)
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

    def _stream(self, pipe: Any, kwargs: dict, cancel: CancelToken, recorder: stepping.DenoisedRecorder,
                rgb: LatentRGB | None, preview_every: int, size: tuple[int, int], *, offset: int,
                n_steps: int, grand_total: int, label: str) -> Iterator[Event]:
        """Run one pipeline call on the model's thread (the kit's ThreadStream), yielding its
        events; returns an stepping.Outcome."""
        outcome = stepping.Outcome()
        width, height = size
        with ThreadStream[Event]("studio-diffusers-run", executor=self._runner) as stream:

            def report(latents: Any, counted: bool) -> None:
                if not counted:
                    return
                outcome.steps_done += 1
                step = offset + outcome.steps_done
                stream.emit(Progress(step, grand_total, label))
                if rgb is not None and preview_every and outcome.steps_done % preview_every == 0:
                    source = recorder.latest if recorder.latest is not None else latents
                    grid = self.preview_grid(source, width, height)
                    if grid is not None and grid.shape[0] == rgb.channels:
                        stream.emit(Preview(step, image=rgb.to_image(grid, size)))
                # No lockstep with the consumer: waiting for it every step cost ~2 ms a step in
                # thread hand-offs. A cancel sets the token directly, and the token is checked
                # after every step, so a stop still lands within one step.

            def on_step(p: Any, i: int, t: Any, tensors: dict) -> dict:
                if stream.consumer_gone:
                    p._interrupt = True
                    raise stepping.Abort()
                n_timesteps = getattr(p, "_num_timesteps", None) or n_steps
                report(tensors.get("latents"), stepping.counted(i, n_timesteps, p.scheduler.order, n_steps))
                if cancel.is_set:
                    p._interrupt = True
                    if not cancel.keep_partial:
                        raise stepping.Abort()
                    if not outcome.interrupted:  # decode the denoised estimate as the partial image
                        outcome.interrupted = True
                        x0 = recorder.latest
                        latents = tensors.get("latents")
                        best = x0 if x0 is not None and latents is not None and x0.shape == latents.shape else latents
                        if not self.family.interrupt_flag:  # its loop would go on: leave it, decode here
                            raise stepping.KeepPartialError(best)
                        if best is not latents:
                            return {"latents": best.to(latents.dtype)}
                return {}

            calls = [0]

            def on_scheduler_step(latents: Any) -> None:
                # Pipelines without callback_on_step_end: the same, from the scheduler's step.
                if stream.consumer_gone or (cancel.is_set and not cancel.keep_partial):
                    raise stepping.Abort()
                calls[0] += 1
                order = getattr(pipe.scheduler, "order", 1)
                report(latents, calls[0] % order == 0)
                if cancel.is_set:
                    outcome.interrupted = True
                    raise stepping.KeepPartialError(recorder.latest if recorder.latest is not None else latents)

            use_callback = self.family.step_callback and "callback_on_step_end" in inspect.signature(
                type(pipe).__call__).parameters
            recorder.after_step = None if use_callback else on_scheduler_step

            def call() -> list:
                # Inference mode (the pipelines only turn off autograd) skips version counting
                # and view tracking on every tensor op: ~5% faster on the CPU for the built-in
                # model, same pixels.  Nothing made in the call outlives it as a tensor (the
                # scheduler is a fresh one, the images leave as PIL), except with CPU offload,
                # whose hooks move the weights inside the call: those must stay normal tensors
                # (LoRA loading later updates them in place).
                with torch.inference_mode(not self.options.cpu_offload):
                    try:
                        if use_callback:
                            result = pipe(**kwargs, callback_on_step_end=on_step,
                                          callback_on_step_end_tensor_inputs=["latents"])
                        else:
                            result = pipe(**kwargs)
                    except stepping.KeepPartialError as stop:
                        return self._decode_grid(pipe, stop.latents)
                return list(result.images)

            stream.start(call)
            try:
                yield from stream
            except stepping.Abort:
                free = getattr(pipe, "maybe_free_model_hooks", None)
                if free is not None:
                    free()
                raise Cancelled() from None
            outcome.images = list(cast(list, stream.result()))
        return outcome

    def _decode_grid(self, pipe: Any, latents: Any) -> list:
        """Decode grid latents (SD-style scaling) to PIL images: the partial result of a pipeline
        stopped from its scheduler hook, which never reached its own decode."""
        vae = pipe.vae
        config = vae.config
        shift = getattr(config, "shift_factor", None) or 0.0
        latents = latents.to(vae.dtype) / (config.scaling_factor or 1.0) + shift
        image = vae.decode(latents, return_dict=False)[0]
        return pipe.image_processor.postprocess(image, output_type="pil")

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


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
