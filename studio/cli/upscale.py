"""`studio upscale IMAGE --model FILE [--scale N] [--out FILE]`: enlarge an image on the upscaler plugin.

``--model`` is an upscaler file (ESRGAN-family .safetensors, or .pth with --allow-pickle) or
``lanczos`` (the default: no model).  The result goes to the output folder with its metadata (the
source image's A1111 parameters plus ``Postprocess upscale by`` / ``Postprocess upscaler``), and
to ``--out`` as well when given (never over an existing file).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from studio.cli.common import EXIT_FAILED, EXIT_OK, ProgressBar, UsageError, check_image, wait


def add_parser(sub: Any) -> None:
    up = sub.add_parser("upscale", help="enlarge an image (Lanczos or an ESRGAN-family model)")
    up.add_argument("image")
    up.add_argument("--model", default="lanczos", help="upscaler file, or 'lanczos' (default)")
    up.add_argument("--scale", type=float, default=None, help="how many times larger (default: the model's own "
                                                                "factor; 2 for Lanczos)")
    up.add_argument("--tile", type=int, default=None, help="tile side in input pixels (default 128)")
    up.add_argument("--out", help="also write the result to this file (must not exist)")
    up.add_argument("--allow-pickle", action="store_true", help="allow .pth/.pt/.ckpt pickle files (unsafe)")
    up.add_argument("--device", default=None, help="auto | cpu | cuda | mps")


def _copy_new(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` atomically, refusing to replace a file that exists meanwhile."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temp.write_bytes(source.read_bytes())
    try:
        os.link(temp, target)  # fails if target exists: no second process can overwrite it
    except FileExistsError:
        raise UsageError(f"--out {target} appeared while upscaling; not overwritten "
                         f"(the result is in {source})") from None
    finally:
        temp.unlink(missing_ok=True)


def run(args: argparse.Namespace) -> int:
    from studio.core.context import StudioContext
    from studio.core.jobs import JobSpec
    from studio.core.settings import Settings
    from studio.plugin_api import Kind, ParamError, Progress

    check_image(args.image, "image")
    out = Path(args.out).expanduser() if args.out else None
    if out is not None and out.exists():
        raise UsageError(f"--out {out} exists; choose a new file name")
    if args.model.lower() != "lanczos":
        from studio.plugin_kit.upscale.files import UpscalerFileError, check

        try:  # the file rules (exists, a known suffix, pickle only when allowed) before any loading
            check(args.model, args.allow_pickle or Settings.load().allow_pickle)
        except UpscalerFileError as exc:
            raise UsageError(str(exc)) from None
    settings = Settings.load()
    if args.allow_pickle:
        settings.allow_pickle = True
    if args.device:
        settings.device = args.device
    context = StudioContext.create(settings)
    try:
        plugins = context.registry.plugins(Kind.UPSCALE)
        if not plugins:
            raise UsageError("no upscaler plugin is available (see `studio plugins`)")
        plugin = plugins[0]
        request: dict[str, Any] = {"image": args.image}
        if args.tile is not None:
            request["tile"] = args.tile
        if args.scale is not None:
            request["scale"] = args.scale
        try:
            job = context.engine.submit(JobSpec(plugin_id=plugin.id, model=args.model, mode="upscale",
                                                request=request, options=context.load_options()))
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
        if ok and out is not None and job.saved:
            _copy_new(Path(job.saved[0]), out)
            print(out)
        return EXIT_OK if ok else EXIT_FAILED
    finally:
        context.close()

