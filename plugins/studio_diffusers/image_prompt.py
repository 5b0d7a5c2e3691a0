"""Image prompts (IP-Adapter): a reference image steers the picture alongside the text.

The adapter is a local file (``ip-adapter_sd15.safetensors`` or a ``.bin`` pickle when allowed) with its
CLIP image encoder beside it: an ``image_encoder/`` folder next to the file (the layout the adapters
are published in), or the file's own folder holding the encoder's ``config.json``.  It is loaded with
diffusers' ``load_ip_adapter`` into the pipeline's UNet, kept while requests use it, and unloaded when a
request has no image prompt (a UNet with an adapter loaded needs image embeddings on every call).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.plugin_api import Param, ParamError, ParamType

PARAMETERS: tuple[Param, ...] = (
    Param("image_prompts", ParamType.LIST, default=(), label="Image prompts",
          help='Reference images: [{"image": file, "weight": 0.6}] (one adapter; the weight is its scale).'),
    Param("image_prompt_model", ParamType.FILE_PATH, default=None, optional=True, label="Image prompt model",
          help="An IP-Adapter file with its image_encoder folder beside it."),
)


@dataclass(frozen=True)
class ImagePrompt:
    image: str
    weight: float


def parse(entries: Any, model: Any, allow_pickle: bool) -> tuple[list[ImagePrompt], Path | None]:
    prompts = []
    for index, entry in enumerate(entries or ()):
        if not isinstance(entry, dict) or not entry.get("image"):
            raise ParamError(f"Image prompt {index + 1} needs an image.")
        try:
            weight = float(entry.get("weight", 1.0))
        except (TypeError, ValueError):
            raise ParamError(f"Image prompt {index + 1}: the weight must be a number.") from None
        if not 0.0 <= weight <= 2.0:
            raise ParamError(f"Image prompt {index + 1}: the weight must be between 0 and 2 (got {weight:g}).")
        prompts.append(ImagePrompt(str(entry["image"]), weight))
    if not prompts:
        return [], None
    if len(prompts) > 1:
        raise ParamError("One image prompt at a time for now (one adapter, one reference image).")
    if not model:
        raise ParamError("An image prompt needs an image prompt model (an IP-Adapter file).")
    path = Path(str(model)).expanduser()
    if not path.is_file():
        raise ParamError(f"Image prompt model not found: {path}")
    if path.suffix.lower() != ".safetensors" and not allow_pickle:
        raise ParamError(f"{path.name} is a pickle file, refused unless pickle files are allowed.")
    if encoder_folder(path) is None:
        raise ParamError(f"No image encoder for {path.name}: put its image_encoder folder (config.json + weights) "
                         f"beside it.")
    return prompts, path


def encoder_folder(adapter: Path) -> Path | None:
    for folder in (adapter.parent / "image_encoder", adapter.parent):
        if (folder / "config.json").is_file() and any(folder.glob("*.safetensors")) | any(folder.glob("*.bin")):
            return folder
    return None


class ImagePromptState:
    """Which adapter the (shared) UNet holds, and putting its encoder on whichever pipeline runs."""

    def __init__(self) -> None:
        self.loaded: Path | None = None
        self._encoder: Any = None
        self._processor: Any = None
        self._loader: Any = None  # the pipeline whose load_ip_adapter put the adapter in the shared denoiser

    def prepare(self, pipe: Any, adapter: Path | None, dtype: Any, device: Any) -> None:
        if adapter is None:
            if self.loaded is not None:
                # through the pipeline that loaded it: the denoiser is shared, and the pipeline running
                # now (Flux's ControlNet img2img / inpaint) may have no IP-Adapter methods at all
                self._loader.unload_ip_adapter()
                self.loaded = self._encoder = self._processor = self._loader = None
            return
        mixin = adapter_layout(pipe)
        if mixin is None:
            raise ParamError(unsupported_sentence(pipe))
        if self.loaded != adapter:
            if self.loaded is not None:
                self._loader.unload_ip_adapter()
            import transformers
            from transformers import CLIPVisionModelWithProjection

            # the PIL image processor: the default one wants torchvision, absent beside this torch build
            processor_class = getattr(transformers, "CLIPImageProcessorPil", transformers.CLIPImageProcessor)
            folder = encoder_folder(adapter)
            self._encoder = CLIPVisionModelWithProjection.from_pretrained(str(folder)).to(device=device, dtype=dtype)
            self._processor = (processor_class.from_pretrained(str(folder))
                               if (folder / "preprocessor_config.json").is_file() else processor_class())
            pipe.register_modules(image_encoder=self._encoder, feature_extractor=self._processor)
            # the encoder is registered above, so neither loader looks for one (nor downloads one)
            if mixin == "FluxIPAdapterMixin":
                pipe.load_ip_adapter(str(adapter.parent), weight_name=adapter.name, subfolder="",
                                     image_encoder_pretrained_model_name_or_path=None, local_files_only=True)
            else:
                pipe.load_ip_adapter(str(adapter.parent), subfolder="", weight_name=adapter.name,
                                     image_encoder_folder=None, local_files_only=True)
            self.loaded = adapter
            self._loader = pipe
        # pipelines derived with from_pipe before the load do not hold the encoder yet
        if getattr(pipe, "image_encoder", None) is not self._encoder:
            pipe.register_modules(image_encoder=self._encoder, feature_extractor=self._processor)

    def call_kwargs(self, pipe: Any, prompts: list[ImagePrompt]) -> dict[str, Any]:
        from studio.plugin_kit.images import open_user_image

        pipe.set_ip_adapter_scale(prompts[0].weight)
        return {"ip_adapter_image": open_user_image(prompts[0].image, "Image prompt", "RGB")}


#: the diffusers loaders whose adapters Studio runs: the CLIP-encoder IP-Adapters (SD 1.5 / SDXL UNets, and
#: Flux.1 in the XLabs layout).  SD3's takes a SigLIP encoder and another layout: not wired here.
LAYOUTS = {"IPAdapterMixin": "Stable Diffusion 1.5 / 2.x / SDXL", "FluxIPAdapterMixin": "Flux.1"}


def adapter_layout(pipe: Any) -> str | None:
    """The IP-Adapter loader ``pipe`` has among :data:`LAYOUTS`, or None."""
    for cls in type(pipe).__mro__:
        if cls.__name__ in LAYOUTS:
            return cls.__name__
    return None


def unsupported_sentence(pipe: Any) -> str:
    return (f"Image prompts (IP-Adapter) work with {' and '.join(LAYOUTS.values())} models in Studio; "
            f"{type(pipe).__name__} has no IP-Adapter Studio can load, so remove the image prompt or pick one of "
            f"those models.")


def metadata(prompts: list[ImagePrompt], adapter: Path | None) -> dict[str, Any]:
    if not prompts or adapter is None:
        return {}
    return {"image_prompt": Path(prompts[0].image).name, "image_prompt_weight": prompts[0].weight,
            "image_prompt_model": adapter.stem}


__all__ = ["LAYOUTS", "PARAMETERS", "ImagePrompt", "ImagePromptState", "adapter_layout", "metadata", "parse",
           "unsupported_sentence"]
