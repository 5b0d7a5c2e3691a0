"""Control models: load a ControlNet by what its config says, check it suits the loaded model's family,
combine several, and pick the ControlNet pipeline for the family and mode (sharing the loaded weights
through ``from_pipe``).

The folder's ``config.json`` decides the class (``_class_name``: ``ControlNetModel``,
``ControlNetUnionModel``, ``FluxControlNetModel``, ``SD3ControlNetModel``), never the file name.  A union
model (SDXL ``ControlNetUnionModel``; a Flux ControlNet with ``num_mode`` in its config) takes one
control mode per input: the user's, or the one its published mode table gives the preprocessor's map type.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.plugin_api import ParamError


@dataclass(frozen=True)
class NetFamily:
    """What one ControlNet class runs with."""

    label: str
    bases: tuple[str, ...]  # pipeline classes (or their bases) of the models it suits
    multi: str  # the wrapper that runs several at once (module path, class)
    pipelines: dict[str, str]  # mode -> ControlNet pipeline class
    union_modes: dict[str, int] | None = None  # map type -> control mode of the published union models


_SD_PIPES = {"txt2img": "StableDiffusionControlNetPipeline", "img2img": "StableDiffusionControlNetImg2ImgPipeline",
             "inpaint": "StableDiffusionControlNetInpaintPipeline"}
_XL_PIPES = {"txt2img": "StableDiffusionXLControlNetPipeline", "img2img": "StableDiffusionXLControlNetImg2ImgPipeline",
             "inpaint": "StableDiffusionXLControlNetInpaintPipeline"}
_XL_UNION_PIPES = {mode: name.replace("ControlNet", "ControlNetUnion") for mode, name in _XL_PIPES.items()}
_FLUX_PIPES = {"txt2img": "FluxControlNetPipeline", "img2img": "FluxControlNetImg2ImgPipeline",
               "inpaint": "FluxControlNetInpaintPipeline"}
# xinsir/controlnet-union-sdxl-1.0 (its model card): 0 openpose, 1 depth, 2 hed/pidi/scribble/ted,
# 3 canny/lineart/anime lineart/mlsd, 4 normal, 5 segment (promax adds 6 tile, 7 repaint)
_XL_UNION_MODES = {"pose": 0, "depth": 1, "scribble": 2, "edges": 3, "lines": 3, "normal": 4, "segment": 5}
# InstantX/FLUX.1-dev-Controlnet-Union (its model card): 0 canny, 1 tile, 2 depth, 3 blur, 4 pose, 5 gray, 6 lq
_FLUX_UNION_MODES = {"edges": 0, "depth": 2, "pose": 4}

NET_FAMILIES = {
    "ControlNetModel": NetFamily("Stable Diffusion ControlNet", ("StableDiffusionPipeline", "StableDiffusionXLPipeline",
                                                                 "StableDiffusionInpaintPipeline",
                                                                 "StableDiffusionXLInpaintPipeline"),
                                 "multicontrolnet.MultiControlNetModel", {}),
    "ControlNetUnionModel": NetFamily("SDXL ControlNet-Union", ("StableDiffusionXLPipeline",),
                                      "multicontrolnet_union.MultiControlNetUnionModel", _XL_UNION_PIPES,
                                      _XL_UNION_MODES),
    "FluxControlNetModel": NetFamily("Flux.1 ControlNet", ("FluxPipeline",), "controlnet_flux.FluxMultiControlNetModel",
                                     _FLUX_PIPES, _FLUX_UNION_MODES),
    # SD3 has a ControlNet pipeline for text-to-image only; its inpainting one takes only inpainting ControlNets
    "SD3ControlNetModel": NetFamily("SD3 ControlNet", ("StableDiffusion3Pipeline",),
                                    "controlnet_sd3.SD3MultiControlNetModel",
                                    {"txt2img": "StableDiffusion3ControlNetPipeline"}),
}


def class_name(path: Path) -> str:
    """The ControlNet class the folder's (or the file's neighbouring) config.json names."""
    config_file = path / "config.json" if path.is_dir() else path.with_name("config.json")
    if not config_file.is_file():
        return "ControlNetModel"  # a single original-layout file: SD 1.5 / SDXL, read by from_single_file
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ParamError(f"Cannot read the control model's config {config_file}: {exc}") from None
    return str(config.get("_class_name") or "ControlNetModel")


def net_family(name: str) -> NetFamily:
    if name not in NET_FAMILIES:
        raise ParamError(f"{name} is not a ControlNet class Studio runs (it runs {', '.join(NET_FAMILIES)}).")
    return NET_FAMILIES[name]


def check_suits(base: Any, path: Path, name: str) -> None:
    """A sentence when the control model at ``path`` is for another family than the loaded model."""
    family = net_family(name)
    bases = {cls.__name__ for cls in type(base).__mro__}
    if not bases & set(family.bases):
        takes = " or ".join(n for n, f in NET_FAMILIES.items() if bases & set(f.bases)) or "no ControlNet"
        raise ParamError(f"{path.name} is a {family.label} ({name}); the loaded model is {type(base).__name__}, "
                         f"which takes {takes}.")


def is_union(net: Any) -> bool:
    return type(net).__name__ == "ControlNetUnionModel" or getattr(net.config, "num_mode", None) is not None


def union_size(net: Any) -> int:
    return int(getattr(net.config, "num_control_type", None) or getattr(net.config, "num_mode", None) or 0)


def load(path: Path, allow_pickle: bool) -> Any:
    """A diffusers ControlNet folder, or a single file: diffusers layout with its config.json beside it, or
    an original SD 1.5 / SDXL checkpoint (``from_single_file``)."""
    import diffusers

    name = class_name(path)
    net_family(name)
    cls = getattr(diffusers, name, None)
    if cls is None:
        raise ParamError(f"{name} is not a ControlNet class this diffusers ({diffusers.__version__}) knows.")
    if path.is_dir():
        return cls.from_pretrained(str(path), use_safetensors=not allow_pickle or None)
    if path.suffix.lower() != ".safetensors" and not allow_pickle:
        raise ParamError(f"{path.name} is a pickle file, refused unless pickle files are allowed.")
    config_file = path.with_name("config.json")
    if config_file.is_file():
        from safetensors.torch import load_file

        config = json.loads(config_file.read_text(encoding="utf-8"))
        net = cls.from_config(config)
        net.load_state_dict(load_file(str(path)))
        return net.eval()
    try:
        return diffusers.ControlNetModel.from_single_file(str(path), local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - explained below
        raise ParamError(f"Cannot load the control model {path.name}: put its config.json beside it, or use a "
                         f"diffusers ControlNet folder ({str(exc).splitlines()[0][:160]}).") from None


def combine(nets: list) -> Any:
    """One net, or the family's multi-ControlNet wrapper around several (all of one class)."""
    if len(nets) == 1:
        return nets[0]
    names = {type(net).__name__ for net in nets}
    if len(names) > 1:
        raise ParamError(f"These control models cannot run together: {', '.join(sorted(names))} (one kind of "
                         f"ControlNet per job; a union model and a plain one do not mix).")
    import importlib

    module, cls = net_family(names.pop()).multi.rsplit(".", 1)
    return getattr(importlib.import_module(f"diffusers.models.controlnets.{module}"), cls)(nets)


