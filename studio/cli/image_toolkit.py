"""The artist's-toolkit options of `studio image`: hires fix (and later control inputs), parsed into
request values.  Kept apart from image.py so that module's own options stay readable."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from studio.cli.common import UsageError, is_number


def add_arguments(image: Any) -> None:
    image.add_argument("--hires", metavar="SCALE[:STRENGTH]",
                       help="hires fix: draw at the native size, enlarge SCALE times, redraw with denoising "
                            "STRENGTH (default 0.5), e.g. 2:0.45")
    image.add_argument("--hires-steps", type=int, help="steps of the hires second pass (default: --steps)")
    image.add_argument("--hires-upscaler", metavar="Latent|Lanczos|FILE", default=None,
                       help="how the first image is enlarged: Latent (default), Lanczos, or an upscaler file")


def request_values(args: argparse.Namespace, mode: str, names: set[str]) -> dict[str, Any]:
    """The request values of these options; a sentence (UsageError) when one cannot take effect."""
    values: dict[str, Any] = {}
    if args.hires and mode != "txt2img":
        raise UsageError("--hires works on text-to-image only (not with --init-image / --mask)")
    if args.hires:
        scale, _, strength = args.hires.partition(":")
        if not is_number(scale) or (strength and not is_number(strength)):
            raise UsageError(f"--hires wants SCALE[:STRENGTH], e.g. 2 or 2:0.45 (got {args.hires!r})")
        values["hires_scale"] = float(scale)
        if strength:
            values["hires_strength"] = float(strength)
    if args.hires_steps is not None:
        values["hires_steps"] = args.hires_steps
    upscaler = args.hires_upscaler
    if upscaler is not None:
        if not args.hires:
            raise UsageError("--hires-upscaler needs --hires")
        named = {"latent": "Latent", "lanczos": "Lanczos"}.get(upscaler.lower())
        if named:
            values["hires_upscaler"] = named
        elif Path(upscaler).expanduser().is_file():
            values.update(hires_upscaler="Model", hires_model=upscaler)
        else:
            raise UsageError(f"--hires-upscaler: not Latent, Lanczos or an existing file: {upscaler}")
    missing = sorted(key for key in values if key not in names)
    if missing:
        raise UsageError(f"this image plugin does not take {', '.join(missing)}")
    return values
