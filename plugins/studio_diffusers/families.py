"""What each diffusers pipeline family does with Studio's parameters: one declarative table.

Studio's form has one "CFG scale" (real classifier-free guidance, with the negative prompt as
the other branch), one optional "Distilled guidance" (the value a guidance-distilled transformer
embeds, Flux.1-dev style), a size, a sampler and the img2img/inpaint/edit inputs.  Every pipeline
family spells these differently (``guidance_scale`` is real CFG in SD3 but distilled guidance in
Flux.1-dev; Flux and Qwen-Image take real CFG as ``true_cfg_scale``; Flux.2 has no negative
prompt at all), packs latents differently (size rules, previews) and has different img2img /
inpaint / edit siblings.  :data:`FAMILIES` says it per pipeline class; the functions below read
the table plus the loaded pipeline's configs.  A pipeline class not in the table runs txt2img
with only the basics mapped, and says so.

This module imports nothing heavy at import time (torch only inside functions).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TXT2IMG, IMG2IMG, INPAINT, EDIT = "txt2img", "img2img", "inpaint", "edit"


@dataclass(frozen=True)
class Family:
    label: str
    # where Studio's "CFG scale" goes: "guidance_scale" | "true_cfg_scale" | "" (the model has none)
    cfg: str = "guidance_scale"
    # the kwarg of the distilled guidance a transformer with ``guidance_embeds`` takes ("" = none)
    distilled: str = ""
    negative: bool = True  # the pipeline takes a negative prompt (as text)
    cfg_off_at: float = 1.0  # real CFG (and so the negative prompt) acts only above this value
    packing: int = 1  # latent pixels per token side when the pipeline packs 2x2 latent patches
    min_multiple: int = 1  # a multiple the pipeline itself insists on (Sana: 32)
    native_side: int = 0  # the real checkpoints' native side, for denoisers without sample_size
    # sibling pipeline classes per mode; "auto" = diffusers' AutoPipeline maps; "self" = the loaded one
    modes: Mapping[str, str] = field(default_factory=lambda: {TXT2IMG: "self"})
    latents: str = "grid"  # the denoising loop's latents: grid | packed | packed3d | flux2
    flow: bool = True  # flow-matching (velocity) model: only flow samplers work
    # what the pipeline hands the scheduler's set_timesteps besides the step count
    scheduler_args: tuple[str, ...] = ()
    step_callback: bool = True  # the pipeline calls callback_on_step_end
    interrupt_flag: bool = True  # its loop stops when ``_interrupt`` is set (Lumina 2's does not)
    fixed: Mapping[str, Any] = field(default_factory=dict)  # kwargs always passed
    steps: int = 0  # default steps; 0 = the pipeline's own default
    cfg_default: float = 0.0  # default CFG scale; 0 = the pipeline's own default
    fixed_area: bool = False  # the pipeline rescales every request to its native area (HiDream)
    # denoiser config entries a sibling pipeline reads but the family's checkpoints lack, with the
    # value that means what the checkpoint does (diffusers 0.42's Chroma inpaint reads guidance_embeds)
    config_defaults: Mapping[str, Any] = field(default_factory=dict)
    # the real checkpoints this row was checked against (their model cards / configs)
    checked: tuple[str, ...] = ()


# SD-class rows keep A1111's 20 steps and CFG 7 (diffusers' own defaults are 50 and 7.5; Studio and
# its built-in model have always used 20 and 7).
_SD = Family("Stable Diffusion", flow=False, steps=20, cfg_default=7.0,
             modes={TXT2IMG: "self", IMG2IMG: "auto", INPAINT: "auto"},
             checked=("stable-diffusion-v1-5/stable-diffusion-v1-5", "stabilityai/stable-diffusion-2-1",
                      "stabilityai/stable-diffusion-xl-base-1.0"))
_FLUX_MODES = {TXT2IMG: "self", IMG2IMG: "FluxImg2ImgPipeline", INPAINT: "FluxInpaintPipeline"}
_FLUX: dict[str, Any] = {"cfg": "true_cfg_scale", "distilled": "guidance_scale", "packing": 2, "native_side": 1024,
                         "latents": "packed", "scheduler_args": ("sigmas", "mu")}

FAMILIES: dict[str, Family] = {
    "StableDiffusionPipeline": _SD,
    "StableDiffusionXLPipeline": Family("Stable Diffusion XL", flow=False, steps=20, cfg_default=7.0,
                                        checked=_SD.checked,
                                        modes={TXT2IMG: "self", IMG2IMG: "auto", INPAINT: "auto"}),
    "StableDiffusionInpaintPipeline": Family("Stable Diffusion inpainting", flow=False, steps=20, cfg_default=7.0,
                                             modes={INPAINT: "self"}),
    "StableDiffusionXLInpaintPipeline": Family("Stable Diffusion XL inpainting", flow=False, steps=20, cfg_default=7.0,
                                               modes={INPAINT: "self"}),
    "StableDiffusion3Pipeline": Family(
        "Stable Diffusion 3", modes={TXT2IMG: "self", IMG2IMG: "StableDiffusion3Img2ImgPipeline",
                                     INPAINT: "StableDiffusion3InpaintPipeline"},
        checked=("stabilityai/stable-diffusion-3.5-large", "stabilityai/stable-diffusion-3.5-medium",
                 "stabilityai/stable-diffusion-3-medium-diffusers")),
    "FluxPipeline": Family("Flux.1", modes=_FLUX_MODES, **_FLUX,  # type: ignore[arg-type]  # typed above
                           checked=("black-forest-labs/FLUX.1-dev", "black-forest-labs/FLUX.1-schnell")),
    "FluxKontextPipeline": Family("Flux.1 Kontext", **_FLUX,  # type: ignore[arg-type]  # typed above
                                  modes={TXT2IMG: "self", EDIT: "self", INPAINT: "FluxKontextInpaintPipeline"},
                                  checked=("black-forest-labs/FLUX.1-Kontext-dev",)),
    "Flux2Pipeline": Family("Flux.2", cfg="", distilled="guidance_scale", negative=False, packing=2,
                            native_side=1024, latents="flux2", scheduler_args=("sigmas", "mu"),
                            modes={TXT2IMG: "self", EDIT: "self"}, checked=("black-forest-labs/FLUX.2-dev",)),
    "Flux2KleinPipeline": Family("Flux.2 klein", negative=False, packing=2, native_side=1024, latents="flux2",
                                 scheduler_args=("sigmas", "mu"),
                                 modes={TXT2IMG: "self", EDIT: "self", INPAINT: "Flux2KleinInpaintPipeline"},
                                 checked=("black-forest-labs/FLUX.2-klein-4B",
                                          "black-forest-labs/FLUX.2-klein-base-4B")),
    "ChromaPipeline": Family("Chroma", packing=2, native_side=1024, latents="packed", scheduler_args=("sigmas", "mu"),
                             modes={TXT2IMG: "self", IMG2IMG: "ChromaImg2ImgPipeline",
                                    INPAINT: "ChromaInpaintPipeline"}, config_defaults={"guidance_embeds": False},
                             checked=("lodestones/Chroma1-HD",)),
    "QwenImagePipeline": Family("Qwen-Image", cfg="true_cfg_scale", distilled="guidance_scale", packing=2,
                                native_side=1328, latents="packed3d", scheduler_args=("sigmas", "mu"),
                                modes={TXT2IMG: "self", IMG2IMG: "QwenImageImg2ImgPipeline",
                                       INPAINT: "QwenImageInpaintPipeline"},
                                checked=("Qwen/Qwen-Image", "Qwen/Qwen-Image-2512")),
    "ZImagePipeline": Family("Z-Image", native_side=1024, cfg_off_at=0.0, scheduler_args=("sigmas",),
                             modes={TXT2IMG: "self", IMG2IMG: "ZImageImg2ImgPipeline",
                                    INPAINT: "ZImageInpaintPipeline"},
                             checked=("Tongyi-MAI/Z-Image-Turbo", "Tongyi-MAI/Z-Image")),
    "HiDreamImagePipeline": Family("HiDream-I1", native_side=1024, scheduler_args=("sigmas",), fixed_area=True,
                                   checked=("HiDream-ai/HiDream-I1-Full", "HiDream-ai/HiDream-I1-Dev")),
    "SanaPipeline": Family("Sana", min_multiple=32,
                           checked=("Efficient-Large-Model/Sana_1600M_1024px_diffusers",
                                    "Efficient-Large-Model/Sana_1600M_1024px_BF16_diffusers")),
    "PixArtSigmaPipeline": Family("PixArt-Σ", flow=False, step_callback=False,
                                  checked=("PixArt-alpha/PixArt-Sigma-XL-2-1024-MS",)),
    "Lumina2Pipeline": Family("Lumina 2", scheduler_args=("sigmas", "mu"), interrupt_flag=False,
                              checked=("Alpha-VLLM/Lumina-Image-2.0",)),
}

GENERIC = Family("unknown family", modes={TXT2IMG: "self"}, flow=False)


def family_of(pipe: Any) -> tuple[Family, bool]:
    """The table row for ``pipe``'s class (or its nearest listed base class), and whether it is known."""
    for cls in type(pipe).__mro__:
        if cls.__name__ in FAMILIES:
            return FAMILIES[cls.__name__], True
    flow = "FlowMatch" in type(getattr(pipe, "scheduler", None)).__name__
    return Family(f"{type(pipe).__name__} (only the basics mapped)", flow=flow), False


