"""`studio upscale IMAGE --model FILE [--scale N] [--out FILE]`: enlarge an image on the upscaler plugin.

``--model`` is an upscaler file (ESRGAN-family .safetensors, or .pth with --allow-pickle) or
``lanczos`` (the default: no model).  The result goes to the output folder with its metadata (the
source image's A1111 parameters plus ``Postprocess upscale by`` / ``Postprocess upscaler``), or to
``--out`` (a new file, or a folder) as ``studio image`` does.
"""

from __future__ import annotations

import argparse
from typing import Any

from studio.cli.common import EXIT_FAILED, EXIT_OK, ProgressBar, UsageError, check_image, settings_for, wait


def add_parser(sub: Any) -> None:
    up = sub.add_parser("upscale", help="enlarge an image (Lanczos or an ESRGAN-family model)")
    up.add_argument("image")
    up.add_argument("--model", default="lanczos", help="upscaler file, or 'lanczos' (default)")
    up.add_argument("--scale", type=float, default=None, help="how many times larger (default: the model's own "
                                                                "factor; 2 for Lanczos)")
    up.add_argument("--tile", type=int, default=None, help="tile side in input pixels (default 128)")
    up.add_argument("--out", help="FILE.png (never replaced) or an output folder (default: the studio's)")
    up.add_argument("--allow-pickle", action="store_true", help="allow .pth/.pt/.ckpt pickle files (unsafe)")
    up.add_argument("--device", default=None, help="auto | cpu | cuda | mps")


def run(args: argparse.Namespace) -> int:
    from studio.core.context import StudioContext
    from studio.core.jobs import JobSpec
    from studio.core.out_paths import plan_out
    from studio.core.settings import Settings
    from studio.plugin_api import Kind, ParamError, Progress

    check_image(args.image, "image")
    out = plan_out(args.out) if args.out else None  # a new FILE.png, or a folder; never over a file
    if args.model.lower() != "lanczos":
        from studio.plugin_kit.upscale.files import UpscalerFileError, check

        try:  # the file rules (exists, a known suffix, pickle only when allowed) before any loading
            check(args.model, args.allow_pickle or Settings.load().allow_pickle)
        except UpscalerFileError as exc:
            raise UsageError(str(exc)) from None
    context = StudioContext.create(settings_for(args, out))
    try:
        plugins = context.registry.plugins(Kind.UPSCALE)
        if not plugins:
            raise UsageError("no upscaler plugin is available (see `studio plugins`)")
        plugin = context.registry.default(Kind.UPSCALE) or plugins[0]
        request: dict[str, Any] = {"image": args.image}
        if args.tile is not None:
            request["tile"] = args.tile
        if args.scale is not None:
            request["scale"] = args.scale
        try:
            job = context.engine.submit(JobSpec(plugin_id=plugin.id, model=args.model, mode="upscale",
                                                request=request, options=context.load_options(),
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

