"""A1111-style sampler names <-> diffusers scheduler classes and config overrides.

The name table is plain data (importable without torch); :func:`make_scheduler` and
:func:`compatible_names` import diffusers lazily.
"""

from __future__ import annotations

import importlib.util
from typing import Any

DEFAULT = "default"

# name -> (diffusers class name, config overrides applied on top of the pipeline's own config)
SAMPLERS: dict[str, tuple[str, dict[str, Any]]] = {
    "Euler": ("EulerDiscreteScheduler", {"use_karras_sigmas": False}),
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "DPM++ 2M": ("DPMSolverMultistepScheduler",
                 {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": False}),
    "DPM++ 2M Karras": ("DPMSolverMultistepScheduler",
                        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True}),
    "DPM++ 2M SDE": ("DPMSolverMultistepScheduler",
                     {"algorithm_type": "sde-dpmsolver++", "solver_order": 2, "use_karras_sigmas": False}),
    "DPM++ 2M SDE Karras": ("DPMSolverMultistepScheduler",
                            {"algorithm_type": "sde-dpmsolver++", "solver_order": 2, "use_karras_sigmas": True}),
    "DPM2": ("KDPM2DiscreteScheduler", {"use_karras_sigmas": False}),
    "DPM2 a": ("KDPM2AncestralDiscreteScheduler", {"use_karras_sigmas": False}),
    "Heun": ("HeunDiscreteScheduler", {"use_karras_sigmas": False}),
    "LMS": ("LMSDiscreteScheduler", {"use_karras_sigmas": False}),
    "LMS Karras": ("LMSDiscreteScheduler", {"use_karras_sigmas": True}),
    "DDIM": ("DDIMScheduler", {}),
    "DDPM": ("DDPMScheduler", {}),
    "PNDM": ("PNDMScheduler", {"skip_prk_steps": True}),
    "UniPC": ("UniPCMultistepScheduler", {}),
    "DEIS": ("DEISMultistepScheduler", {}),
    "LCM": ("LCMScheduler", {}),
}

NAMES: tuple[str, ...] = (DEFAULT, *SAMPLERS)

# schedulers whose module needs an optional package
_NEEDS = {"LMSDiscreteScheduler": "scipy"}


def _available(class_name: str) -> bool:
    need = _NEEDS.get(class_name)
    return need is None or importlib.util.find_spec(need) is not None


def compatible_names(scheduler: Any) -> list[str]:
    """Sampler names usable in place of ``scheduler`` (a diffusers scheduler instance)."""
    compatible = {cls.__name__ for cls in getattr(scheduler, "compatibles", ())}
    compatible.add(type(scheduler).__name__)
    return [DEFAULT] + [name for name, (cls, _) in SAMPLERS.items() if cls in compatible and _available(cls)]


def name_for(scheduler: Any) -> str:
    """Best A1111 name for a scheduler instance (used when the request said "default")."""
    cls = type(scheduler).__name__
    config = getattr(scheduler, "config", {})
    for name, (cls_name, overrides) in SAMPLERS.items():
        if cls_name == cls and all(config.get(k, v) == v for k, v in overrides.items()):
            return name
    return cls.removesuffix("Scheduler")


def make_scheduler(name: str, original: Any) -> Any:
    """A fresh scheduler for one run: ``name`` built from ``original``'s config."""
    import diffusers

    if name == DEFAULT:
        return type(original).from_config(original.config)
    try:
        cls_name, overrides = SAMPLERS[name]
    except KeyError:
        raise ValueError(f"Unknown sampler {name!r}.") from None
    cls = getattr(diffusers, cls_name)
    return cls.from_config(original.config, **overrides)
