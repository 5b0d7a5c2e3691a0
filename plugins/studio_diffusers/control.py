"""ControlNet inputs for a run: parse them, make the control maps, load the control models, and pick the
ControlNet variant of the mode's pipeline (sharing the loaded weights through ``from_pipe``).

A request's ``controls`` is a list of ``{"kind", "image", "model", "weight", "start", "end"}`` (plus the
preprocessor's own options: ``low`` / ``high`` for canny, ``threshold`` / ``invert`` for scribble).
Several inputs make a MultiControlNet.  The processed maps are returned with the result (the panel's
preview) and the metadata records each input in the A1111 ControlNet extension's own words.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.plugin_api import Param, ParamError, ParamType
from studio.plugin_kit.control import preprocess

PARAMETERS: tuple[Param, ...] = (
    Param("controls", ParamType.LIST, default=(), label="Control inputs",
          help='ControlNet inputs: [{"kind": "canny"|"scribble"|"lineart"|"depth"|"pose"|"none", "image": file, '
               '"model": ControlNet folder or .safetensors, "weight": 1.0, "start": 0.0, "end": 1.0}]'),
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

    def a1111(self) -> str:
        """The A1111 ControlNet extension's value for ``ControlNet N``."""
        fields = [f"Module: {self.kind}", f"Model: {self.model.stem if self.model.is_file() else self.model.name}",
                  f"Weight: {self.weight:g}", f"Guidance Start: {self.start:g}", f"Guidance End: {self.end:g}"]
        if self.kind == "canny":
            fields += [f"Threshold A: {self.options.low}", f"Threshold B: {self.options.high}"]
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
        if kind not in preprocess.KINDS:
            raise ParamError(f"Control input {index + 1}: unknown kind {kind!r}; choose one of "
                             f"{', '.join(preprocess.KINDS)}.")
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
        inputs.append(ControlInput(kind, str(entry["image"]), model, _number(entry, "weight", 1.0, 0.0, 2.0, index),
                                   start, end, options))
    return inputs


def control_maps(inputs: list[ControlInput], size: tuple[int, int]) -> list:
    from studio.plugin_kit.images import open_user_image

    maps = []
    for index, item in enumerate(inputs):
        image = open_user_image(item.image, f"Control image {index + 1}", "RGB")
        maps.append(preprocess.process(item.kind, image, size, item.options))
    return maps


class ControlModels:
    """The control models one loaded pipeline has used, kept loaded until another set is asked for."""

    def __init__(self) -> None:
        self._models: dict[Path, Any] = {}
        self._pipes: dict[tuple, Any] = {}

    def model(self, path: Path, dtype: Any, device: Any, allow_pickle: bool) -> Any:
        if path not in self._models:
            net = _load_controlnet(path, allow_pickle)
            if net.dtype != dtype:  # (a same-dtype .to(dtype=...) only prints a diffusers notice)
                net = net.to(dtype=dtype)
            self._models[path] = net.to(device)
        return self._models[path]

    def pipeline(self, base: Any, mode: str, inputs: list[ControlInput], dtype: Any, device: Any,
                 allow_pickle: bool) -> Any:
        key = (mode, tuple(item.model for item in inputs))
        if key not in self._pipes:
            from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting, AutoPipelineForText2Image

            wanted = {item.model for item in inputs}
            for path in [p for p in self._models if p not in wanted]:  # free models no longer asked for
                del self._models[path]
            self._pipes = {k: v for k, v in self._pipes.items() if set(k[1]) <= wanted}
            nets = [self.model(item.model, dtype, device, allow_pickle) for item in inputs]
            auto = {"txt2img": AutoPipelineForText2Image, "img2img": AutoPipelineForImage2Image,
                    "inpaint": AutoPipelineForInpainting}[mode]
            controlnet = nets[0] if len(nets) == 1 else _multi(nets)
            try:
                pipe = auto.from_pipe(base, controlnet=controlnet)
            except Exception as exc:  # noqa: BLE001 - no ControlNet pipeline for this family / mode
                raise ParamError(f"{type(base).__name__} has no ControlNet pipeline for {mode} in this diffusers "
                                 f"({exc}).") from None
            pipe.set_progress_bar_config(disable=True)
            self._pipes[key] = pipe
        return self._pipes[key]

    def clear(self) -> None:
        self._models.clear()
        self._pipes.clear()


def _multi(nets: list) -> Any:
    from diffusers.models.controlnets.multicontrolnet import MultiControlNetModel

    return MultiControlNetModel(nets)


def _load_controlnet(path: Path, allow_pickle: bool) -> Any:
    """A diffusers ControlNet folder, or a single diffusers-layout file with its config.json beside it."""
    from diffusers import ControlNetModel

    if path.is_dir():
        config = json.loads((path / "config.json").read_text(encoding="utf-8")) if (path / "config.json").is_file() \
            else {}
        cls = _class_for(config.get("_class_name", "ControlNetModel"))
        return cls.from_pretrained(str(path), use_safetensors=not allow_pickle or None)
    if path.suffix.lower() != ".safetensors" and not allow_pickle:
        raise ParamError(f"{path.name} is a pickle file, refused unless pickle files are allowed.")
    config_file = path.with_name("config.json")
    if config_file.is_file():
        from safetensors.torch import load_file

        config = json.loads(config_file.read_text(encoding="utf-8"))
        net = _class_for(config.get("_class_name", "ControlNetModel")).from_config(config)
        net.load_state_dict(load_file(str(path)))
        return net.eval()
    try:
        return ControlNetModel.from_single_file(str(path), local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - explained below
        raise ParamError(f"Cannot load the control model {path.name}: put its config.json beside it, or use a "
                         f"diffusers ControlNet folder ({str(exc).splitlines()[0][:160]}).") from None


def _class_for(name: str) -> Any:
    import diffusers

    cls = getattr(diffusers, name, None)
    if cls is None or "ControlNet" not in name:
        raise ParamError(f"{name} is not a ControlNet class this diffusers knows.")
    return cls


def call_kwargs(mode: str, inputs: list[ControlInput], maps: list) -> dict[str, Any]:
    one = len(inputs) == 1
    key = "image" if mode == "txt2img" else "control_image"
    return {key: maps[0] if one else maps,
            "controlnet_conditioning_scale": inputs[0].weight if one else [i.weight for i in inputs],
            "control_guidance_start": inputs[0].start if one else [i.start for i in inputs],
            "control_guidance_end": inputs[0].end if one else [i.end for i in inputs]}


def metadata(inputs: list[ControlInput]) -> dict[str, Any]:
    return {"controlnets": [item.a1111() for item in inputs]} if inputs else {}


__all__ = ["PARAMETERS", "ControlInput", "ControlModels", "call_kwargs", "control_maps", "metadata", "parse"]
