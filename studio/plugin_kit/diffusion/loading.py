"""Turn a resolved :class:`~studio.plugin_kit.diffusion.sources.Source` into a diffusers pipeline.

Imports torch and diffusers: only imported from ``DiffusersPlugin.load``.
"""

from __future__ import annotations

import inspect
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from studio.plugin_api import LoadOptions
from studio.plugin_kit.devices import dtype_named, pick_device

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


def _safetensors_problem(path: Path) -> str | None:
    """Why a .safetensors file cannot be whole (its header and size disagree), or None.
    Reads only the header: 8 bytes of length, a JSON table of tensors with their byte ranges."""
    import json
    import struct

    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                return "shorter than a safetensors header"
            (length,) = struct.unpack("<Q", head)
            if length > size - 8:
                return f"the header says {length} bytes but the file has {size}"
            table = json.loads(handle.read(length))
    except (OSError, ValueError) as exc:
        return f"unreadable header: {exc}"
    ends = [int(v["data_offsets"][1]) for k, v in table.items() if k != "__metadata__" and isinstance(v, dict)]
    needed = 8 + length + max(ends, default=0)
    return f"{size} of {needed} bytes" if size < needed else None


def _broken_safetensors(folder: Path) -> Path | None:
    for path in sorted(folder.glob("*/*.safetensors")):
        if _safetensors_problem(path) is not None:
            return path
    return None


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


# diffusers' name for a single file's architecture (infer_diffusers_model_type) -> what Studio calls it
# and the pipeline class it loads as.  Other types (SD3, Flux, ...) load from their diffusers folders.
_SINGLE_FILE_TYPES = {
    "v1": ("Stable Diffusion 1.x", "StableDiffusionPipeline"),
    "v2": ("Stable Diffusion 2.x", "StableDiffusionPipeline"),
    "inpainting": ("Stable Diffusion 1.x inpainting", "StableDiffusionInpaintPipeline"),
    "inpainting_v2": ("Stable Diffusion 2.x inpainting", "StableDiffusionInpaintPipeline"),
    "xl_base": ("SDXL", "StableDiffusionXLPipeline"),
    "xl_refiner": ("SDXL refiner", "StableDiffusionXLPipeline"),
    "xl_inpaint": ("SDXL inpainting", "StableDiffusionXLInpaintPipeline"),
}
# The components Studio never uses: a config folder need not have them.
_UNUSED_COMPONENTS = ("safety_checker", "feature_extractor", "image_encoder")


def _checkpoint_view(path: Path) -> dict:
    """The keys of a single-file checkpoint, each with a tensor of the right shape, for diffusers'
    model-type inference.  A .safetensors file is read from its header alone (meta tensors, no
    weights in memory: a real checkpoint is 2-7 GB and from_single_file reads it once anyway);
    a pickle checkpoint (only with 'allow pickle') has to be loaded."""
    if path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                return {k: torch.empty(f.get_slice(k).get_shape(), device="meta") for k in f.keys()}
        except (SafetensorError, OSError) as exc:
            raise ValueError(f"{path.name} is not a readable .safetensors file ({_first_line(exc)}).") from exc
    from diffusers.loaders.single_file_utils import load_single_file_checkpoint

    try:
        return load_single_file_checkpoint(str(path), local_files_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ValueError(f"Could not read the checkpoint {path.name} ({_first_line(exc)}).") from exc


def _model_type(view: dict) -> str:
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    try:
        return infer_diffusers_model_type(view)
    except Exception:  # noqa: BLE001 - exotic architectures may want more than shapes: not ours to load
        return "unknown"


def _family(view: dict) -> str | None:
    """"sdxl" or "sd" from the text-encoder keys of an original-layout checkpoint, else None.
    Unlike the model type this does not depend on the model's depth or widths."""
    if any(k.startswith("conditioner.embedders.") for k in view):
        return "sdxl"
    if any(k.startswith("cond_stage_model.") for k in view):
        return "sd"
    return None


def _single_file_class(path: Path, view: dict, model_type: str, config_folder: str | None):
    """The pipeline class for a single-file checkpoint: from the local config, else from its keys."""
    if config_folder:
        name = _class_name(Path(config_folder))
        family = _family(view)
        if family is not None and (family == "sdxl") != ("XL" in name):
            kind = "an SDXL" if family == "sdxl" else "a Stable Diffusion 1.x/2.x"
            raise ValueError(f"{path.name} is {kind} checkpoint but its config folder {Path(config_folder).name} "
                             f"is a {name}; the config folder must be a diffusers pipeline of the same "
                             f"architecture as the file.")
        return _pipeline_class(name)
    if model_type not in _SINGLE_FILE_TYPES:
        raise ValueError(f"{path.name} looks like a {model_type!r} checkpoint, which this plugin does not load "
                         f"as a single file; use its diffusers folder instead.")
    return _pipeline_class(_SINGLE_FILE_TYPES[model_type][1])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0].rstrip(". ")


