"""Device and dtype choice shared by plugins (the one policy).

This module imports torch, so only plugins' load paths import it — never the core, never
the Qt layer.  One policy everywhere: "auto" means CUDA, then Apple's MPS, then the CPU;
a device that is asked for but missing is an error with advice, not a silent fallback.
"""

from __future__ import annotations

import torch

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def machine_devices() -> list[str]:
    """The device names this machine can use, "auto" first (what an error lists)."""
    found = ["auto", "cpu"]
    if torch.cuda.is_available():
        found += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if mps_available():
        found.append("mps")
    return found


def pick_device(requested: str) -> str:
    requested = (requested or "auto").strip().lower()
    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if mps_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("CUDA was requested but this torch build sees no CUDA GPU; choose 'auto' or 'cpu'.")
    if requested == "mps" and not mps_available():
        raise RuntimeError("MPS was requested but it is not available on this machine; choose 'auto' or 'cpu'.")
    if requested not in machine_devices():  # "tpu", "cuda:7" on a one-GPU machine: not torch's list of 20
        raise RuntimeError(f"Device {requested!r} is not one this machine has: {', '.join(machine_devices())}.")
    return requested


def dtype_named(requested: str) -> torch.dtype:
    """The dtype for an explicit name (not "auto")."""
    name = (requested or "").lower()
    if name not in DTYPES:
        raise ValueError(f"Unknown dtype {requested!r}: use auto, float32, float16 or bfloat16.")
    return DTYPES[name]
