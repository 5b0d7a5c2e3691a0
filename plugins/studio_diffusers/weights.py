"""Split and quantized weights: a separate transformer/UNet file, weight-only int8/fp8, and what
a load cost in memory.

* **A transformer file beside a base folder** (what people download for Flux, Qwen-Image, Z-Image
  ...): a GGUF file (Q8_0, Q4_K ...; loaded with diffusers' ``GGUFQuantizationConfig``, the
  weights stay quantized and are dequantized layer by layer at run time) or a single-file
  ``.safetensors``.  Both key layouts load: diffusers' own and the original one the model's
  authors published (BFL-style for Flux), which diffusers converts.
* **Weight-only quantization at load** (``LoadOptions.quantize``: int8 | fp8) of the denoiser and
  the text encoders' linear layers, with torchao; activations stay in the model's dtype.
* :class:`LoadMeter`: peak RSS (and VRAM on CUDA) during a load, for the status bar and history.

Imports torch/diffusers: only imported from the plugin's ``load``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import torch

QUANTIZE_CHOICES = ("none", "int8", "fp8")


# ------------------------------------------------------------------------------ memory


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        try:
            import psutil

            return int(psutil.Process().memory_info().rss)
        except Exception:  # noqa: BLE001 - no way to read it here: report nothing rather than guess
            return 0


class LoadMeter:
    """Peak resident memory while a load runs: sampled every 5 ms on a helper thread (a load's
    allocations are large and long-lived, so sampling sees its peak), plus CUDA's own peak."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="studio-load-meter", daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            self._stop.wait(0.005)

    def __enter__(self) -> Self:
        self.started = time.perf_counter()
        self.before = _rss_bytes()
        self.peak = self.before
        if self.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats(self.device)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())
        self.seconds = time.perf_counter() - self.started

    def figures(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seconds": round(self.seconds, 3), "peak_rss_bytes": self.peak,
                               "rss_delta_bytes": max(0, _rss_bytes() - self.before)}
        if self.device.startswith("cuda"):
            out["peak_vram_bytes"] = int(torch.cuda.max_memory_allocated(self.device))
        return out


def tensor_bytes(t: torch.Tensor) -> int:
    """Storage a tensor really takes, looking inside quantized tensor subclasses (torchao's
    int8/fp8 tensors hold ``qdata`` + scales; GGUF parameters are plain uint8 blocks)."""
    flatten = getattr(t, "__tensor_flatten__", None)
    if flatten is not None and type(t) is not torch.Tensor and type(t) is not torch.nn.Parameter:
        names, _ = flatten()
        return sum(tensor_bytes(getattr(t, name)) for name in names)
    return t.numel() * t.element_size()


def module_bytes(module: torch.nn.Module) -> int:
    return sum(tensor_bytes(p) for p in module.parameters()) + sum(tensor_bytes(b) for b in module.buffers())


def pipeline_bytes(pipe: Any) -> int:
    return sum(module_bytes(c) for c in pipe.components.values() if isinstance(c, torch.nn.Module))


# ------------------------------------------------------------------------------ quantization


def quantize_pipeline(pipe: Any, kind: str, progress: Callable[[str], None]) -> dict[str, Any]:
    """Weight-only ``kind`` (int8 | fp8) quantization of the denoiser and text encoders, in place.
    Returns the figures: bytes before/after and which components were quantized."""
    if kind not in QUANTIZE_CHOICES:
        raise ValueError(f"Quantization must be one of {', '.join(QUANTIZE_CHOICES)} (got {kind!r}).")
    try:
        from torchao.quantization import (
            Float8WeightOnlyConfig,
            Int8WeightOnlyConfig,
            quantize_,
        )
    except ImportError as exc:
        raise RuntimeError(f"{kind} quantization needs the torchao package, which is not installed "
                           f"(pip install torchao).") from exc
    config = Int8WeightOnlyConfig() if kind == "int8" else Float8WeightOnlyConfig()
    names = [name for name, c in pipe.components.items() if isinstance(c, torch.nn.Module)
             and (name in ("transformer", "unet") or name.startswith("text_encoder"))]
    before = pipeline_bytes(pipe)
    done = []
    for name in names:
        module = pipe.components[name]
        if any(type(p) is not torch.nn.Parameter for p in module.parameters()):
            continue  # already quantized (a GGUF transformer): leave it as it is
        progress(f"Quantizing {name} to {kind} (weights only)")
        quantize_(module, config)
        _own_memory(module)
        done.append(name)
    _release_freed_memory()
    after = pipeline_bytes(pipe)
    return {"quantization": kind, "quantized_components": done, "weights_bytes_before": before,
            "weights_bytes": after, "quantized_saved_bytes": max(0, before - after)}


