"""A1111-style sampler names <-> diffusers scheduler classes and config overrides.

The name table is plain data (importable without torch); :func:`make_scheduler` and
:func:`compatible_names` import diffusers lazily.
"""

from __future__ import annotations

import importlib.util
import inspect
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

# Flow-matching (velocity-predicting) models: the same names, solved in flow form.  The SD
# samplers above assume an epsilon/v model on a noise schedule and give garbage (or all-black
# images) on these models; ``flow_shift`` / ``shift`` are taken from the model's own scheduler.
FLOW_SAMPLERS: dict[str, tuple[str, dict[str, Any]]] = {
    "Euler": ("FlowMatchEulerDiscreteScheduler", {"stochastic_sampling": False}),
    "Euler a": ("FlowMatchEulerDiscreteScheduler", {"stochastic_sampling": True}),
    "Heun": ("FlowMatchHeunDiscreteScheduler", {}),
    "DPM++ 2M": ("DPMSolverMultistepScheduler",
                 {"algorithm_type": "dpmsolver++", "solver_order": 2, "prediction_type": "flow_prediction",
                  "use_flow_sigmas": True, "use_karras_sigmas": False}),
    "UniPC": ("UniPCMultistepScheduler", {"prediction_type": "flow_prediction", "use_flow_sigmas": True,
                                          "use_karras_sigmas": False}),
}

NAMES: tuple[str, ...] = (DEFAULT, *SAMPLERS)

# schedulers whose module needs an optional package
_NEEDS = {"LMSDiscreteScheduler": "scipy"}


def _available(class_name: str) -> bool:
    need = _NEEDS.get(class_name)
    return need is None or importlib.util.find_spec(need) is not None


def is_flow(scheduler: Any) -> bool:
    """Whether ``scheduler`` drives a flow-matching (velocity) model."""
    config = getattr(scheduler, "config", {})
    return type(scheduler).__name__.startswith("FlowMatch") or config.get("prediction_type") == "flow_prediction" \
        or bool(config.get("use_flow_sigmas"))


def flow_names(scheduler: Any, needs: tuple[str, ...]) -> list[str]:
    """Flow sampler names whose ``set_timesteps`` accepts what the pipeline hands it (``needs``:
    e.g. its own ``sigmas`` and the resolution-dependent ``mu``)."""
    import diffusers

    names = [DEFAULT]
    for name, (cls_name, _) in FLOW_SAMPLERS.items():
        if "sigmas" in needs and not cls_name.startswith("FlowMatch"):
            continue  # UniPC names a sigmas argument but fails on the plain lists pipelines pass (0.42)
        accepted = inspect.signature(getattr(diffusers, cls_name).set_timesteps).parameters
        if all(arg in accepted for arg in needs):
            names.append(name)
    return names


def names_for(scheduler: Any, flow: bool | None, needs: tuple[str, ...] = ()) -> list[str]:
    """The samplers offered for a model: flow ones for a flow model, else the compatible SD ones.
    ``flow`` None: decided from the scheduler."""
    if flow is None:
        flow = is_flow(scheduler)
    return flow_names(scheduler, needs) if flow else compatible_names(scheduler)


def compatible_names(scheduler: Any) -> list[str]:
    """Sampler names usable in place of ``scheduler`` (a diffusers scheduler instance)."""
    compatible = {cls.__name__ for cls in getattr(scheduler, "compatibles", ())}
    compatible.add(type(scheduler).__name__)
    return [DEFAULT] + [name for name, (cls, _) in SAMPLERS.items() if cls in compatible and _available(cls)]


def name_for(scheduler: Any) -> str:
    """Best A1111 name for a scheduler instance (used when the request said "default")."""
    cls = type(scheduler).__name__
    config = getattr(scheduler, "config", {})
    for name, (cls_name, overrides) in (FLOW_SAMPLERS if is_flow(scheduler) else SAMPLERS).items():
        if cls_name == cls and all(config.get(k, v) == v for k, v in overrides.items()):
            return name
    return cls.removesuffix("Scheduler")


def make_scheduler(name: str, original: Any, flow: bool = False) -> Any:
    """A fresh scheduler for one run: ``name`` built from ``original``'s config (in flow form
    for a flow model, keeping the model's timestep shift)."""
    import diffusers

    if name == DEFAULT:
        return type(original).from_config(original.config)
    table = FLOW_SAMPLERS if flow else SAMPLERS
    try:
        cls_name, overrides = table[name]
    except KeyError:
        raise ValueError(f"Unknown sampler {name!r}.") from None
    overrides = dict(overrides)
    if flow:
        config = original.config
        shift = config.get("shift") or config.get("flow_shift") or 1.0
        overrides.update(shift=shift, flow_shift=shift)
    cls = getattr(diffusers, cls_name)
    accepted = inspect.signature(cls.__init__).parameters
    return cls.from_config(original.config, **{k: v for k, v in overrides.items() if k in accepted})
