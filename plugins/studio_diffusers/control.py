"""ControlNet inputs for a run: parse them, make the control maps (built-in preprocessors or a plugin's),
keep the control models loaded (:mod:`.control_models` loads them and picks the pipeline) and pass
them to the call.

A request's ``controls`` is a list of ``{"kind", "image", "model", "weight", "start", "end"}`` (plus the
preprocessor's own options: ``low`` / ``high`` for canny, ``threshold`` / ``invert`` for scribble, and
``control_mode`` for a union ControlNet).
Several inputs make a MultiControlNet.  The processed maps are returned with the result (the panel's
preview) and the metadata records each input in the A1111 ControlNet extension's own words.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from studio.plugin_api import Param, ParamError, ParamType
from studio.plugin_kit.control import preprocess, providers

from . import control_models

PARAMETERS: tuple[Param, ...] = (
    Param("controls", ParamType.LIST, default=(), label="Control inputs",
          help='ControlNet inputs: [{"kind": "canny"|"scribble"|"lineart"|"depth"|"pose"|"none" or a plugin\'s '
               'preprocessor, "image": file, "model": ControlNet folder or .safetensors, "weight": 1.0, '
               '"start": 0.0, "end": 1.0, "control_mode": union ControlNets\' mode (optional)}]'),
)


@dataclass(frozen=True)
class ControlInput:
    kind: str
    image: str
    model: Path
    weight: float = 1.0
    start: float = 0.0
    end: float = 1.0
    options: preprocess.Options = preprocess.Options()
    mode: int | None = None  # a union ControlNet's control mode: the user's (None: from the map type)

    def a1111(self) -> str:
        """The A1111 ControlNet extension's value for ``ControlNet N``."""
        fields = [f"Module: {self.kind}", f"Model: {self.model.stem if self.model.is_file() else self.model.name}",
                  f"Weight: {self.weight:g}", f"Guidance Start: {self.start:g}", f"Guidance End: {self.end:g}"]
        if self.kind == "canny":
            fields += [f"Threshold A: {self.options.low}", f"Threshold B: {self.options.high}"]
        if self.mode is not None:
            fields.append(f"Control Mode: {self.mode}")
        return ", ".join(fields)


def _number(entry: dict, key: str, default: float, low: float, high: float, index: int) -> float:
    value = entry.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ParamError(f"Control input {index + 1}: {key} must be a number (got {value!r}).") from None
    if not low <= number <= high:
        raise ParamError(f"Control input {index + 1}: {key} must be between {low:g} and {high:g} (got {number:g}).")
    return number


BUILTIN = "shapes-controlnet-scribble"  # the scribble ControlNet trained for the built-in shapes-sd


def builtin_for(source: str) -> Path | None:
    """The built-in ControlNet when ``source`` is the built-in Shapes model and the ControlNet ships."""
    from studio.plugin_kit.assets import builtin_model_folder

    base = builtin_model_folder("shapes-sd")
    folder = builtin_model_folder(BUILTIN)
    try:
        same = Path(source).resolve() == base.resolve()
    except OSError:
        return None
    return folder if same and (folder / "config.json").is_file() else None


def parse(entries: Any, default_model: Path | None = None) -> list[ControlInput]:
    """Checked control inputs, or ParamError with a sentence naming the input and the problem.
    ``default_model`` serves inputs that name no model (the built-in ControlNet for the built-in model)."""
    inputs = []
    for index, entry in enumerate(entries or ()):
        if not isinstance(entry, dict):
            raise ParamError(f"Control input {index + 1} must be a mapping with kind, image and model.")
        kind = str(entry.get("kind") or "none").lower()
        if kind not in providers.kinds():
            raise ParamError(f"Control input {index + 1}: {providers.unknown_kind_sentence(kind)}")
        if not entry.get("image"):
            raise ParamError(f"Control input {index + 1} needs an image.")
        if not entry.get("model") and default_model is None:
            raise ParamError(f"Control input {index + 1} needs a control model (a ControlNet folder or file).")
        model = Path(str(entry["model"])).expanduser() if entry.get("model") else default_model
        if not model.exists():
            raise ParamError(f"Control input {index + 1}: control model not found: {model}")
        start = _number(entry, "start", 0.0, 0.0, 1.0, index)
        end = _number(entry, "end", 1.0, 0.0, 1.0, index)
        if end <= start:
            raise ParamError(f"Control input {index + 1}: the end ({end:g}) must come after the start ({start:g}).")
        options = preprocess.Options(low=int(_number(entry, "low", 100, 0, 1020, index)),
                                     high=int(_number(entry, "high", 200, 0, 1020, index)),
                                     threshold=int(_number(entry, "threshold", 128, 1, 255, index)),
                                     invert=str(entry.get("invert", "auto")))
        mode = None
        if entry.get("control_mode") not in (None, ""):
            mode = int(_number(entry, "control_mode", 0, 0, 64, index))
        inputs.append(ControlInput(kind, str(entry["image"]), model, _number(entry, "weight", 1.0, 0.0, 2.0, index),
                                   start, end, options, mode))
    return inputs


