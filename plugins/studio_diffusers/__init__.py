"""Studio's first-party image plugin: Stable Diffusion style pipelines through diffusers.

Importing this module is cheap (standard library, studio.plugin_api and the light part of
studio.plugin_kit); torch and diffusers are imported by :meth:`DiffusersPlugin.load` (and
``prewarm``) only.  Capabilities: Prewarms, MapsA1111; loaded models give ModelHints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from studio.plugin_api import API_VERSION, Kind, LoadOptions, ModelChoice, Param, ParamType
from studio.plugin_kit.assets import builtin_model_folder

from . import control, hires, image_prompt, inpaint_options, schedulers

MODES = ("txt2img", "img2img", "inpaint", "edit")
_IMAGE_MODES = ("img2img", "inpaint", "edit")
_STRENGTH_MODES = ("img2img", "inpaint")

PARAMETERS: tuple[Param, ...] = (
    Param("prompt", ParamType.TEXT, default="", help="What to draw."),
    Param("negative_prompt", ParamType.TEXT, default="", help="What to steer away from."),
    Param("seed", ParamType.SEED, default=None, help="-1 or empty picks a random seed; image i of a batch "
                                                     "uses seed + i."),
    # steps, CFG scale and size: empty (None) = what suits the loaded model (its pipeline's own
    # defaults, its native size); the defaults shown here are only the form's start values.
    Param("steps", ParamType.INT, default=20, minimum=1, maximum=150, optional=True,
          help="Denoising steps (empty: the model's own default)."),
    Param("cfg_scale", ParamType.FLOAT, default=7.0, minimum=0.0, maximum=30.0, step=0.5, optional=True,
          label="CFG scale", help="Classifier-free guidance: how strongly the prompt (against the negative "
                                  "prompt) guides the image; at 1 or below it is off and the negative prompt "
                                  "does nothing."),
    Param("distilled_guidance", ParamType.FLOAT, default=None, minimum=0.0, maximum=30.0, step=0.5, optional=True,
          advanced=True, label="Distilled guidance",
          help="The guidance value a guidance-distilled model embeds (Flux.1-dev: 3.5); only such models have it."),
    Param("size", ParamType.SIZE, default=(512, 512), multiple_of=8, maximum=4096, optional=True,
          help="Width x height in pixels (empty: the model's native size; each family has its own multiple)."),
    Param("batch_count", ParamType.INT, default=1, minimum=1, maximum=16,
          help="Images made one after the other, seeds seed, seed+1, ..."),
    Param("scheduler", ParamType.CHOICE, default=schedulers.DEFAULT, choices=schedulers.NAMES,
          label="Sampler", help="Sampling method; 'default' keeps the model's own."),
    Param("init_image", ParamType.IMAGE_PATH, default=None, modes=_IMAGE_MODES,
          help="The image to start from (img2img, inpaint) or to edit (edit), resized to the output size."),
    Param("strength", ParamType.FLOAT, default=0.75, minimum=0.0, maximum=1.0, step=0.05, modes=_STRENGTH_MODES,
          label="Denoising strength", help="0 keeps the init image, 1 replaces it."),
    Param("mask_image", ParamType.IMAGE_PATH, default=None, modes=("inpaint",),
          help="White areas are repainted, black areas kept."),
    Param("loras", ParamType.LIST, default=(), label="LoRAs", advanced=True,
          help='A list of {"path": file.safetensors, "weight": 0.8}.'),
    Param("preview_every", ParamType.INT, default=1, minimum=0, maximum=1000, advanced=True,
          help="Show a cheap preview every N steps (0 = off)."),
    *hires.PARAMETERS,
    *control.PARAMETERS,
    *image_prompt.PARAMETERS,
    *inpaint_options.PARAMETERS,
)


# A1111 keys (as ``studio.core.metadata`` parses a ``parameters`` text) -> this plugin's parameters.
A1111_KEYS = {
    "prompt": "prompt",
    "negative_prompt": "negative_prompt",
    "steps": "steps",
    "cfg_scale": "cfg_scale",
    "distilled_guidance": "distilled_guidance",
    "seed": "seed",
    "sampler": "scheduler",
    "denoising_strength": "strength",
}
# Keys the studio itself restores (model picker, run mode) or that describe one image of a batch;
# "width" / "height" become ``size``.
A1111_STUDIO_KEYS = ("width", "height", "size", "model", "model_hash", "mode", "batch_index")


def from_a1111_fields(fields: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(parameter values, what has no place here) for A1111 ``parameters`` fields."""
    values: dict[str, Any] = {}
    ignored: list[str] = []
    for key, value in fields.items():
        target = A1111_KEYS.get(key)
        if target:
            values[target] = value
        elif key not in A1111_STUDIO_KEYS:
            ignored.append(key)
    if "width" in fields and "height" in fields:
        values["size"] = (int(fields["width"]), int(fields["height"]))
    if "scheduler" in values and values["scheduler"] not in schedulers.NAMES:
        ignored.append(f"sampler {values.pop('scheduler')!r}")
    _toolkit_fields(fields, values, ignored)
    return values, ignored


