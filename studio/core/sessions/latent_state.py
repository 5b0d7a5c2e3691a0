"""What the Latent panel shows, as plain data: a direction's slider, a walk's two ends, and the
results of the panel's jobs (preview, reconstruction, walk frames, measured quality)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from studio.core.latent import directions as dirfile

#: the slider group that is folded away under "Advanced" in the panel
ADVANCED_GROUP = "Unadjusted directions"


@dataclass
class DirectionView:
    name: str
    label: str
    kind: str
    scale: float
    range: tuple[float, float]
    units: str = ""
    score: float | None = None
    notes: str = ""
    vector: np.ndarray | None = None  # known for small latents (VAE); None for text embeddings
    source: str = "model"  # model | file

    @property
    def group(self) -> str:
        if self.kind == "pca":
            return "Unsupervised (PCA)"
        if self.kind == "boundary" and self.name.startswith("boundary_"):
            # The plain normal of an attribute's boundary: it moves that attribute but also drags
            # correlated ones along (the named sliders correct for that).
            return ADVANCED_GROUP
        if self.source == "file" or ":" in self.name:
            return "From files"
        return "Named"


@dataclass
class WalkSpec:
    frames: int = 8
    from_seed: int | None = None
    to_seed: int | None = None
    from_image: str | None = None
    to_image: str | None = None
    from_prompt: str = ""
    to_prompt: str = ""
    interpolation: str = "lerp"

    @classmethod
    def from_text(cls, start: str, end: str, frames: int, prompts: bool) -> WalkSpec:
        """A walk typed as two ends: a seed ("7" or "seed:7"), an image path or (``prompts``) a prompt."""
        spec = cls(frames=frames)
        for side, text in (("from", start.strip()), ("to", end.strip())):
            if not text:
                continue
            seed_text = text[5:] if text.lower().startswith("seed:") else text
            if seed_text.isdigit():
                setattr(spec, f"{side}_seed", int(seed_text))
            elif prompts:
                setattr(spec, f"{side}_prompt", text)
            else:
                setattr(spec, f"{side}_image", text)
        return spec


@dataclass
class LatentState:
    info: dict[str, Any] = field(default_factory=dict)
    preview: Any = None  # PIL image
    preview_latent: list[float] | None = None
    original: Any = None  # PIL, the dropped image as the model saw it
    reconstruction: Any = None
    psnr: float | None = None
    walk_frames: list[Any] = field(default_factory=list)
    walk_smoothness: dict[str, Any] = field(default_factory=dict)
    quality: dict[str, Any] = field(default_factory=dict)
    fitted: dirfile.DirectionSet | None = None
    conditional: dict[str, Any] = field(default_factory=dict)
    error: str = ""
