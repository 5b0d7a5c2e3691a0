"""Studio's latent-space plugins.

* :class:`VectorLatentPlugin` (``latent-vae``) - the default: a vector-latent VAE (the Shapes
  VAE, ``assets/models/shapes-vae``).  Named and PCA direction sliders, conditional editing,
  encode-your-own-image, walks, direction fitting and edit-quality read-back.
* :class:`DiffusionLatentPlugin` (``latent-diffusion``) - any Stable Diffusion style diffusers
  pipeline: seed walks (slerp of the initial noise), prompt walks (interpolated text
  embeddings), prompt-pair directions ("red" -> "blue") with a strength, DDIM-inversion or
  img2img encoding of your own image.  SD3 and Flux.1 (flow-matching transformers) edit your
  image with FlowEdit instead (:mod:`flow_model`).

Both are :data:`Kind.LATENT`; every feature is a *mode* of ``run`` (see ``VAE_MODES`` and
``DIFFUSION_MODES``), so panels, the CLI and tests all go through the job engine.  Importing
this module is cheap: torch and diffusers load in :meth:`load`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from studio.plugin_api import API_VERSION, Kind, LoadOptions, ModelChoice, Param, ParamType
from studio.plugin_kit.assets import builtin_model_folder

VAE_MODES = ("edit", "info", "encode", "walk", "quality", "fit")
DIFFUSION_MODES = ("edit", "info", "encode", "walk", "discover", "quality")
_WALK = ("walk",)

VAE_PARAMETERS: tuple[Param, ...] = (
    Param("seed", ParamType.SEED, default=0, modes=("edit", "quality", "fit"),
          help="Base sample: a Shapes scene drawn from this seed, encoded (Shapes VAE), or a prior sample."),
    Param("image", ParamType.IMAGE_PATH, default=None, optional=True, modes=("edit", "encode"),
          help="Your own image, encoded with the VAE's encoder."),
    Param("latent", ParamType.LIST, default=(), modes=("edit",), advanced=True,
          help="An explicit base latent (from an earlier encode); wins over image and seed."),
    Param("edits", ParamType.LIST, default=(), modes=("edit",),
          help='Slider values: [["x", 10.0], ["hue", -0.2], ...] in each direction\'s units.'),
    Param("keep", ParamType.LIST, default=(), modes=("edit",),
          help="Directions to keep fixed: every edited direction is made orthogonal to theirs."),
    Param("direction_files", ParamType.LIST, default=(), advanced=True,
          help="Extra directions files (.json / .safetensors) to offer."),
    Param("from_image", ParamType.IMAGE_PATH, default=None, optional=True, modes=_WALK),
    Param("to_image", ParamType.IMAGE_PATH, default=None, optional=True, modes=_WALK),
    Param("from_seed", ParamType.INT, default=None, optional=True, minimum=0, maximum=2**32 - 1, modes=_WALK),
    Param("to_seed", ParamType.INT, default=None, optional=True, minimum=0, maximum=2**32 - 1, modes=_WALK),
    Param("from_latent", ParamType.LIST, default=(), modes=_WALK, advanced=True),
    Param("to_latent", ParamType.LIST, default=(), modes=_WALK, advanced=True),
    Param("frames", ParamType.INT, default=8, minimum=2, maximum=240, modes=_WALK),
    Param("interpolation", ParamType.CHOICE, default="lerp", choices=("lerp", "slerp"), modes=_WALK),
    Param("bases", ParamType.INT, default=6, minimum=1, maximum=64, modes=("quality",),
          help="How many base images each direction is swept from."),
    Param("sweep", ParamType.INT, default=9, minimum=3, maximum=33, modes=("quality",)),
    Param("directions", ParamType.LIST, default=(), modes=("quality",),
          help="Which directions to measure (empty: the named ones and the PCA ones)."),
    Param("fit_method", ParamType.CHOICE, default="boundary", choices=("boundary", "regression", "pca"),
          modes=("fit",)),
    Param("examples", ParamType.LIST, default=(), modes=("fit",),
          help='Labelled images: [["a.png", 1], ["b.png", 0], ...] (labels unused for PCA).'),
    Param("factor", ParamType.STR, default="", modes=("fit",),
          help="Shapes VAE only: learn from rendered scenes labelled with this factor "
               "(x, y, size, hue, background, circle, square, triangle)."),
    Param("count", ParamType.INT, default=256, minimum=4, maximum=20000, modes=("fit",)),
    Param("name", ParamType.STR, default="", modes=("fit",)),
    Param("output", ParamType.FILE_PATH, default=None, optional=True, modes=("fit",),
          help="Where to save the fitted directions (.json or .safetensors)."),
)

DIFFUSION_PARAMETERS: tuple[Param, ...] = (
    Param("prompt", ParamType.TEXT, default="", help="The prompt (walks: the start prompt)."),
    Param("negative_prompt", ParamType.TEXT, default=""),
    Param("seed", ParamType.SEED, default=0, help="Initial noise (walks: the start seed)."),
    Param("steps", ParamType.INT, default=20, minimum=1, maximum=150),
    Param("cfg_scale", ParamType.FLOAT, default=7.0, minimum=0.0, maximum=30.0, step=0.5, label="CFG scale"),
    Param("size", ParamType.SIZE, default=None, optional=True, multiple_of=8, maximum=4096,
          help="Width x height; empty: the model's native size."),
    Param("prompt_to", ParamType.TEXT, default="", modes=_WALK, help="End prompt (empty: same as the start)."),
    Param("seed_to", ParamType.INT, default=None, optional=True, minimum=0, maximum=2**32 - 1, modes=_WALK,
          help="End seed (empty: same as the start)."),
    Param("frames", ParamType.INT, default=8, minimum=2, maximum=240, modes=_WALK),
    Param("interpolation", ParamType.CHOICE, default="embeddings", choices=("embeddings", "predictions"),
          modes=_WALK, advanced=True,
          help="Prompt walks: lerp the two prompts' embeddings, or mix the model's two predictions per step."),
    Param("adaptive", ParamType.BOOL, default=True, modes=_WALK, label="Even steps",
          help="Add frames where the picture changes most, until no step is more than twice the mean."),
    Param("extra_frames", ParamType.INT, default=8, minimum=0, maximum=240, modes=_WALK, advanced=True,
          help="At most this many frames are added by the even-steps placement."),
    Param("pairs", ParamType.LIST, default=(), modes=("edit",),
          help='Prompt-pair directions: [["red", "blue", 1.0], ...] = (from, to, strength).'),
    Param("edits", ParamType.LIST, default=(), modes=("edit",),
          help="Directions from files (text-embedding space): [[name, amount], ...]."),
    Param("direction_files", ParamType.LIST, default=(), advanced=True),
    Param("concepts", ParamType.LIST, default=(), modes=("edit",),
          help='Your own image: concepts to add (strength > 0) or remove (< 0): [["glasses", 1.0], ...].'),
    Param("image", ParamType.IMAGE_PATH, default=None, optional=True, modes=("edit", "encode", "quality"),
          help="Your own image: inverted once (cached), then regenerated with the edits."),
    Param("encode_method", ParamType.CHOICE, default="ddpm-inversion",
          choices=("ddpm-inversion", "ddim-inversion", "img2img"), modes=("edit", "encode"),
          help="ddpm-inversion gives the image back exactly (up to the VAE) and keeps what an edit is not "
               "about; ddim-inversion and img2img are the older, looser ways."),
    Param("skip", ParamType.FLOAT, default=0.2, minimum=0.0, maximum=0.9, step=0.05,
          modes=("edit", "encode", "quality"),
          advanced=True, label="Keep layout",
          help="ddpm-inversion: share of the noisiest steps left out; higher keeps more of the layout."),
    Param("masks", ParamType.BOOL, default=True, modes=("edit", "quality"), label="Edit only where it matters",
          help="ddpm-inversion: text edits act only where the image changes with them (implicit masks)."),
    Param("layout", ParamType.CHOICE, default="auto", choices=("auto", "keep", "reshape"), modes=("edit", "quality"),
          label="Layout",
          help="ddpm-inversion text edits: keep = the outlines stay (colour, texture, background, a shape "
               "inside the old one); reshape = the edited object is redrawn in its box, its place and "
               "colour held (a shape that needs more room, e.g. circle -> square); auto = reshape an edit "
               "when the change the model predicts for your image is mostly outline."),
    Param("zoom", ParamType.BOOL, default=True, modes=("edit", "quality"), label="Zoom in on the object",
          help="ddpm-inversion text edits: the edited object is cut out with room around it, enlarged to the "
               "model's working size, edited there and blended back -- a model draws a shape well only at "
               "the sizes it learned.  Off: the whole picture at its size."),
    Param("warm_draft", ParamType.BOOL, default=True, modes=("encode",), advanced=True, label="Prepare drafts",
          help="ddpm-inversion: also invert for the quick previews shown while a slider is dragged, so the "
               "first drag needs no inversion of its own."),
    Param("draft", ParamType.BOOL, default=False, modes=("edit", "quality"), advanced=True,
          help="A quick preview with fewer steps (while a slider is dragged)."),
    Param("refine", ParamType.INT, default=30, minimum=0, maximum=200, modes=("edit", "encode", "quality"),
          advanced=True,
          label="Reconstruction refinement",
          help="ddpm-inversion: gradient steps that fit the latent to your image (0 = the VAE encoder alone)."),
    Param("img2img_strength", ParamType.FLOAT, default=0.6, minimum=0.05, maximum=1.0, step=0.05,
          modes=("edit", "encode"), label="SDEdit strength"),
    Param("source", ParamType.CHOICE, default="h-space", choices=("h-space", "text"), modes=("discover",),
          help="h-space: PCA of the UNet's bottleneck over sampled images; text: PCA of prompt-variation "
               "embeddings."),
    Param("components", ParamType.INT, default=6, minimum=1, maximum=32, modes=("discover",)),
    Param("count", ParamType.INT, default=32, minimum=4, maximum=1024, modes=("discover",),
          help="h-space: how many images are sampled."),
    Param("variations", ParamType.LIST, default=(), modes=("discover",),
          help="text: prompt variations (empty: common attributes appended to the prompt)."),
    Param("names", ParamType.LIST, default=(), modes=("discover",), help="Names for PC 1, PC 2, ..."),
    Param("output", ParamType.FILE_PATH, default=None, optional=True, modes=("discover",),
          help="Save the directions to this .json / .safetensors file."),
    Param("scenes", ParamType.INT, default=20, minimum=1, maximum=500, modes=("quality",),
          help="How many held-out drawn scenes each figure is measured on."),
    Param("measure", ParamType.LIST, default=(), modes=("quality",),
          help='Text edits to measure (default ["red->blue", "circle->square"]).'),
    Param("strengths", ParamType.LIST, default=(), modes=("quality",),
          help="The sweep (default 0, 0.25, 0.5, 1, 1.5); success is read at strength 1."),
    Param("sliders", ParamType.LIST, default=(), modes=("quality",),
          help='Sliders to measure: [["pair", "red->blue"], ["concept", "stripes"], ["direction", "pc1"]]; '
               "with an image, on that image; otherwise on drawn scenes (default: the directions files' "
               "directions)."),
    Param("scorer", ParamType.CHOICE, default="auto", choices=("auto", "shapes", "pixels"), modes=("quality",),
          advanced=True, help="Read results back with ShapeEval (auto: on the built-in Shapes model only) or "
                              "measure pixel change alone."),
    Param("prompted", ParamType.BOOL, default=True, modes=("quality",),
          help="Give each scene's caption as the prompt (off: no prompt at all)."),
    Param("save_direction", ParamType.FILE_PATH, default=None, optional=True, modes=("edit",), advanced=True,
          help="Also save the prompt-pair direction(s) to this .json / .safetensors file."),
)


def default_vae_folder() -> Path:
    return builtin_model_folder("shapes-vae")


def default_sd_folder() -> Path:
    return builtin_model_folder("shapes-sd")


def is_vector_vae_folder(path: str | Path) -> bool:
    p = Path(path)
    try:
        cfg = json.loads((p / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (p / "model.safetensors").is_file() and (cfg.get("model_type") == "shapes-vector-vae"
                                                     or "latent_dim" in cfg)


class VectorLatentPlugin:
    id = "latent-vae"
    label = "Vector VAE latents"
    kind = Kind.LATENT
    api_version = API_VERSION

    def parameters(self) -> Sequence[Param]:
        return VAE_PARAMETERS

    def modes(self) -> Sequence[str]:
        return VAE_MODES

    def models(self) -> Sequence[ModelChoice]:
        folder = default_vae_folder()
        if is_vector_vae_folder(folder):
            return [ModelChoice(str(folder), "Shapes VAE (built in)",
                                "A 16-dimensional VAE of the Shapes world with named directions.")]
        return []

    def load(self, source: str, options: LoadOptions, progress: Callable[[str], None]):
        folder = Path(str(source or "")).expanduser()
        if not str(source or "").strip():
            raise ValueError("No model given: choose a vector-VAE folder (config.json + model.safetensors).")
        if not folder.is_dir():
            raise FileNotFoundError(f"Model not found: {source} (no such folder).")
        if not is_vector_vae_folder(folder):
            raise ValueError(f"{folder.name} is not a vector-VAE folder: it needs config.json with latent_dim "
                             f"and model.safetensors.")
        progress("Importing torch")
        from .vae_model import VectorLatentModel

        return VectorLatentModel.load(folder, options, progress)


class DiffusionLatentPlugin:
    id = "latent-diffusion"
    label = "Diffusion latents"
    kind = Kind.LATENT
    api_version = API_VERSION

    def parameters(self) -> Sequence[Param]:
        return DIFFUSION_PARAMETERS

    def modes(self) -> Sequence[str]:
        return DIFFUSION_MODES

    def models(self) -> Sequence[ModelChoice]:
        folder = default_sd_folder()
        if (folder / "model_index.json").is_file():
            return [ModelChoice(str(folder), "Shapes SD (built in)",
                                "The small Stable Diffusion model trained on the Shapes world.")]
        return []

    def load(self, source: str, options: LoadOptions, progress: Callable[[str], None]):
        from studio.plugin_kit.diffusion import sources

        resolved = sources.resolve(source, options.allow_pickle)  # clear errors before heavy imports
        progress("Importing torch and diffusers")
        from .diffusion_model import DiffusionLatentModel

        return DiffusionLatentModel.load(source, resolved, options, progress)


__all__ = ["VectorLatentPlugin", "DiffusionLatentPlugin", "VAE_MODES", "DIFFUSION_MODES", "default_vae_folder",
           "default_sd_folder", "is_vector_vae_folder"]