def denoiser(pipe: Any) -> Any:
    return getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)


def _config(pipe: Any) -> Any:
    return getattr(denoiser(pipe), "config", None)


def vae_factor(pipe: Any) -> int:
    factor = getattr(pipe, "vae_scale_factor", None)
    if factor:
        return int(factor)
    vae = getattr(pipe, "vae", None)
    return 2 ** (len(vae.config.block_out_channels) - 1) if vae is not None else 8


def patch_size(pipe: Any) -> int:
    config = _config(pipe)
    if config is None:
        return 1
    patch = getattr(config, "patch_size", None)
    if patch is None:
        sizes = getattr(config, "all_patch_size", None)  # Z-Image: one patch size per resolution stage
        patch = sizes[0] if sizes else 1
    return int(patch or 1)


def size_multiple(pipe: Any, family: Family) -> int:
    """Width and height must be multiples of this: the VAE's factor times the packing or patch side."""
    config = _config(pipe)
    if config is not None and getattr(config, "down_block_types", None):
        # UNets pad odd latent sizes themselves, so only the VAE's factor and the pipelines' own
        # multiple-of-8 check bind them (A1111's rule).
        return math.lcm(8, vae_factor(pipe))
    return math.lcm(vae_factor(pipe) * max(family.packing, patch_size(pipe)), family.min_multiple)


