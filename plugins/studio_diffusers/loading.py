"""Turn a resolved :class:`~studio_diffusers.sources.Source` into a diffusers pipeline.

Imports torch and diffusers: only imported from ``DiffusersPlugin.load``.
"""

from __future__ import annotations

import inspect
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from studio.plugin_api import LoadOptions
from studio.torch_devices import dtype_named, pick_device

from .sources import Source



@dataclass
class LoadedPipeline:
    pipe: Any
    device: str
    dtype: Any
    weights_file: Path | None  # the file hashed for A1111's "Model hash"
    notes: list[str] = field(default_factory=list)  # warnings to show as Log events on the first run


def pick_dtype(requested: str, device: str, notes: list[str]) -> Any:
    requested = (requested or "auto").lower()
    if requested == "auto":
        return torch.float16 if device.startswith(("cuda", "mps")) else torch.float32
    dtype = dtype_named(requested)
    if requested == "float16" and device == "cpu":
        notes.append("float16 on the CPU is slow and may fail for some layers; float32 is recommended.")
    return dtype


def _class_name(folder: Path) -> str:
    try:
        return json.loads((folder / "model_index.json").read_text(encoding="utf-8")).get("_class_name", "")
    except (OSError, ValueError) as exc:
        raise ValueError(f"Could not read {folder / 'model_index.json'}: {exc}") from None


def _index(folder: Path) -> dict:
    try:
        return json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _no_safety_kwargs(index: dict) -> dict[str, Any]:
    """Safety checker off: it needs hub weights and Studio shows every image to its own user."""
    if "safety_checker" in index:
        return {"safety_checker": None, "requires_safety_checker": False}
    return {}


def _denoiser_weights(folder: Path) -> Path | None:
    for sub in ("unet", "transformer", "prior", "decoder"):
        d = folder / sub
        if not d.is_dir():
            continue
        for name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors",
                     "diffusion_pytorch_model.bin"):
            if (d / name).is_file():
                return d / name
        shards = sorted(d.glob("*.safetensors"))
        if shards:
            return shards[0]
    return None


def _pipeline_class(name: str):
    import diffusers

    cls = getattr(diffusers, name, None)
    if cls is None:
        raise ValueError(f"This diffusers version has no pipeline class {name!r}; update diffusers or "
                         f"use another model.")
    return cls


def _single_file_class(path: Path, config_folder: str | None):
    """The pipeline class for a single-file checkpoint: from the local config, else from its keys."""
    if config_folder:
        return _pipeline_class(_class_name(Path(config_folder)))
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type, load_single_file_checkpoint

    checkpoint = load_single_file_checkpoint(str(path), local_files_only=True)
    model_type = infer_diffusers_model_type(checkpoint)
    del checkpoint
    if model_type.startswith("xl_inpaint"):
        return _pipeline_class("StableDiffusionXLInpaintPipeline")
    if model_type.startswith("xl"):
        return _pipeline_class("StableDiffusionXLPipeline")
    if model_type.startswith("inpainting"):
        return _pipeline_class("StableDiffusionInpaintPipeline")
    if model_type in ("v1", "v2") or model_type.startswith("v2"):
        return _pipeline_class("StableDiffusionPipeline")
    raise ValueError(f"{path.name} looks like a {model_type!r} checkpoint, which this plugin does not load "
                     f"as a single file; use its diffusers folder instead.")


def _offline_help(what: str) -> str:
    cache = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface")), "hub")
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    hint = ("HF_HUB_OFFLINE is set, so nothing can be downloaded" if offline
            else "turn on 'allow download' in the load options to fetch it")
    return f"{what} is not in the local Hugging Face cache ({cache}); {hint}, or use a local diffusers folder."


def _quiet_libraries() -> None:
    """The studio shows its own progress and messages; the libraries' console progress bars
    and import-time notices (e.g. "requires torchvision") would only clutter a terminal."""
    import diffusers.utils.logging as diffusers_logging
    import transformers.utils.logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()


