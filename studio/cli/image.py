"""`studio image PROMPT ...`: text to image, img2img and inpaint on the image plugin."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from studio.cli import image_toolkit
from studio.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    ProgressBar,
    UsageError,
    check_image,
    checked_request_and_model,
    parse_loras,
    settings_for,
    wait,
)


def describe_load_memory(memory: dict) -> str:
    """One line about what loading the model cost (the plugin's ``load_memory`` figures)."""
    mib = 2**20
    parts = []
    if memory.get("seconds") is not None:
        parts.append(f"loaded in {memory['seconds']:.1f} s")
    if memory.get("peak_rss_bytes"):
        parts.append(f"peak RSS {memory['peak_rss_bytes'] / mib:.0f} MiB")
    if memory.get("peak_vram_bytes"):
        parts.append(f"peak VRAM {memory['peak_vram_bytes'] / mib:.0f} MiB")
    if memory.get("weights_bytes"):
        parts.append(f"weights {memory['weights_bytes'] / mib:.1f} MiB")
    if memory.get("quantized_saved_bytes"):
        parts.append(f"{memory.get('quantization', 'quantization')} saved "
                     f"{memory['quantized_saved_bytes'] / mib:.1f} MiB")
    return ", ".join(parts)

def add_parser(sub: Any) -> None:
    image = sub.add_parser("image", help="generate images from a prompt")
    image.add_argument("prompt")
    image.add_argument("--negative", default="", help="negative prompt")
    image.add_argument("--model", help="diffusers folder, .safetensors file or hub id (default: embedded)")
    image.add_argument("--seed", type=int, default=-1, help="-1 = random")
    image.add_argument("--steps", type=int, help="denoising steps (default: the model's own)")
    image.add_argument("--cfg", type=float, help="CFG scale (default: the model's own)")
    image.add_argument("--distilled-guidance", type=float,
                       help="distilled guidance of guidance-distilled models (Flux.1-dev); default: the model's own")
    image.add_argument("--size", help="WIDTHxHEIGHT (default: the model's native size)")
    image.add_argument("--mode", choices=("txt2img", "img2img", "inpaint", "edit"),
                       help="default: inpaint with --mask, img2img with --init-image, else txt2img; "
                            "edit uses --init-image as the picture to change (Flux Kontext, Flux.2)")
    image.add_argument("--batch", type=int, default=1)
    image.add_argument("--scheduler", help="sampler name, e.g. 'Euler a', 'DPM++ 2M'")
    image.add_argument("--init-image", help="img2img / inpaint source image")
    image.add_argument("--strength", type=float)
    image.add_argument("--mask", help="inpaint mask (white = repaint)")
    image.add_argument("--lora", action="append", default=[], metavar="FILE[:WEIGHT]")
    image.add_argument("--out", help="FILE.png (a batch adds -1, -2...) or an output folder "
                                     "(default: the studio's output folder)")
    image.add_argument("--plugin", default=None, help="image plugin id (default: the studio's own)")
    image.add_argument("--allow-download", action="store_true", help="let a hub id be downloaded")
    image.add_argument("--allow-pickle", action="store_true", help="allow loading pickle checkpoints (unsafe)")
    image.add_argument("--device", default=None, help="auto | cpu | cuda | mps")
    image.add_argument("--transformer", metavar="FILE",
                       help="denoiser weights to use with --model's other components: a GGUF file "
                            "(Q8_0, Q4_K ...) or a single-file .safetensors transformer")
    image.add_argument("--quantize", choices=("none", "int8", "fp8"), default=None,
                       help="weight-only quantization of the denoiser and text encoders at load "
                            "(default: the Settings value)")
    image_toolkit.add_arguments(image)


def run(args: argparse.Namespace) -> int:

    from studio.core.context import StudioContext
    from studio.core.jobs import ModelLoaded
    from studio.core.out_paths import plan_out
    from studio.core.sessions.image import ImageSession
    from studio.plugin_api import Kind, ParamError, Progress

    out = plan_out(args.out, args.batch) if args.out else None  # before any generation
    settings = settings_for(args, out)
    if args.quantize:
        settings.quantize = args.quantize
    check_image(args.init_image, "init image")
    check_image(args.mask, "mask")
    mode = args.mode or ("inpaint" if args.mask else "img2img" if args.init_image else "txt2img")
    if args.mask and not args.init_image:
        raise UsageError("--mask needs --init-image")
    if mode != "txt2img" and not args.init_image:
        raise UsageError(f"--mode {mode} needs --init-image")
    if mode == "inpaint" and not args.mask:
        raise UsageError("--mode inpaint needs --mask")
    if args.transformer and not Path(args.transformer).is_file():
        raise UsageError(f"transformer file not found: {args.transformer}")

    context = StudioContext.create(settings)
    try:
        if not context.registry.plugins(Kind.IMAGE):
            failures = "; ".join(f"{e.name}: {e.error}" for e in context.registry.failures())
            raise UsageError("no image plugin is available" + (f" ({failures})" if failures else ""))
        try:
            session = ImageSession(context, args.plugin)
        except LookupError as exc:
            raise UsageError(str(exc)) from None
        # The request is built by the same session the Image panel uses: the flags are the
        # user's values; what they leave out comes from the plugin, then from the model.
        # Steps, CFG, distilled guidance and size left out are sent empty (None): the loaded model
        # fills in its own (its pipeline's defaults, its native size), and nothing the user did not
        # set is reported as ignored.
        given: dict[str, Any] = {"prompt": args.prompt, "negative_prompt": args.negative, "seed": args.seed,
                                 "batch_count": args.batch, "steps": args.steps, "cfg_scale": args.cfg,
                                 "size": args.size, "distilled_guidance": args.distilled_guidance}
        for key, value in (("scheduler", args.scheduler), ("init_image", args.init_image),
                           ("strength", args.strength), ("mask_image", args.mask)):
            if value is not None:
                given[key] = value
        if args.lora:
            given["loras"] = parse_loras(args.lora)
        given["preview_every"] = 0  # nobody sees previews on a terminal
        names = {p.name for p in session.parameters()}
        given.update(image_toolkit.request_values(args, mode, names))  # --hires, --control, --image-prompt
        session.set_values({k: v for k, v in given.items() if k in names})
        overrides: dict[str, Any] = {}
        try:
            if session.modes():
                session.set_mode(mode)
            else:
                overrides["mode"] = mode
        except ParamError as exc:
            raise UsageError(str(exc)) from None
        assert session.plugin is not None
        # Bad values are the user's to fix whatever the model; then the model (the given one,
        # else the built-in default), whose own defaults fill what the flags left out.
        model = checked_request_and_model(session.plugin, session.request_values(), mode, args.model)
        session.set_model(model)
        try:
            if out is not None:  # --out FILE.png: exactly these files, never replacing one
                overrides["targets"] = tuple(str(f) for f in out.files)
            if args.transformer:  # what the panel's "transformer / UNet weights" picker sets
                session.set_transformer(str(Path(args.transformer).resolve()))
            job = session.submit(session.job_spec(**overrides))
        except ParamError as exc:
            raise UsageError(str(exc)) from None
        bar = ProgressBar()

        def on_event(j: object, event: object) -> None:
            if j is not job:
                return
            if isinstance(event, Progress):
                bar.update(event)
            elif isinstance(event, ModelLoaded) and event.memory:
                bar.note(f"studio: {describe_load_memory(event.memory)}")

        context.engine.subscribe(on_event)
        # The session hears the job's events as the panel's would (here on the worker thread; the
        # main thread only waits).  What it warns about — a setting this model ignores, a sampler it
        # replaced — goes to stderr, as the panel shows it in its message bar.
        session.message.connect(lambda level, text: bar.note(f"studio: warning: {text}") if level == "warning"
                                else None)
        context.engine.subscribe(session.handle)
        try:
            ok = wait(context, job)
        finally:
            bar.close()
        for path in job.saved:
            print(path)
        return EXIT_OK if ok else EXIT_FAILED
    finally:
        context.close()
