"""The artist's-toolkit options of `studio image`: hires fix and control inputs, parsed into request
values.  Kept apart from image.py so that module's own options stay readable."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from studio.cli.common import UsageError, is_number


class _ControlAction(argparse.Action):
    """--control starts a control input; --control-model / -weight / -range / -mode fill in the latest one."""

    FIELDS = {"--control-model": "model", "--control-weight": "weight", "--control-range": "range",
              "--control-mode": "control_mode"}

    def __call__(self, parser: Any, namespace: argparse.Namespace, value: Any, option: str | None = None) -> None:
        controls = getattr(namespace, "controls", None) or []
        namespace.controls = controls
        if option == "--control":
            kind, sep, image = str(value).partition(":")
            if not sep or not image:
                raise UsageError(f"--control wants KIND:IMAGE, e.g. scribble:sketch.png (got {value!r})")
            controls.append({"kind": kind.lower(), "image": image})
            return
        if not controls:
            raise UsageError(f"{option} must follow the --control it belongs to")
        field = self.FIELDS[str(option)]
        if field in controls[-1]:
            raise UsageError(f"{option} given twice for control input {len(controls)}; repeat --control first")
        controls[-1][field] = value


def add_arguments(image: Any) -> None:
    image.set_defaults(controls=[])
    image.add_argument("--control", action=_ControlAction, metavar="KIND:IMAGE",
                       help="a control input (repeatable): KIND is canny, scribble, lineart, depth, pose, none, or a "
                            "preprocessor an installed plugin provides (`studio plugins` lists them)")
    image.add_argument("--control-model", action=_ControlAction, metavar="PATH",
                       help="ControlNet folder or .safetensors for the --control before it")
    image.add_argument("--control-weight", action=_ControlAction, metavar="F", help="its weight (default 1)")
    image.add_argument("--control-range", action=_ControlAction, metavar="A-B",
                       help="the part of the steps it acts on, as fractions (default 0-1)")
    image.add_argument("--control-mode", action=_ControlAction, metavar="N",
                       help="a union ControlNet's control mode for that input (default: from the preprocessor's map "
                            "type and the model's published mode table)")
    image.add_argument("--image-prompt", metavar="IMAGE[:WEIGHT]",
                       help="a reference image that steers the picture (IP-Adapter), weight default 1")
    image.add_argument("--image-prompt-model", metavar="PATH", help="the IP-Adapter file (image_encoder/ beside it)")
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
    if args.image_prompt:
        image, sep, weight = args.image_prompt.rpartition(":")
        if not sep or not is_number(weight):
            image, weight = args.image_prompt, "1"
        if not Path(image).expanduser().is_file():
            raise UsageError(f"image prompt not found: {image}")
        if not args.image_prompt_model:
            raise UsageError("--image-prompt needs --image-prompt-model (an IP-Adapter file)")
        values["image_prompts"] = [{"image": image, "weight": float(weight)}]
    if args.image_prompt_model:
        if not args.image_prompt:
            raise UsageError("--image-prompt-model needs --image-prompt")
        if not Path(args.image_prompt_model).expanduser().is_file():
            raise UsageError(f"image prompt model not found: {args.image_prompt_model}")
        values["image_prompt_model"] = args.image_prompt_model
    if args.controls:
        values["controls"] = [_control_entry(i, entry) for i, entry in enumerate(args.controls)]
    missing = sorted(key for key in values if key not in names)
    if missing:
        raise UsageError(f"this image plugin does not take {', '.join(missing)}")
    return values


def _control_entry(index: int, raw: dict[str, Any]) -> dict[str, Any]:
    number = index + 1
    if not Path(raw["image"]).expanduser().is_file():
        raise UsageError(f"control image {number} not found: {raw['image']}")
    if "model" in raw and not Path(raw["model"]).expanduser().exists():
        raise UsageError(f"control model {number} not found: {raw['model']}")
    # without --control-model the plugin uses the built-in ControlNet on the built-in model, or says why not
    entry: dict[str, Any] = {"kind": raw["kind"], "image": raw["image"]}
    if "model" in raw:
        entry["model"] = raw["model"]
    if "weight" in raw:
        if not is_number(raw["weight"]):
            raise UsageError(f"--control-weight wants a number (got {raw['weight']!r})")
        entry["weight"] = float(raw["weight"])
    if "range" in raw:
        start, sep, end = str(raw["range"]).partition("-")
        if not sep or not is_number(start) or not is_number(end):
            raise UsageError(f"--control-range wants A-B, e.g. 0-0.6 (got {raw['range']!r})")
        entry["start"], entry["end"] = float(start), float(end)
    if "control_mode" in raw:
        if not str(raw["control_mode"]).isdigit():
            raise UsageError(f"--control-mode wants a whole number, e.g. 2 (got {raw['control_mode']!r})")
        entry["control_mode"] = int(raw["control_mode"])
    return entry