def load_pipeline(source: Source, options: LoadOptions, progress: Callable[[str], None]) -> LoadedPipeline:
    _quiet_libraries()
    from diffusers import DiffusionPipeline

    notes: list[str] = []
    device = pick_device(options.device)
    dtype = pick_dtype(options.dtype, device, notes)
    weights_file: Path | None = None

    if source.kind == "folder":
        folder = Path(source.location)
        index = _index(folder)
        progress(f"Loading {index.get('_class_name', 'pipeline')} from {folder.name}")
        try:
            pipe = DiffusionPipeline.from_pretrained(
                folder, dtype=dtype, local_files_only=True,
                use_safetensors=None if options.allow_pickle else True, **_no_safety_kwargs(index))
        except (OSError, EnvironmentError) as exc:
            if not options.allow_pickle and "safetensors" in str(exc).lower():
                raise ValueError(f"{folder.name} has only pickle (.bin) weights; turn on 'allow pickle' in "
                                 f"the load options if you trust where it came from.") from exc
            raise
        weights_file = _denoiser_weights(folder)
    elif source.kind == "single_file":
        path = Path(source.location)
        cls = _single_file_class(path, source.config_folder)
        progress(f"Loading {path.name} as {cls.__name__}")
        kwargs: dict[str, Any] = {"dtype": dtype}
        if "safety_checker" in inspect.signature(cls.__init__).parameters:
            kwargs.update(safety_checker=None, requires_safety_checker=False)
        if source.config_folder:
            kwargs.update(config=source.config_folder, local_files_only=True)
        else:
            kwargs.update(local_files_only=not options.allow_download)
        try:
            pipe = cls.from_single_file(str(path), **kwargs)
        except Exception as exc:  # the library's own config inference reaches for the hub
            text = str(exc)
            if not source.config_folder and any(k in text.lower() for k in ("offline", "connect", "hub",
                                                                                   "local_files_only", "cache")):
                raise RuntimeError(
                    f"{path.name} needs its pipeline configuration, which diffusers fetches from the Hugging "
                    f"Face hub. " + _offline_help("That configuration") +
                    f" Alternatively put a diffusers config folder (with model_index.json) beside the file, "
                    f"named '{path.stem}'.") from exc
            raise
        weights_file = path
    else:  # hub id
        progress(f"Loading {source.location} from the Hugging Face cache")
        try:
            pipe = DiffusionPipeline.from_pretrained(
                source.location, dtype=dtype, local_files_only=not options.allow_download,
                use_safetensors=None if options.allow_pickle else True)
        except Exception as exc:
            text = str(exc).lower()
            if any(k in text for k in ("offline", "local_files_only", "cache", "connect", "not found", "404")):
                raise FileNotFoundError(
                    f"Model not found: {source.location} is neither a local file or folder nor a hub model "
                    f"available here. " + _offline_help(source.location)) from exc
            raise
        try:
            from huggingface_hub import snapshot_download

            weights_file = _denoiser_weights(Path(snapshot_download(source.location, local_files_only=True)))
        except Exception:  # noqa: BLE001 - the hash is optional metadata
            weights_file = None

    if getattr(pipe, "safety_checker", None) is not None:
        pipe.safety_checker = None
    _place(pipe, device, options, notes)
    pipe.set_progress_bar_config(disable=True)
    return LoadedPipeline(pipe, device, dtype, weights_file, notes)


def _place(pipe: Any, device: str, options: LoadOptions, notes: list[str]) -> None:
    if options.cpu_offload:
        if device.startswith("cuda"):
            pipe.enable_model_cpu_offload(device=device)
        else:
            notes.append(f"Model CPU offload only applies to CUDA; ignored on {device}.")
            pipe.to(device)
    else:
        pipe.to(device)
    if options.attention_slicing:
        pipe.enable_attention_slicing()
    if options.vae_tiling:
        vae = getattr(pipe, "vae", None)
        if vae is not None and hasattr(vae, "enable_tiling"):
            vae.enable_tiling()
        else:
            notes.append("This model's VAE has no tiling; the option was ignored.")


def memory_bytes(pipe: Any) -> int:
    total = 0
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            total += sum(p.numel() * p.element_size() for p in component.parameters())
            total += sum(b.numel() * b.element_size() for b in component.buffers())
    return total
