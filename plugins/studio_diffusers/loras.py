"""LoRA adapters on a loaded pipeline: load once per file, weight per request."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from studio.plugin_api import ParamError
from studio.plugin_kit.sources import pickle_refusal


def parse_entries(entries: Sequence[Any], allow_pickle: bool) -> list[tuple[Path, float]]:
    """Validate the request's ``loras`` list into (resolved path, weight) pairs."""
    parsed: list[tuple[Path, float]] = []
    for entry in entries or ():
        if isinstance(entry, (str, Path)):
            entry = {"path": str(entry)}
        if not isinstance(entry, Mapping) or not entry.get("path"):
            raise ParamError(f'Each LoRA must look like {{"path": "file.safetensors", "weight": 0.8}} '
                             f"(got {entry!r}).")
        path = Path(str(entry["path"])).expanduser()
        try:
            weight = float(entry.get("weight", 1.0))
        except (TypeError, ValueError):
            raise ParamError(f"LoRA weight for {path.name} must be a number (got {entry.get('weight')!r}).") from None
        if not path.is_file():
            raise ParamError(f"LoRA file not found: {path}")
        if path.suffix.lower() != ".safetensors" and not allow_pickle:
            raise ParamError(pickle_refusal(path, "LoRA file"))
        parsed.append((path.resolve(), weight))
    return parsed


class LoraSet:
    """Tracks which LoRA files are loaded into ``pipe`` as which adapter names."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.adapters: dict[Path, str] = {}  # resolved file -> adapter name
        self._active: list[tuple[str, float]] | None = None
        self._counter = 0

    def apply(self, wanted: list[tuple[Path, float]]) -> list[str]:
        """Make exactly ``wanted`` active with their weights; returns log lines."""
        logs: list[str] = []
        wanted_paths = {path for path, _ in wanted}
        stale = [name for path, name in self.adapters.items() if path not in wanted_paths]
        if stale:
            self.pipe.delete_adapters(stale)
            self.adapters = {p: n for p, n in self.adapters.items() if n not in stale}
            self._active = None
            logs.append(f"Unloaded LoRA adapter(s): {', '.join(stale)}")
        for path, _ in wanted:
            if path not in self.adapters:
                name = self._new_name(path)
                try:
                    self.pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=name)
                except ImportError as exc:
                    raise RuntimeError("LoRA support needs the 'peft' package (pip install peft).") from exc
                except (ValueError, KeyError, RuntimeError, OSError) as exc:
                    raise ParamError(f"Could not apply the LoRA {path.name} to this model: {exc}") from exc
                self.adapters[path] = name
                logs.append(f"Loaded LoRA {path.name}")
        active = [(self.adapters[path], weight) for path, weight in wanted]
        if active and active != self._active:
            self.pipe.set_adapters([n for n, _ in active], adapter_weights=[w for _, w in active])
        self._active = active or None
        return logs

    def _new_name(self, path: Path) -> str:
        self._counter += 1
        return f"lora{self._counter}_" + re.sub(r"\W", "_", path.stem)[:40]
