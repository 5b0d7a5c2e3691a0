"""What a model load cost, in words: the figures of ``ModelLoaded.memory`` (the plugin's
``ReportsLoadMemory``: ``peak_rss_bytes``, ``peak_vram_bytes``, ``rss_delta_bytes``,
``weights_bytes``, ``quantized_saved_bytes``, ``seconds``) for the status bar and its tooltip."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB")


def human_bytes(count: float) -> str:
    """``1536`` -> ``1.5 KiB``; binary units, three significant digits at most."""
    value, unit = float(count), 0
    while abs(value) >= 1024 and unit < len(_UNITS) - 1:
        value /= 1024
        unit += 1
    if unit == 0:
        return f"{int(value)} bytes"
    return f"{value:.0f} {_UNITS[unit]}" if abs(value) >= 100 else f"{value:.3g} {_UNITS[unit]}"


def _number(memory: Mapping[str, Any], key: str) -> float | None:
    value = memory.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def load_memory_summary(memory: Mapping[str, Any]) -> str:
    """The short line: ``peak RSS 1.2 GiB · VRAM 3.4 GiB`` ("" when no peak was measured)."""
    parts = []
    rss = _number(memory, "peak_rss_bytes")
    if rss:
        parts.append(f"peak RSS {human_bytes(rss)}")
    vram = _number(memory, "peak_vram_bytes")
    if vram:
        parts.append(f"VRAM {human_bytes(vram)}")
    return " · ".join(parts)


def load_memory_details(memory: Mapping[str, Any]) -> str:
    """Every figure the plugin measured, one per line (the tooltip)."""
    labels = (("peak_rss_bytes", "Peak RSS during the load"), ("rss_delta_bytes", "RSS added by the load"),
              ("peak_vram_bytes", "Peak VRAM during the load"), ("weights_bytes", "Weights in memory"),
              ("quantized_saved_bytes", "Saved by quantization"))
    lines = [f"{label}: {human_bytes(value)}" for key, label in labels
             if (value := _number(memory, key)) is not None]
    seconds = _number(memory, "seconds")
    if seconds is not None:
        lines.append(f"Load time: {seconds:.1f} s")
    for key in ("quantization", "transformer_file"):
        if memory.get(key):
            lines.append(f"{key.replace('_', ' ').capitalize()}: {memory[key]}")
    return "\n".join(lines)
