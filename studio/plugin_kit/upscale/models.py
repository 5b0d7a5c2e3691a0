"""Load an upscaler file and run it (imports torch; call from a loaded model or a command).

spandrel, the library artists' tools use for these architectures (ESRGAN, Real-ESRGAN, SwinIR, DAT,
HAT, ...), is used when it can be imported.  It imports torchvision, which on this project's CPU torch
build cannot be installed from PyPI beside it; without spandrel the ESRGAN family (RRDBNet, the most
common upscalers) still loads through Studio's own :mod:`.rrdb`, and other architectures get a sentence
saying what to install.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from . import files, lanczos, rrdb, tiles


@dataclass
class Upscaler:
    name: str
    scale: int  # the model's own factor
    net: Callable[[torch.Tensor], torch.Tensor]
    library: str  # "spandrel" or "studio-rrdb"
    device: str = "cpu"
    dtype: torch.dtype = torch.float32
    memory_bytes: int = 0


def read_state_dict(path: Path, allow_pickle: bool) -> dict[str, torch.Tensor]:
    path = files.check(path, allow_pickle)
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(path)))
    try:  # weights_only first: plain tensors need no code to run
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - retried with full unpickling, which the user allowed
        state = torch.load(str(path), map_location="cpu", weights_only=False)
    for key in ("params_ema", "params", "state_dict", "model"):  # BasicSR / Lightning wrappers
        if isinstance(state, Mapping) and key in state and isinstance(state[key], Mapping):
            state = state[key]
    if not isinstance(state, Mapping):
        raise files.UpscalerFileError(f"{path.name} does not hold a state dict of tensors.")
    return dict(state)


def spandrel_available() -> str | None:
    """None when spandrel imports, else why not (one line)."""
    try:
        import spandrel  # noqa: F401 - probing
    except Exception as exc:  # noqa: BLE001 - ImportError, or torchvision's operator errors
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return None


def load(path: str | Path, *, allow_pickle: bool = False, device: str = "cpu") -> Upscaler:
    path = Path(path)
    state = read_state_dict(path, allow_pickle)
    why_not = spandrel_available()
    if why_not is None:
        import spandrel

        try:
            descriptor = spandrel.ModelLoader(device=torch.device(device)).load_from_state_dict(state).eval()
        except Exception as exc:  # noqa: BLE001 - e.g. an RRDBNet with growth other than 32: ours reads it
            why_not = f"spandrel could not read it: {str(exc).splitlines()[0][:200]}"
        else:
            size = sum(p.numel() * p.element_size() for p in descriptor.model.parameters())
            return Upscaler(path.stem, int(descriptor.scale), descriptor, "spandrel", device, memory_bytes=size)
    if rrdb.is_rrdb(state):
        net = rrdb.from_state_dict(state).to(device)
        size = sum(p.numel() * p.element_size() for p in net.parameters())
        return Upscaler(path.stem, net.scale, net, "studio-rrdb", device, memory_bytes=size)
    raise files.UpscalerFileError(
        f"{path.name} is not an ESRGAN-family (RRDBNet) model, and other architectures need spandrel ({why_not}); "
        f"install spandrel with a torchvision that matches your torch.")


def upscale(upscaler: Upscaler | None, image: Image.Image, scale: float, *, tile: int = 128,
            on_tile: Callable[[int, int], None] | None = None) -> tuple[Image.Image, dict[str, Any]]:
    """``image`` enlarged ``scale`` times: the model's passes (tiled), then Lanczos to the exact size.

    Returns the image and what was applied (for the metadata)."""
    target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if upscaler is None:
        return lanczos.resize_to(image, target), {"upscaler": lanczos.NAME, "upscale": scale}
    current = image
    passes = 0
    while current.width < target[0] or current.height < target[1] or passes == 0:
        current = tiles.run_tiled(upscaler.net, current, upscaler.scale, tile=tile, device=upscaler.device,
                                  dtype=upscaler.dtype, on_tile=on_tile)
        passes += 1
        if upscaler.scale <= 1:
            break
    return lanczos.resize_to(current, target), {"upscaler": upscaler.name, "upscale": scale,
                                                "upscaler_passes": passes, "upscaler_library": upscaler.library}


__all__ = ["Upscaler", "load", "read_state_dict", "spandrel_available", "upscale"]