def _own_memory(module: torch.nn.Module) -> None:
    """Copy the tensors quantization left as they were (biases, norms) out of the weights file's
    memory map.  safetensors loads by mapping the file; while any tensor still points into the
    mapping, every page of it the quantizer read stays resident, and int8 would save nothing."""
    with torch.no_grad():
        for param in module.parameters():
            if type(param) is torch.nn.Parameter:
                param.data = param.data.clone()
        for sub in module.modules():
            for key, buffer in list(sub._buffers.items()):
                if buffer is not None and type(buffer) is torch.Tensor:
                    sub._buffers[key] = buffer.clone()


def _release_freed_memory() -> None:
    """Give the full-precision weights' memory back to the system once they are replaced: glibc
    keeps freed heap memory for reuse otherwise, and the process would look as big as before."""
    import gc

    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass


# ------------------------------------------------------------------------------ transformer files


def _denoiser_entry(folder: Path) -> tuple[str, str]:
    """(component name, class name) of the base folder's denoiser, from model_index.json."""
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"A separate transformer file needs a diffusers base folder with model_index.json; "
                         f"could not read {folder / 'model_index.json'} ({exc}).") from None
    for name in ("transformer", "unet"):
        entry = index.get(name)
        if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], str):
            return name, entry[1]
    raise ValueError(f"{folder.name} has no transformer or UNet component to replace.")


def load_denoiser_file(path: Path, base: Path, dtype: Any, progress: Callable[[str], None]) -> dict[str, Any]:
    """The denoiser from ``path`` (GGUF or single-file safetensors) with ``base``'s config, as the
    ``{component name: module}`` to pass to the pipeline's ``from_pretrained``."""
    import diffusers

    path, base = Path(path), Path(base)
    if not path.is_file():
        raise FileNotFoundError(f"Transformer file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".gguf", ".safetensors"):
        raise ValueError(f"{path.name}: a transformer file must be .gguf or .safetensors (pickle files are not loaded "
                         f"this way).")
    name, class_name = _denoiser_entry(base)
    cls = getattr(diffusers, class_name, None)
    if cls is None or not hasattr(cls, "from_single_file"):
        raise ValueError(f"{class_name} (the {name} of {base.name}) cannot be loaded from a single file in diffusers "
                         f"{diffusers.__version__}.")
    kwargs: dict[str, Any] = {"config": str(base), "subfolder": name, "torch_dtype": dtype,
                              "local_files_only": True}
    if suffix == ".gguf":
        kwargs["quantization_config"] = diffusers.GGUFQuantizationConfig(compute_dtype=dtype)
    progress(f"Loading the {name} from {path.name}" + (" (GGUF, stays quantized)" if suffix == ".gguf" else ""))
    try:
        module = cls.from_single_file(str(path), **kwargs)
    except Exception as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "gguf" in text.lower() and "install" in text.lower():
            raise RuntimeError(f"Loading {path.name} needs the gguf package (pip install gguf).") from exc
        raise ValueError(f"{path.name} does not fit {base.name}'s {name} ({class_name}): {text.rstrip('.')}.") from exc
    return {name: module}


def is_quantized_file(path: str) -> bool:
    return path.lower().endswith(".gguf")


__all__ = ["QUANTIZE_CHOICES", "LoadMeter", "load_denoiser_file", "module_bytes", "pipeline_bytes",
           "quantize_pipeline", "tensor_bytes"]
