"""Turning exceptions from plugins into one sentence a person can act on."""

from __future__ import annotations

from studio.plugin_api import ParamError


def is_out_of_memory(exc: BaseException) -> bool:
    # Matched by name: the core must not import torch to recognise torch's error.
    name = type(exc).__name__
    text = str(exc).lower()
    return name in ("OutOfMemoryError", "MemoryError") or "out of memory" in text


def describe(exc: BaseException) -> str:
    """A human sentence for ``exc``; the traceback goes to the log, not to the user."""
    if isinstance(exc, ParamError):
        return str(exc)
    if is_out_of_memory(exc):
        return ("Out of memory. Try a smaller size or batch, enable attention slicing or VAE tiling, "
                "or model CPU offload (Settings), or close other models.")
    if isinstance(exc, FileNotFoundError):
        missing = exc.filename or str(exc)
        return f"File not found: {missing}"
    message = str(exc).strip() or type(exc).__name__
    first_line = message.splitlines()[0]
    return first_line if first_line.endswith(".") else first_line + "."