def _hub_cache() -> str:
    return os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface")), "hub")


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _check_config_folder(folder: Path, path: Path) -> dict[str, Any]:
    """Every component the config folder's model_index.json names must have its subfolder there
    (configs, tokenizer files, scheduler config: the weights come from the checkpoint).  Returns
    the keyword arguments that leave out the unused components the folder does not have."""
    index = _index(folder)
    if not index:
        raise ValueError(f"The config folder {folder} for {path.name} has no readable model_index.json.")
    skip: dict[str, Any] = {}
    missing = []
    for name, value in index.items():
        if name.startswith("_") or not isinstance(value, list) or len(value) != 2 or value[0] is None:
            continue
        if (folder / name).is_dir():
            continue
        if name in _UNUSED_COMPONENTS:
            skip[name] = None
        else:
            missing.append(name)
    if missing:
        raise ValueError(f"The config folder {folder} for {path.name} lacks {', '.join(missing)}: it must be a "
                         f"complete diffusers pipeline folder of the same architecture (the weights may be left "
                         f"out, except for components the checkpoint does not contain).")
    return skip


def _cached_hub_config(repo: str) -> str | None:
    """The local snapshot of ``repo`` in the Hugging Face cache, if there is one (never downloads)."""
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(repo, cache_dir=_hub_cache(), local_files_only=True)
    except Exception:  # noqa: BLE001 - not cached (LocalEntryNotFoundError) or an unreadable cache entry
        return None


def _missing_config_message(path: Path, model_type: str, repo: str, allow_download: bool, cause: str = "") -> str:
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    label = _SINGLE_FILE_TYPES.get(model_type, (model_type, ""))[0]
    # With downloads off the studio itself sets HF_HUB_OFFLINE for the load: say "allow download"
    # first; only a user's own HF_HUB_OFFLINE with downloads on is worth naming.
    if not allow_download:
        download = "or turn on 'allow download' in the load options to fetch it (configuration files only)"
    elif _hub_offline():
        download = "or unset HF_HUB_OFFLINE to let 'allow download' fetch it"
    else:
        download = f"or check the network connection and try again (the download failed: {cause})"
    return (f"{path.name} looks like a {label} checkpoint; loading it needs the diffusers configuration of that "
            f"architecture ({repo} on the Hugging Face hub), which is not in the local Hugging Face cache "
            f"({_hub_cache()}). Put a diffusers config folder of the same architecture (a pipeline folder with "
            f"model_index.json; its configs, tokenizer and scheduler are used, its weights are not) beside the "
            f"file, named '{stem}' (or '{stem}.config', '{stem}_config' or 'config'), {download}.")


_SHAPE_MISMATCH = re.compile(r"because (\S+) expected shape torch\.Size\((\[[^]]*\])\), "
                             r"but got torch\.Size\((\[[^]]*\])\)")


def _mismatch_message(path: Path, where: str, exc: BaseException) -> str:
    m = _SHAPE_MISMATCH.search(str(exc))
    if m:
        detail = f"{m[1]} is {m[3]} in the file but {m[2]} in the configuration"
    else:
        detail = _first_line(exc)
    return (f"{path.name} does not match the configuration in {where} ({detail}); the configuration must "
            f"describe the same architecture (and sizes) as the checkpoint.")


