"""The Shapes world: a tiny synthetic world of flat coloured shapes.

Pure numpy/PIL (no torch, no Qt):

* :mod:`studio.shapes.world`    factors, deterministic sampling, renderer
* :mod:`studio.shapes.captions` natural, varied captions from a scene
* :mod:`studio.shapes.scorer`   ShapeEval: read an image back into objects
* :mod:`studio.shapes.suite`    GenEval-like prompt suite and its scoring

``studio.shapes.vector_vae`` (torch) defines the vector-latent VAE; it is not
imported here.
"""
from . import captions, scorer, suite, world
from .captions import canonical_caption, caption
from .scorer import read_image
from .world import COLORS, SHAPES, Scene, render, sample_scene

__all__ = ["world", "captions", "scorer", "suite", "render", "sample_scene", "Scene", "caption",
           "canonical_caption", "read_image", "SHAPES", "COLORS"]
