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
    from studio.core.out_paths import plan_out
    from studio.core.sessions.image import ImageSession
    from studio.core.settings import Settings
    from studio.plugin_api import Kind, ParamError, Progress

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
        if not context.registry.plugins(Kind.IMAGE):
            failures = "; ".join(f"{e.name}: {e.error}" for e in context.registry.failures())
            raise UsageError("no image plugin is available" + (f" ({failures})" if failures else ""))
        try:
            session = ImageSession(context, args.plugin)
        except LookupError as exc:
            raise UsageError(str(exc)) from None
        # The request is built by the same session the Image panel uses: the flags are the
        # user's values; what they leave out comes from the plugin, then from the model.
        given: dict[str, Any] = {"prompt": args.prompt, "negative_prompt": args.negative, "seed": args.seed,
                                 "batch_count": args.batch}
        for key, value in (("steps", args.steps), ("cfg_scale", args.cfg), ("size", args.size),
                           ("scheduler", args.scheduler), ("init_image", args.init_image),
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
            job = session.submit(session.job_spec(**overrides))
        except ParamError as exc:
            raise UsageError(str(exc)) from None
        bar = ProgressBar()
        context.engine.subscribe(lambda j, e: bar.update(e) if j is job and isinstance(e, Progress) else None)
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