def native_size(pipe: Any, family: Family) -> tuple[int, int]:
    """(width, height) the model was trained at: the denoiser's sample_size, else the family's."""
    sample = getattr(_config(pipe), "sample_size", None)
    if sample is not None and not family.native_side:
        height, width = (int(sample[0]), int(sample[-1])) if isinstance(sample, (list, tuple)) else (int(sample),) * 2
        return width * vae_factor(pipe), height * vae_factor(pipe)
    side = family.native_side or 512
    return side, side


def supported_modes(pipe: Any, family: Family) -> list[str]:
    """The modes this loaded pipeline can run (a 9-channel inpainting UNet runs everything as inpaint)."""
    import diffusers

    modes = []
    for mode, cls in family.modes.items():
        if cls in ("self", "auto") or getattr(diffusers, cls, None) is not None:
            modes.append(mode)
    if getattr(_config(pipe), "in_channels", 4) == 9 and INPAINT not in modes:
        modes.append(INPAINT)
    return modes


def pipeline_for(pipe: Any, family: Family, mode: str) -> Any:
    """A pipeline running ``mode`` on ``pipe``'s weights (``from_pipe`` shares every component)."""
    import diffusers

    cls = family.modes.get(mode)
    if cls is None:
        raise LookupError(mode)
    model = denoiser(pipe)
    missing = {k: v for k, v in family.config_defaults.items() if k not in getattr(model, "config", {k: None})}
    if missing:
        model.register_to_config(**missing)
    if cls == "self":
        return pipe
    if cls == "auto":
        auto = {IMG2IMG: diffusers.AutoPipelineForImage2Image, INPAINT: diffusers.AutoPipelineForInpainting}[mode]
        return auto.from_pipe(pipe)
    return getattr(diffusers, cls).from_pipe(pipe)