def control_maps(inputs: list[ControlInput], size: tuple[int, int]) -> list:
    from studio.plugin_kit.images import open_user_image

    maps = []
    for index, item in enumerate(inputs):
        image = open_user_image(item.image, f"Control image {index + 1}", "RGB")
        try:
            maps.append(providers.process(item.kind, image, size, item.options))
        except ValueError as exc:  # a plugin preprocessor's sentence about this image
            raise ParamError(f"Control input {index + 1}: {exc}") from None
    return maps


def with_modes(inputs: list[ControlInput], modes: list[int | None]) -> list[ControlInput]:
    """The inputs with the union control modes that were applied (for the metadata and the log)."""
    return [replace(item, mode=mode) for item, mode in zip(inputs, modes, strict=True)]


class ControlModels:
    """The control models one loaded pipeline has used, kept loaded until another set is asked for."""

    def __init__(self) -> None:
        self._models: dict[Path, Any] = {}
        self._pipes: dict[tuple, Any] = {}

    def model(self, path: Path, dtype: Any, device: Any, allow_pickle: bool) -> Any:
        if path not in self._models:
            net = control_models.load(path, allow_pickle)
            if net.dtype != dtype:  # (a same-dtype .to(dtype=...) only prints a diffusers notice)
                net = net.to(dtype=dtype)
            self._models[path] = net.to(device)
        return self._models[path]

    def pipeline(self, base: Any, mode: str, inputs: list[ControlInput], dtype: Any, device: Any,
                 allow_pickle: bool) -> tuple[Any, list[int | None], list[str]]:
        """The ControlNet pipeline for ``mode`` with ``inputs``' models, each input's union control mode, and
        notices about what was ignored (a control mode given for a plain ControlNet)."""
        names = [control_models.class_name(item.model) for item in inputs]
        for item, name in zip(inputs, names, strict=True):
            control_models.check_suits(base, item.model, name)
        key = (mode, tuple(item.model for item in inputs))
        if key not in self._pipes:
            from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting, AutoPipelineForText2Image

            wanted = {item.model for item in inputs}
            for path in [p for p in self._models if p not in wanted]:  # free models no longer asked for
                del self._models[path]
            self._pipes = {k: v for k, v in self._pipes.items() if set(k[1]) <= wanted}
            nets = [self.model(item.model, dtype, device, allow_pickle) for item in inputs]
            controlnet = control_models.combine(nets)
            cls = control_models.pipeline_class(base, mode, names[0])
            if cls is None:
                cls = {"txt2img": AutoPipelineForText2Image, "img2img": AutoPipelineForImage2Image,
                       "inpaint": AutoPipelineForInpainting}[mode]
            try:
                pipe = cls.from_pipe(base, controlnet=controlnet)
            except Exception as exc:  # noqa: BLE001 - no ControlNet pipeline for this family / mode
                raise ParamError(f"{type(base).__name__} has no ControlNet pipeline for {mode} in this diffusers "
                                 f"({exc}).") from None
            pipe.set_progress_bar_config(disable=True)
            self._pipes[key] = pipe
        nets = [self._models[item.model] for item in inputs]
        modes = [control_models.control_mode(net, name, providers.map_type(item.kind), item.mode, index, item.kind)
                 for index, (net, name, item) in enumerate(zip(nets, names, inputs, strict=True))]
        notices = [f"Control input {index + 1}: control mode {item.mode} was ignored: {item.model.name} is not a "
                   f"union ControlNet (it has no modes)."
                   for index, (item, applied) in enumerate(zip(inputs, modes, strict=True))
                   if item.mode is not None and applied is None]
        return self._pipes[key], modes, notices

    def clear(self) -> None:
        self._models.clear()
        self._pipes.clear()


def call_kwargs(pipe: Any, inputs: list[ControlInput], maps: list, modes: list[int | None]) -> dict[str, Any]:
    """The control arguments of ``pipe``'s call: the maps go to ``control_image`` where the pipeline has one
    (img2img / inpaint, Flux, SD3, SDXL union), else to ``image`` (SD / SDXL text-to-image)."""
    import inspect

    one = len(inputs) == 1
    key = "control_image" if "control_image" in inspect.signature(type(pipe).__call__).parameters else "image"
    kwargs = {key: maps[0] if one else maps,
              "controlnet_conditioning_scale": inputs[0].weight if one else [i.weight for i in inputs],
              "control_guidance_start": inputs[0].start if one else [i.start for i in inputs],
              "control_guidance_end": inputs[0].end if one else [i.end for i in inputs]}
    if any(mode is not None for mode in modes):
        kwargs["control_mode"] = modes[0] if one else list(modes)
    return kwargs


def metadata(inputs: list[ControlInput]) -> dict[str, Any]:
    return {"controlnets": [item.a1111() for item in inputs]} if inputs else {}


__all__ = ["PARAMETERS", "ControlInput", "ControlModels", "call_kwargs", "control_maps", "metadata", "parse",
           "with_modes"]