def _toolkit_fields(fields: Mapping[str, Any], values: dict[str, Any], ignored: list[str]) -> None:
    """Hires fix, dynamic-prompt template and inpainting options back onto the form (A1111's names)."""
    for key in ("hires_upscale", "hires_steps", "hires_upscaler", "prompt_template", "negative_template",
                "mask_blur", "inpaint_area", "masked_padding", "masked_content"):
        if key in ignored:
            ignored.remove(key)
    if fields.get("hires_upscale"):
        values["hires_scale"] = float(fields["hires_upscale"])
        if "strength" in values:  # with hires fix, A1111's Denoising strength is the second pass's
            values["hires_strength"] = values.pop("strength")
        if fields.get("hires_steps") is not None:
            values["hires_steps"] = int(fields["hires_steps"])
        upscaler = str(fields.get("hires_upscaler") or "Latent")
        if upscaler in hires.UPSCALERS[:2]:
            values["hires_upscaler"] = upscaler
        else:
            ignored.append(f"hires upscaler {upscaler!r} (choose its file)")
    if fields.get("prompt_template"):  # the template re-resolves to the same prompt with the same seed
        values["prompt"] = fields["prompt_template"]
    if fields.get("negative_template"):
        values["negative_prompt"] = fields["negative_template"]
    for key in ("mask_blur", "inpaint_area", "masked_padding", "masked_content"):
        if key in fields:
            values[key] = fields[key]


def default_model_folder() -> Path:
    return builtin_model_folder("shapes-sd")


def folder_defaults(folder: Path) -> dict:
    """The native size of a diffusers pipeline folder, read from its configs (no torch)."""
    import json

    try:
        unet = json.loads((folder / "unet" / "config.json").read_text(encoding="utf-8"))
        vae = json.loads((folder / "vae" / "config.json").read_text(encoding="utf-8"))
        sample = unet["sample_size"]
        sample = sample[0] if isinstance(sample, (list, tuple)) else sample
        side = int(sample) * 2 ** (len(vae.get("block_out_channels", [0, 0, 0, 0])) - 1)
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {"size": (side, side)}


class DiffusersPlugin:
    id = "diffusers"
    label = "Diffusers"
    kind = Kind.IMAGE
    api_version = API_VERSION

    def parameters(self) -> Sequence[Param]:
        return PARAMETERS

    def modes(self) -> Sequence[str]:
        return MODES

    def models(self) -> Sequence[ModelChoice]:
        folder = default_model_folder()
        if (folder / "model_index.json").is_file():
            return [ModelChoice(str(folder), "Shapes SD (built in)",
                                "A small Stable Diffusion model trained for Studio on simple shapes.",
                                defaults=folder_defaults(folder))]
        return []

    def prewarm(self) -> None:
        """Import what the first load and run need (torch, diffusers, the auto pipelines, the
        built-in model's component classes), without loading weights.  The engine calls this
        on its worker thread when idle, with the GC paused; see studio/plugin_kit/warmup.py."""
        from studio.plugin_kit.warmup import preload_torch_libraries

        preload_torch_libraries()
        from . import model

        model.import_for_first_run(default_model_folder())

    def from_a1111(self, fields: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """MapsA1111: restore an A1111 / Studio PNG's settings onto this plugin's form."""
        return from_a1111_fields(fields)

    def load(self, source: str, options: LoadOptions, progress: Callable[[str], None]):
        from studio.plugin_kit.diffusion import sources

        resolved = sources.resolve(source, options.allow_pickle)  # clear errors before heavy imports
        progress("Importing torch and diffusers")
        from .model import DiffusersModel

        return DiffusersModel.load(source, resolved, options, progress)


__all__ = ["DiffusersPlugin", "MODES", "PARAMETERS", "A1111_KEYS", "from_a1111_fields"]
