"""`studio image PROMPT ...`: text to image, img2img and inpaint on the image plugin."""

from __future__ import annotations

import argparse
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
    wait,
)


def add_parser(sub: Any) -> None:
    image = sub.add_parser("image", help="generate images from a prompt")
    image.add_argument("prompt")
    image.add_argument("--negative", default="", help="negative prompt")
    image.add_argument("--model", help="diffusers folder, .safetensors file or hub id (default: embedded)")
    image.add_argument("--seed", type=int, default=-1, help="-1 = random")
    image.add_argument("--steps", type=int)
    image.add_argument("--cfg", type=float)
    image.add_argument("--size", help="WIDTHxHEIGHT")
    image.add_argument("--batch", type=int, default=1)
    image.add_argument("--scheduler", help="sampler name, e.g. 'Euler a', 'DPM++ 2M'")
    image.add_argument("--init-image", help="img2img / inpaint source image")
    image.add_argument("--strength", type=float)
    image.add_argument("--mask", help="inpaint mask (white = repaint)")
    image.add_argument("--lora", action="append", default=[], metavar="FILE[:WEIGHT]")
    image.add_argument("--out", help="FILE.png (a batch adds -1, -2...) or an output folder "
                                     "(default: the studio's output folder)")
    image.add_argument("--plugin", default=None, help="image plugin id (default: the first one)")
    image.add_argument("--allow-download", action="store_true", help="let a hub id be downloaded")
    image.add_argument("--allow-pickle", action="store_true", help="allow loading pickle checkpoints (unsafe)")
    image.add_argument("--device", default=None, help="auto | cpu | cuda | mps")
    image_toolkit.add_arguments(image)


def run(args: argparse.Namespace) -> int:
    from studio.core.context import StudioContext
    from studio.core.jobs import JobSpec
    from studio.core.settings import Settings
    from studio.plugin_api import Kind, ParamError, Progress

    from studio.core.out_paths import plan_out

    settings = Settings.load()
    out = plan_out(args.out, args.batch) if args.out else None  # before any generation
    if out is not None and out.folder is not None:
        settings.output_dir = str(out.folder)
    if args.allow_download:
        settings.allow_download = True
    if args.allow_pickle:
        settings.allow_pickle = True
    if args.device:
        settings.device = args.device
    check_image(args.init_image, "init image")
    check_image(args.mask, "mask")
    mode = "inpaint" if args.mask else "img2img" if args.init_image else "txt2img"
    if args.mask and not args.init_image:
        raise UsageError("--mask needs --init-image")

    context = StudioContext.create(settings)
    try:
        plugins = context.registry.plugins(Kind.IMAGE)
        if not plugins:
            failures = "; ".join(f"{e.name}: {e.error}" for e in context.registry.failures())
            raise UsageError("no image plugin is available" + (f" ({failures})" if failures else ""))
        plugin = context.registry.get(args.plugin) if args.plugin else plugins[0]
        request = {"prompt": args.prompt, "negative_prompt": args.negative, "seed": args.seed,
                   "batch_count": args.batch}
        for key, value in (("steps", args.steps), ("cfg_scale", args.cfg), ("size", args.size),
                           ("scheduler", args.scheduler), ("init_image", args.init_image),
                           ("strength", args.strength), ("mask_image", args.mask)):
            if value is not None:
                request[key] = value
        if args.lora:
            request["loras"] = parse_loras(args.lora)
        request.update(image_toolkit.request_values(args, mode, {p.name for p in plugin.parameters()}))
        request["preview_every"] = 0  # nobody sees previews on a terminal
        names = {p.name for p in plugin.parameters()}
        request = {k: v for k, v in request.items() if k in names}
        model = checked_request_and_model(plugin, request, mode, args.model)
        # Values the user did not give come from the model where it says what suits it
        # (the built-in shapes model draws 64x64, not the plugin-wide 512x512).
        given = {"size": args.size, "steps": args.steps, "cfg_scale": args.cfg}
        for key, value in next((dict(m.defaults) for m in plugin.models() if m.source == model), {}).items():
            if key in names and given.get(key) is None:
                request[key] = value
        try:
            job = context.engine.submit(JobSpec(plugin_id=plugin.id, model=model, mode=mode, request=request,
                                                options=context.load_options(),
                                                targets=tuple(str(f) for f in out.files) if out else ()))
        except ParamError as exc:
            raise UsageError(str(exc)) from None
        bar = ProgressBar()
        context.engine.subscribe(lambda j, e: bar.update(e) if j is job and isinstance(e, Progress) else None)
        try:
            ok = wait(context, job)
        finally:
            bar.close()
        for path in job.saved:
            print(path)
        return EXIT_OK if ok else EXIT_FAILED
    finally:
        context.close()