# ------------------------------------------------------------------------------- guidance


def _defaults_of(pipe: Any) -> dict[str, Any]:
    return {name: p.default for name, p in inspect.signature(type(pipe).__call__).parameters.items()
            if p.default is not inspect.Parameter.empty}


def has_distilled_guidance(pipe: Any, family: Family) -> bool:
    return bool(family.distilled) and bool(getattr(_config(pipe), "guidance_embeds", False))


def cfg_kwarg(pipe: Any, family: Family) -> str:
    """The kwarg real CFG goes to ("" when this model has none)."""
    if family.cfg == "guidance_scale" and getattr(getattr(pipe, "config", None), "is_distilled", False):
        return ""  # Flux.2 klein's step-distilled checkpoints ignore guidance_scale
    if family.cfg == "guidance_scale" and has_distilled_guidance(pipe, family):
        return ""
    return family.cfg


def default_cfg(pipe: Any, family: Family) -> float:
    if family.cfg_default:
        return family.cfg_default
    kwarg = cfg_kwarg(pipe, family)
    value = _defaults_of(pipe).get(kwarg) if kwarg else None
    if kwarg == "true_cfg_scale" and family.distilled and has_distilled_guidance(pipe, family):
        value = 1.0  # Flux.1-dev: real CFG off by default, the distilled guidance does the work
    return float(value) if isinstance(value, (int, float)) else 1.0


def default_distilled(pipe: Any, family: Family) -> float | None:
    if not has_distilled_guidance(pipe, family):
        return None
    value = _defaults_of(pipe).get(family.distilled)
    return float(value) if isinstance(value, (int, float)) else 3.5


#: steps of a step-distilled checkpoint (Flux.2 klein 4B / 9B as published: their cards say 4); the
#: pipeline's own default (50) is for the base checkpoints and would take 12x as long for nothing
DISTILLED_STEPS = 4


def default_steps(pipe: Any, family: Family) -> int:
    if family.steps:
        return family.steps
    if getattr(getattr(pipe, "config", None), "is_distilled", False):
        return DISTILLED_STEPS
    value = _defaults_of(pipe).get("num_inference_steps")
    return int(value) if isinstance(value, int) and value > 0 else 20


def unsupported(pipe: Any, family: Family, known: bool) -> dict[str, str]:
    """Parameter name -> why it has no effect with this model (the form hides these)."""
    name = family.label
    out: dict[str, str] = {}
    if not cfg_kwarg(pipe, family):
        out["cfg_scale"] = (f"{name} has no classifier-free guidance here"
                            + (" (a step-distilled checkpoint)" if getattr(getattr(pipe, "config", None),
                                                                            "is_distilled", False) else "")
                            + (" (its distilled guidance is the 'Distilled guidance' setting)"
                               if has_distilled_guidance(pipe, family) else ""))
    if not family.negative:
        out["negative_prompt"] = f"{name} takes no negative prompt"
    elif not known and "negative_prompt" not in inspect.signature(type(pipe).__call__).parameters:
        out["negative_prompt"] = f"{type(pipe).__name__} takes no negative prompt"
    if not has_distilled_guidance(pipe, family):
        out["distilled_guidance"] = f"{name} has no distilled guidance (only guidance-distilled models such " \
                                    f"as Flux.1-dev embed one)"
    return out


def cfg_active(family: Family, value: float) -> bool:
    """Whether real CFG (and so the negative prompt) takes part at CFG scale ``value``."""
    return value > family.cfg_off_at