def pipeline_class(base: Any, mode: str, name: str) -> Any:
    """The ControlNet pipeline class for ``mode`` on ``base`` with ``name`` nets, or None for diffusers'
    AutoPipeline to pick (SD 1.5 / SDXL plain ControlNets, inpainting UNets)."""
    import diffusers

    family = net_family(name)
    if not family.pipelines:
        return None
    if mode not in family.pipelines:
        raise ParamError(f"{family.label}s run {', '.join(family.pipelines)} in this diffusers, not {mode}.")
    cls = getattr(diffusers, family.pipelines[mode], None)
    if cls is None:
        raise ParamError(f"This diffusers ({diffusers.__version__}) has no {family.pipelines[mode]}.")
    return cls


def control_mode(net: Any, name: str, map_type: str, given: int | None, index: int, kind: str) -> int | None:
    """The control mode of a union net for one input (None for a plain ControlNet)."""
    if not is_union(net):
        return None
    size = union_size(net)
    if given is None:
        given = (net_family(name).union_modes or {}).get(map_type)
        if given is None:
            raise ParamError(f"Control input {index + 1}: its control model is a union ControlNet ({size} modes) and "
                             f"the {kind!r} map has no mode in its published table; give the control mode "
                             f"(--control-mode N, 0-{size - 1}).")
    if not 0 <= given < size:
        raise ParamError(f"Control input {index + 1}: control mode {given} is outside this union ControlNet's "
                         f"0-{size - 1}.")
    return given


def encodes_control(controlnet: Any) -> bool:
    """Whether the pipeline VAE-encodes the control images (SD3; Flux ControlNets without their own hint
    encoder, the InstantX layout) - drawing a latent sample for each, before the starting noise."""
    first = getattr(controlnet, "nets", [controlnet])[0]
    name = type(first).__name__
    return name == "SD3ControlNetModel" or (name == "FluxControlNetModel"
                                            and getattr(first, "input_hint_block", None) is None)


class _OwnDraws:
    """A VAE encoder output whose latent sample draws from its own generator."""

    def __init__(self, output: Any, generator: Any) -> None:
        self._output = output
        self.latent_dist = _OwnSample(output.latent_dist, generator)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._output, name)


class _OwnSample:
    def __init__(self, dist: Any, generator: Any) -> None:
        self._dist, self._generator = dist, generator

    def sample(self, generator: Any = None) -> Any:
        return self._dist.sample(generator=self._generator)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dist, name)


@contextlib.contextmanager
def control_encodes_draw_apart(vae: Any, count: int, seed: int) -> Iterator[None]:
    """For the next pipeline call: the first ``count`` VAE encodes (the control images, which these pipelines
    encode before anything else) sample from their own generator seeded with ``seed``.  Otherwise they take
    their draws from the call's generator (Flux) - so the starting noise, and the image at weight 0, would
    differ from the same seed without control - or from torch's global generator (SD3: not reproducible)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    original = vae.encode
    calls = [0]

    def encode(*args: Any, **kwargs: Any) -> Any:
        output = original(*args, **kwargs)
        if calls[0] >= count:
            return output
        calls[0] += 1
        return _OwnDraws(output, generator)

    had_own = "encode" in vae.__dict__
    vae.encode = encode
    try:
        yield
    finally:
        if had_own:
            vae.encode = original
        else:
            del vae.encode


__all__ = ["NET_FAMILIES", "NetFamily", "check_suits", "class_name", "combine", "control_encodes_draw_apart",
           "control_mode", "encodes_control", "is_union", "load", "pipeline_class", "union_size"]
