"""The Shapes world, as plugins reach it: the procedural world, its captions, the ShapeEval scorer.

Why a door here instead of moving :mod:`studio.shapes` into the kit: ``studio.shapes`` is the
project's synthetic *data set and evaluator* — the training scripts, the model cards, the
benchmarks and the tests use it as much as the latent plugin does — and it imports nothing
from ``studio``, so it sits at the bottom of the layers, beside :mod:`studio.plugin_api`.
Plugins import only the plugin API and the kit; this module is their one way in, so the rule
holds and a later move of ``studio.shapes`` only changes these lines.

Importing this module costs numpy and PIL; :func:`load_vector_vae` imports torch when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.shapes import captions, scorer, suite, world


def load_vector_vae(folder: str | Path, device: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """The vector-latent VAE in ``folder`` (eval mode) and its direction tensors (imports torch)."""
    from studio.shapes import vector_vae

    loaded: tuple[Any, dict[str, Any]] = vector_vae.load_vector_vae(folder, device=device)
    return loaded


def load_directions_meta(folder: str | Path) -> dict[str, Any]:
    """``directions.json`` beside a vector VAE ({} when there is none)."""
    from studio.shapes import vector_vae

    meta: dict[str, Any] = vector_vae.load_directions_meta(folder)
    return meta


__all__ = ["world", "captions", "scorer", "suite", "load_vector_vae", "load_directions_meta"]
