"""One request -> the keyword arguments of one pipeline call, what was applied, and what was not.

The honesty rule lives here: every value the user set either reaches the pipeline (and is
recorded in ``applied``, which becomes the image's metadata) or produces a notice saying it was
ignored and why.  Values left unset (None) take the model's own defaults, which are recorded too.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from . import families
from .families import IMG2IMG, INPAINT, Family


@dataclass
class Inputs:
    """The request's values, validated and with the model's defaults filled in where unset."""

    mode: str
    prompt: str
    negative: str
    steps: int
    width: int
    height: int
    cfg: float | None  # None: the model's own
    distilled: float | None  # None: the model's own
    strength: float
    init: Any = None  # PIL image
    mask: Any = None  # PIL image


@dataclass
class Plan:
    kwargs: dict[str, Any] = field(default_factory=dict)
    applied: dict[str, Any] = field(default_factory=dict)  # parameter name -> value that took effect
    notices: list[str] = field(default_factory=list)
    # pipeline attributes to set for this call only (restored after it)
    attributes: dict[str, Any] = field(default_factory=dict)


def _accepted(pipe: Any) -> tuple[set[str], bool]:
    params = inspect.signature(type(pipe).__call__).parameters
    return set(params), any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def build(base: Any, pipe: Any, family: Family, known: bool, inputs: Inputs, *, inpaint_model: bool) -> Plan:
    """The call of ``pipe`` (the mode's pipeline, derived from the loaded ``base``) for ``inputs``."""
    accepted, _ = _accepted(pipe)
    plan = Plan()
    kw, applied, notices = plan.kwargs, plan.applied, plan.notices
    kw.update(prompt=inputs.prompt, num_inference_steps=inputs.steps, height=inputs.height, width=inputs.width,
              output_type="pil")
    applied.update(prompt=inputs.prompt, steps=inputs.steps, mode=inputs.mode)
    for key, value in family.fixed.items():
        if key in accepted:
            kw[key] = value
    if "max_area" in accepted:  # Kontext rescales every output to this area (1024^2) unless told
        kw["max_area"] = inputs.width * inputs.height
    if "use_resolution_binning" in accepted:  # would make another size and resize it to this one
        kw["use_resolution_binning"] = False
    if family.fixed_area:
        # HiDream scales every request to the area of default_sample_size x VAE factor squared
        # (keeping the aspect ratio); that area made equal to the request's keeps its size.  The
        # hair above 1 keeps the pipeline's round-down from losing a whole multiple.
        side = math.sqrt(inputs.width * inputs.height) / families.vae_factor(pipe)
        plan.attributes["default_sample_size"] = side * (1 + 1e-6)
    if not known:
        notices.append(f"{type(base).__name__} is not a pipeline family Studio knows: only the prompt, steps, size, "
                       f"seed{', CFG scale (as guidance_scale)' if 'guidance_scale' in accepted else ''} and "
                       f"{'negative prompt' if 'negative_prompt' in accepted else 'nothing else'} are passed on, "
                       f"unchecked; img2img, inpaint, samplers and previews are off.")

    _guidance(base, pipe, family, known, inputs, accepted, plan)
    _images(pipe, family, inputs, accepted, plan, inpaint_model)
    return plan


def _guidance(base: Any, pipe: Any, family: Family, known: bool, inputs: Inputs, accepted: set[str],
              plan: Plan) -> None:
    kw, applied, notices = plan.kwargs, plan.applied, plan.notices
    reasons = families.unsupported(base, family, known)
    cfg_kw = families.cfg_kwarg(base, family)
    cfg_value: float | None = None
    if cfg_kw and cfg_kw in accepted:
        cfg_value = inputs.cfg if inputs.cfg is not None else families.default_cfg(base, family)
        kw[cfg_kw] = cfg_value
        applied["cfg_scale"] = cfg_value
    elif inputs.cfg is not None:
        notices.append(f"CFG scale {inputs.cfg:g} was ignored: {reasons.get('cfg_scale', 'this pipeline has none')}.")

    if families.has_distilled_guidance(base, family) and family.distilled in accepted:
        value = inputs.distilled if inputs.distilled is not None else families.default_distilled(base, family)
        kw[family.distilled] = value
        applied["distilled_guidance"] = value
    elif inputs.distilled is not None:
        notices.append(f"Distilled guidance {inputs.distilled:g} was ignored: {reasons['distilled_guidance']}.")

    negative = inputs.negative.strip()
    cfg_on = cfg_value is not None and families.cfg_active(family, cfg_value)
    if negative:
        if "negative_prompt" in reasons or "negative_prompt" not in accepted:
            notices.append(f"The negative prompt was ignored: "
                           f"{reasons.get('negative_prompt', type(pipe).__name__ + ' takes none')}.")
        elif known and not cfg_on:
            notices.append(f"The negative prompt was ignored: it acts only through classifier-free guidance, which "
                           f"is off at CFG scale {cfg_value if cfg_value is not None else 0:g} (raise it above "
                           f"{family.cfg_off_at:g}).")
        else:
            kw["negative_prompt"] = inputs.negative
            applied["negative_prompt"] = inputs.negative
    elif cfg_kw == "true_cfg_scale" and cfg_on and "negative_prompt" in accepted:
        # Flux / Qwen-Image run true CFG only with a negative prompt; their model cards use " ".
        kw["negative_prompt"] = " "


def _images(pipe: Any, family: Family, inputs: Inputs, accepted: set[str], plan: Plan, inpaint_model: bool) -> None:
    kw, applied, notices = plan.kwargs, plan.applied, plan.notices
    init, mask = inputs.init, inputs.mask
    size = (inputs.width, inputs.height)
    if inpaint_model:  # 9-channel UNet: every mode goes through the inpaint pipeline
        if init is None:
            init = Image.new("RGB", size, (127, 127, 127))
        if mask is None:
            mask = Image.new("L", size, 255)
    if init is not None:
        kw["image"] = init
        if inputs.mode in (IMG2IMG, INPAINT) or inpaint_model:
            if "strength" in accepted:
                kw["strength"] = inputs.strength
                if inputs.mode != "txt2img":
                    applied["denoising_strength"] = inputs.strength
            elif inputs.mode != "txt2img":
                notices.append(f"Denoising strength {inputs.strength:g} was ignored: {type(pipe).__name__} "
                               f"takes none.")
        if "_auto_resize" in accepted:
            kw["_auto_resize"] = False  # Kontext would otherwise pick its own output size
    if mask is not None:
        kw["mask_image"] = mask
