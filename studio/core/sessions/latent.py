"""The Latent panel's view-model: sliders, kept attributes, your own image, walks, directions.

Plain Python (no Qt, no torch).  Every action queues a job on the engine through the chosen
:data:`Kind.LATENT` plugin; the panel hands each finished job back to :meth:`LatentSession.handle`,
which updates the state the panel shows.  Slider previews are *interactive* jobs in one lane,
so a newer slider value replaces a queued older one and only the newest is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.context import StudioContext
from studio.core.jobs import Job, JobSpec, JobState
from studio.core.latent import directions as dirfile
from studio.core.latent import media, vectors
from studio.plugin_api import Kind, ModelChoice, ParamError, Result

PREVIEW_LANE = "latent-preview"
DEFAULT_PLUGIN = "latent-vae"


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
            return "Raw boundary normals"
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


@dataclass
class LatentState:
    info: dict = field(default_factory=dict)
    preview: Any = None  # PIL image
    preview_latent: list | None = None
    original: Any = None  # PIL, the dropped image as the model saw it
    reconstruction: Any = None
    psnr: float | None = None
    walk_frames: list = field(default_factory=list)
    walk_smoothness: dict = field(default_factory=dict)
    quality: dict = field(default_factory=dict)
    fitted: dirfile.DirectionSet | None = None
    conditional: dict = field(default_factory=dict)
    error: str = ""


class LatentSession:
    kind = Kind.LATENT

    def __init__(self, context: StudioContext, plugin_id: str | None = None):
        self.context = context
        self.plugin = None
        self.model = ""
        self.directions: list[DirectionView] = []
        self.amounts: dict[str, float] = {}
        self.keep: set[str] = set()
        self.seed = 0
        self.base_latent: list[float] | None = None
        self.image_path: str | None = None
        self.direction_files: list[str] = []
        self.pairs: list[list] = []  # diffusion: [from, to, strength]
        self.prompt = "a red circle on a black background"
        self.negative_prompt = ""
        self.steps = 20
        self.cfg_scale = 7.0
        self.encode_method = "ddim-inversion"
        self.state = LatentState()
        self._jobs: dict[str, str] = {}  # job id -> purpose
        plugins = self.plugins()
        ids = [p.id for p in plugins]
        chosen = plugin_id or (DEFAULT_PLUGIN if DEFAULT_PLUGIN in ids else (ids[0] if ids else None))
        if chosen:
            self.set_plugin(chosen)

    # ------------------------------------------------------------------------------ choices
    def plugins(self) -> list:
        return self.context.registry.plugins(Kind.LATENT)

    def set_plugin(self, plugin_id: str) -> None:
        self.plugin = self.context.registry.get(plugin_id)
        models = self.models()
        self.model = models[0].source if models else ""
        self._reset_model_state()

    def models(self) -> list[ModelChoice]:
        if self.plugin is None:
            return []
        offered = list(self.plugin.models())
        known = {m.source for m in offered}
        recent = self.context.settings.recent_models.get(self.plugin.id, [])
        return offered + [ModelChoice(source=s, label=Path(s).name or s) for s in recent if s not in known]

    def set_model(self, source: str) -> None:
        source = source.strip()
        if source != self.model:
            self.model = source
            self._reset_model_state()

    def _reset_model_state(self) -> None:
        self.directions, self.amounts, self.keep = [], {}, set()
        self.base_latent, self.image_path = None, None
        self.state = LatentState()

    @property
    def is_diffusion(self) -> bool:
        return self.plugin is not None and "diffusion" in self.plugin.id

    # ------------------------------------------------------------------------------ jobs
    def _submit(self, purpose: str, mode: str, request: dict, interactive: bool = False) -> Job:
        if self.plugin is None:
            raise ParamError("No latent plugin is available; see the Plugins list for why.")
        if not self.model:
            raise ParamError("Choose a model first (a vector-VAE folder or a diffusers pipeline).")
        spec = JobSpec(plugin_id=self.plugin.id, model=self.model, mode=mode, request=request, save=False,
                       options=self.context.load_options(), interactive=interactive,
                       lane_key=f"{PREVIEW_LANE}:{purpose}" if interactive else "")
        job = self.context.engine.submit(spec)
        self._jobs[job.id] = purpose
        if purpose == "info":
            self.context.settings.remember_model(self.plugin.id, self.model)
        return job

    def _names(self) -> set[str]:
        return {d.name for d in self.directions}

    def load_info(self) -> Job:
        return self._submit("info", "info", {"direction_files": list(self.direction_files)})

    def edit_request(self) -> dict:
        edits = [[n, float(a)] for n, a in self.amounts.items() if a]
        files = list(self.direction_files)
        if self.is_diffusion:
            req = {"prompt": self.prompt, "negative_prompt": self.negative_prompt, "seed": self.seed,
                   "steps": self.steps, "cfg_scale": self.cfg_scale, "edits": edits, "direction_files": files,
                   "pairs": [list(p) for p in self.pairs if p[0] and p[1] and p[2]]}
            if self.image_path:
                req.update(image=self.image_path, encode_method=self.encode_method)
            return req
        req = {"seed": self.seed, "edits": edits, "keep": sorted(self.keep), "direction_files": files}
        if self.base_latent is not None:
            req["latent"] = list(self.base_latent)
        return req

    def preview(self) -> Job:
        """Queue an interactive preview of the current sliders (newest wins)."""
        return self._submit("preview", "edit", self.edit_request(), interactive=True)

    def set_amount(self, name: str, amount: float) -> None:
        if name not in self._names():
            raise ParamError(f"Unknown direction {name!r}.")
        self.amounts[name] = float(amount)

    def reset_amounts(self) -> None:
        self.amounts = {}

    def set_keep(self, name: str, kept: bool) -> None:
        if kept:
            self.keep.add(name)
        else:
            self.keep.discard(name)

    def new_sample(self, seed: int) -> None:
        self.seed = int(seed)
        self.base_latent = None
        self.image_path = None
        self.state.original = self.state.reconstruction = None
        self.state.psnr = None

    def encode(self, path: str) -> Job:
        path = str(path)
        if not Path(path).is_file():
            raise ParamError(f"Image not found: {path}")
        request: dict = {"image": path}
        if self.is_diffusion:
            request.update(prompt=self.prompt, negative_prompt=self.negative_prompt, steps=self.steps,
                           cfg_scale=self.cfg_scale, seed=self.seed, encode_method=self.encode_method)
        job = self._submit("encode", "encode", request)
        self.image_path = path
        return job

    def walk(self, spec: WalkSpec) -> Job:
        if self.is_diffusion:
            request = {"prompt": spec.from_prompt or self.prompt, "prompt_to": spec.to_prompt,
                       "negative_prompt": self.negative_prompt, "seed": spec.from_seed if spec.from_seed is not None
                       else self.seed, "seed_to": spec.to_seed, "frames": spec.frames, "steps": self.steps,
                       "cfg_scale": self.cfg_scale}
        else:
            request = {"frames": spec.frames, "interpolation": spec.interpolation,
                       "direction_files": list(self.direction_files)}
            for side in ("from", "to"):
                image, seed = getattr(spec, f"{side}_image"), getattr(spec, f"{side}_seed")
                if image:
                    request[f"{side}_image"] = image
                elif seed is not None:
                    request[f"{side}_seed"] = seed
                elif side == "from" and self.base_latent is not None:
                    request["from_latent"] = list(self.base_latent)
                elif side == "from":
                    request["from_seed"] = self.seed
                else:
                    raise ParamError("Choose where the walk ends: a seed or an image.")
        return self._submit("walk", "walk", request)

    def measure_quality(self, bases: int = 6, sweep: int = 9, names: list[str] | None = None) -> Job:
        if not self.state.info.get("quality_available"):
            raise ParamError("Edit quality is read back with the Shapes scorer; this model has no scorer.")
        return self._submit("quality", "quality", {"bases": bases, "sweep": sweep, "directions": list(names or []),
                                                   "direction_files": list(self.direction_files)})

    def fit(self, method: str, name: str, examples: list | None = None, factor: str = "",
            count: int = 256) -> Job:
        request = {"fit_method": method, "name": name, "examples": [list(e) for e in (examples or [])],
                   "factor": factor, "count": count, "direction_files": list(self.direction_files)}
        return self._submit("fit", "fit", request)

    def walk_export(self, path: str | Path, fps: float = 8.0) -> list[Path]:
        if not self.state.walk_frames:
            raise ParamError("Make a walk first.")
        try:
            return media.export(self.state.walk_frames, path, fps)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ParamError(str(exc)) from None

    # ------------------------------------------------------------------------------ directions files
    def directions_dir(self) -> Path:
        from studio.core.settings import studio_home

        folder = studio_home() / "latent-directions"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def add_direction_file(self, path: str | Path) -> Job:
        """Offer a directions file's sliders (checked here, loaded by the plugin)."""
        try:
            dset = dirfile.load(path)
        except dirfile.DirectionFileError as exc:
            raise ParamError(str(exc)) from None
        shape = tuple(self.state.info.get("latent_shape") or ())
        if shape and tuple(dset.latent_shape) != shape:
            raise ParamError(f"{Path(path).name} holds directions of shape {list(dset.latent_shape)}; this model's "
                             f"latents are {list(shape)}.")
        if str(path) not in self.direction_files:
            self.direction_files.append(str(path))
        return self.load_info()

    def save_directions(self, path: str | Path, names: list[str] | None = None) -> Path:
        """Save the chosen (default: all) directions with known vectors to .json / .safetensors."""
        chosen = [d for d in self.directions if d.vector is not None and (names is None or d.name in names)]
        if not chosen:
            raise ParamError("No directions with vectors to save (text-embedding directions are saved by the "
                             "plugin when you edit with a prompt pair).")
        dset = dirfile.DirectionSet(
            [dirfile.Direction(name=d.name, vector=d.vector, kind=d.kind, label=d.label, scale=d.scale,
                               range=d.range, units=d.units, score=d.score, notes=d.notes) for d in chosen],
            self.state.info.get("space", "vae-latent"), str(self.state.info.get("model", "")),
            tuple(self.state.info.get("latent_shape") or ()))
        try:
            return dirfile.save(dset, path)
        except (dirfile.DirectionFileError, OSError) as exc:
            raise ParamError(str(exc)) from None

    # ------------------------------------------------------------------------------ cosines
    def vectors(self) -> dict[str, np.ndarray]:
        return {d.name: d.vector for d in self.directions if d.vector is not None}

    def cosine_rows(self) -> list[tuple[str, str, float, float]]:
        """For every moved slider and every kept direction: (edited, kept, cos before, cos after
        the InterFaceGAN projection).  After is ~0 by construction."""
        vecs = self.vectors()
        rows = []
        kept = [k for k in sorted(self.keep) if k in vecs]
        for name, amount in self.amounts.items():
            if not amount or name not in vecs:
                continue
            others = [k for k in kept if k != name]
            after_vec = vecs[name]
            if others:
                try:
                    after_vec = vectors.conditional_direction(vecs[name], [vecs[k] for k in others])
                except ValueError:
                    after_vec = np.zeros_like(vecs[name])
            for k in others:
                rows.append((name, k, vectors.cosine(vecs[name], vecs[k]), vectors.cosine(after_vec, vecs[k])))
        return rows

    def cosine_matrix(self, names: list[str] | None = None) -> tuple[list[str], np.ndarray]:
        vecs = self.vectors()
        names = [n for n in (names or list(vecs)) if n in vecs]
        return names, vectors.cosine_table({n: vecs[n] for n in names})

    # ------------------------------------------------------------------------------ results
    def purpose(self, job: Job) -> str | None:
        return self._jobs.get(job.id)

    def handle(self, job: Job, result: Result | None = None) -> str | None:
        """Apply a finished job of this session; returns its purpose (None if not ours)."""
        purpose = self._jobs.pop(job.id, None)
        if purpose is None:
            return None
        if job.state is JobState.FAILED:
            self.state.error = job.failure.message if job.failure else job.message
            if purpose == "encode":
                self.image_path = None
            return purpose
        result = result or job.result
        if result is None:
            return purpose
        info = dict(result.info)
        images = [a.image for a in result.artifacts if a.image is not None]
        self.state.error = ""
        if purpose == "info":
            self.state.info = info
            self._set_directions(info.get("directions", []))
        elif purpose == "preview":
            self.state.preview = images[0] if images else None
            self.state.preview_latent = info.get("latent")
            self.state.conditional = info.get("conditional", {})
        elif purpose == "encode":
            self.state.original = info.get("original")
            self.state.reconstruction = images[0] if images else None
            self.state.psnr = info.get("psnr")
            self.state.preview = self.state.reconstruction
            if info.get("latent") is not None:
                self.base_latent = list(info["latent"])
        elif purpose == "walk":
            self.state.walk_frames = images
            self.state.walk_smoothness = dict(info.get("smoothness", {}))
        elif purpose == "quality":
            self.state.quality = dict(info.get("quality", {}))
        elif purpose == "fit":
            self.state.fitted = dirfile.from_json(info["directions_json"]) if info.get("directions_json") else None
            if info.get("saved"):
                self.direction_files.append(str(info["saved"]))
        return purpose

    def _set_directions(self, entries: list[dict]) -> None:
        views = []
        for e in entries:
            vec = e.get("vector")
            views.append(DirectionView(
                name=e["name"], label=e.get("label") or e["name"], kind=e.get("kind", "custom"),
                scale=float(e.get("scale", 1.0)), range=tuple(e.get("range", (-3, 3))), units=e.get("units", ""),
                score=e.get("score"), notes=e.get("notes", ""),
                vector=np.asarray(vec, dtype=np.float64) if vec is not None else None,
                source="file" if ":" in e["name"] else "model"))
        self.directions = views
        names = self._names()
        self.amounts = {k: v for k, v in self.amounts.items() if k in names}
        self.keep = {k for k in self.keep if k in names}

    def keep_fitted(self, name_prefix: str = "") -> Path | None:
        """Save the last fitted directions under the studio home and offer them as sliders."""
        if self.state.fitted is None:
            return None
        stem = name_prefix or self.state.fitted.directions[0].name
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:60] or "fitted"
        path = self.directions_dir() / f"{safe}.json"
        dirfile.save(self.state.fitted, path)
        if str(path) not in self.direction_files:
            self.direction_files.append(str(path))
        return path