def _load_single_file(source: Source, options: LoadOptions, dtype: Any, progress: Callable[[str], None]) -> Any:
    from diffusers.loaders.single_file_utils import DIFFUSERS_DEFAULT_PIPELINE_PATHS, SingleFileComponentError

    path = Path(source.location)
    view = _checkpoint_view(path)
    model_type = _model_type(view)
    cls = _single_file_class(path, view, model_type, source.config_folder)
    del view
    kwargs: dict[str, Any] = {"dtype": dtype}
    if "safety_checker" in inspect.signature(cls.__init__).parameters:
        kwargs.update(safety_checker=None, requires_safety_checker=False)

    # diffusers reads the architecture from a diffusers config; without a local one it fetches
    # the default repo for the model type, and with local_files_only=True and nothing cached it
    # silently downloads anyway (single_file.py): so the config is always found here first.
    repo = DIFFUSERS_DEFAULT_PIPELINE_PATHS.get(model_type, {}).get("pretrained_model_name_or_path", "")
    if source.config_folder:
        config, where = source.config_folder, f"the config folder {Path(source.config_folder).name}"
    else:
        config, where = _cached_hub_config(repo), f"{repo} (Hugging Face cache)"
        if config is None and (not options.allow_download or _hub_offline()):
            raise RuntimeError(_missing_config_message(path, model_type, repo, options.allow_download))
    if config is not None:
        kwargs.update(_check_config_folder(Path(config), path))
        kwargs.update(config=config, local_files_only=True)
        progress(f"Loading {path.name} as {cls.__name__} with the configuration in {where}")
    else:
        kwargs.update(local_files_only=False)
        where = f"{repo} (downloaded)"
        progress(f"Loading {path.name} as {cls.__name__}; fetching the configuration {repo}")
    try:
        return cls.from_single_file(str(path), **kwargs)
    except SingleFileComponentError as exc:
        raise RuntimeError(f"{path.name} cannot be loaded as {cls.__name__}: {_first_line(exc)} (not a complete "
                           f"pipeline checkpoint, e.g. a UNet-only file); load a complete checkpoint or its "
                           f"diffusers folder instead.") from exc
    except Exception as exc:  # noqa: BLE001 - turned into one sentence; the cause stays chained for the log
        if "expected shape" in str(exc):
            raise ValueError(_mismatch_message(path, where, exc)) from exc
        if config is None and _is_hub_error(exc):
            raise RuntimeError(_missing_config_message(path, model_type, repo, True, _first_line(exc))) from exc
        if isinstance(exc, (ValueError, OSError, KeyError)):
            raise ValueError(f"Could not load {path.name} as {cls.__name__} with the configuration in {where}: "
                             f"{_first_line(exc)}.") from exc
        raise


def _is_hub_error(exc: BaseException) -> bool:
    """A failure to reach or read the Hugging Face hub (its own errors, the HTTP client's, OSError)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in ("huggingface_hub", "httpx",
                                                                                 "requests", "urllib3"):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _offline_help(what: str, allow_download: bool = False) -> str:
    hint = ("HF_HUB_OFFLINE is set, so nothing can be downloaded" if allow_download and _hub_offline()
            else "turn on 'allow download' in the load options to fetch it")
    return f"{what} is not in the local Hugging Face cache ({_hub_cache()}); {hint}, or use a local diffusers folder."


def _quiet_libraries() -> None:
    """The studio shows its own progress and messages; the libraries' console progress bars
    and import-time notices (e.g. "requires torchvision") would only clutter a terminal."""
    import logging
    import warnings

    # torchao (used for --quantize, imported by diffusers when installed) logs missing optional
    # kernels and torch deprecation chatter at import time; Studio reports what it applies itself.
    for name in ("torchao", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"diffusers\.")
    import diffusers.utils.logging as diffusers_logging
    import transformers.utils.logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    # diffusers' warnings are about its internals (dtype casts, deprecations, "clean_caption"); what
    # a user must know about their settings, Studio says itself (notices, one-line errors).
    diffusers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()


def load_pipeline(source: Source, options: LoadOptions, progress: Callable[[str], None],
                  components: dict[str, Any] | None = None) -> LoadedPipeline:
    """``components``: modules loaded elsewhere that replace the folder's own (e.g. a GGUF
    transformer); only for a folder source."""
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
                use_safetensors=None if options.allow_pickle else True, **_no_safety_kwargs(index),
                **(components or {}))
        except Exception as exc:
            broken = _broken_safetensors(folder)
            if broken is not None:  # the weights are there but cut short or damaged
                raise ValueError(f"{broken.relative_to(folder)} in {folder.name} is truncated or corrupt "
                                 f"({_safetensors_problem(broken)}); copy or download it again.") from exc
            if not isinstance(exc, OSError):
                raise
            if not options.allow_pickle and "safetensors" in str(exc).lower():
                raise ValueError(f"{folder.name} has only pickle (.bin) weights; turn on 'allow pickle' in "
                                 f"the load options if you trust where it came from.") from exc
            raise
        weights_file = _denoiser_weights(folder)
    elif components:
        raise ValueError(f"A separate transformer file goes with a diffusers base folder that provides the other "
                         f"components; {Path(source.location).name} is not a folder.")
    elif source.kind == "single_file":
        pipe = _load_single_file(source, options, dtype, progress)
        weights_file = Path(source.location)
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
                    f"available here. " + _offline_help(source.location, options.allow_download)) from exc
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
