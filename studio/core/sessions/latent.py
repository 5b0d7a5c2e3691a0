"""The Latent panel's view-model: sliders, kept attributes, your own image, walks, directions.

Plain Python (no Qt, no torch).  Every action queues a job on the engine through the chosen
:data:`Kind.LATENT` plugin (each feature is one of its run modes); engine events come back
through :meth:`PanelSession.handle`, and :meth:`LatentSession.on_result` files each result
where the panel looks for it, then announces it with ``changed(name)``:

=================  ==========================================================================
``"directions"``   the model's directions (``directions``, ``state.info``) after a load
``"edited"``       a slider preview (``state.preview``, ``state.preview_latent``, cosines)
``"encoded"``      your image as the model sees it (``state.original``, ``state.reconstruction``,
                   ``state.psnr``); the sliders now edit it
``"walk"``         the frames of a walk and their smoothness
``"quality"``      the measured selectivity / monotonicity per direction
``"fitted"``       a newly found direction (kept as a file and offered as a slider)
=================  ==========================================================================

``job_finished(purpose, succeeded)`` fires after each job of the panel ends (not when superseded).
Slider previews are *interactive* jobs in one lane, so a newer slider value replaces a queued
older one and only the newest is drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from psygnal import Signal

from studio.core.context import StudioContext
from studio.core.jobs import Failed, Job, JobSpec, JobState
from studio.core.latent import directions as dirfile
from studio.core.latent import media, vectors
from studio.core.sessions.base import PanelSession
from studio.core.sessions.latent_state import ADVANCED_GROUP, DirectionView, LatentState, WalkSpec
from studio.plugin_api import Kind, ParamError, Result

__all__ = ["ADVANCED_GROUP", "DirectionView", "LatentSession", "LatentState", "WalkSpec"]

PREVIEW_LANE = "latent-preview"
DEFAULT_PLUGIN = "latent-vae"
#: the prompt a diffusion pipeline starts from (an empty one would draw unconditionally)
STARTING_PROMPT = "a red circle on a black background"


class LatentSession(PanelSession):
    kind = Kind.LATENT

    #: a job of this panel ended (done, interrupted or failed; not superseded): (purpose, succeeded)
    job_finished = Signal(str, bool)

    def __init__(self, context: StudioContext, plugin_id: str | None = None) -> None:
        ids = [p.id for p in context.registry.plugins(Kind.LATENT)]
        chosen = plugin_id or (DEFAULT_PLUGIN if DEFAULT_PLUGIN in ids else (ids[0] if ids else None))
        self.direction_files: list[str] = []
        self.pairs: list[list[Any]] = []  # prompt-pair directions: [from, to, strength]
        self.concepts: list[list[Any]] = []  # your own image on diffusion: [concept, strength] (+ add, - remove)
        self._jobs: dict[str, str] = {}  # job id -> purpose
        super().__init__(context, chosen)

    # ------------------------------------------------------------------------------ state
    def _reset_plugin_state(self) -> None:
        super()._reset_plugin_state()
        if "edit" in self.modes():
            self.mode = "edit"  # the form shows what a slider preview uses
        if self.is_diffusion and not self.values.get("prompt"):
            self.values["prompt"] = STARTING_PROMPT
        self._reset_model_state()

    def _reset_model_state(self) -> None:
        self.directions: list[DirectionView] = []
        self.amounts: dict[str, float] = {}
        self.keep: set[str] = set()
        self.base_latent: list[float] | None = None
        self.image_path: str | None = None
        self.state = LatentState()

    def plugins(self) -> list[Any]:
        return self.context.registry.plugins(Kind.LATENT)

    def set_model(self, source: str) -> None:
        if source.strip() != self.model:
            self._reset_model_state()
            super().set_model(source)

    def set_values(self, values: dict[str, Any]) -> None:
        """As the base; a new seed also means a new sample (an encoded image is let go)."""
        new_seed = "seed" in values and values["seed"] != self.values.get("seed")
        super().set_values(values)
        if new_seed:
            self._forget_image()

    def _forget_image(self) -> None:
        self.base_latent, self.image_path = None, None
        self.state.original = self.state.reconstruction = None
        self.state.psnr = None
        self.changed.emit("encoded")

    @property
    def is_diffusion(self) -> bool:
        """Whether the plugin edits through prompts (a diffusion pipeline) rather than a small
        vector latent: it takes a prompt, so the panel shows the prompt and prompt pairs."""
        return any(p.name == "prompt" for p in self.parameters())

    @property
    def seed(self) -> int:
        value = self.values.get("seed")
        return int(value) if value is not None else 0

    # ------------------------------------------------------------------------------ jobs
    def _submit(self, purpose: str, mode: str, request: dict[str, Any], interactive: bool = False) -> Job:
        if self.plugin is None:
            raise ParamError("No latent plugin is available; see the Plugins list for why.")
        if not self.model:
            raise ParamError("Choose a model first (a vector-VAE folder or a diffusers pipeline).")
        spec = JobSpec(plugin_id=self.plugin.id, model=self.model, mode=mode, request=request, save=False,
                       options=self.context.load_options(), interactive=interactive,
                       lane_key=f"{PREVIEW_LANE}:{purpose}" if interactive else "")
        job = self.submit(spec)
        self._jobs[job.id] = purpose
        if purpose == "info":
            self.context.settings.remember_model(self.plugin.id, self.model)
        return job

    def _names(self) -> set[str]:
        return {d.name for d in self.directions}

    def load_info(self) -> Job:
        """Load the model and list its directions (then a first preview is drawn)."""
        return self._submit("info", "info", {"direction_files": list(self.direction_files)})

    def _prompt_values(self) -> dict[str, Any]:
        v = self.values
        return {"prompt": v.get("prompt", ""), "negative_prompt": v.get("negative_prompt", ""), "seed": self.seed,
                "steps": v.get("steps", 20), "cfg_scale": v.get("cfg_scale", 7.0)}

    def _image_values(self) -> dict[str, Any]:
        request: dict[str, Any] = {"image": self.image_path}
        if self.is_diffusion:
            # how your image is edited: every one of these the user set reaches the plugin
            for name in ("encode_method", "img2img_strength", "layout", "zoom", "masks", "skip", "refine"):
                if name in self.values:
                    request[name] = self.values[name]
        return request

    def edit_request(self) -> dict[str, Any]:
        """The request a slider preview sends (the CLI's ``latent edit`` sends the same)."""
        edits = [[n, float(a)] for n, a in self.amounts.items() if a]
        files = list(self.direction_files)
        if self.is_diffusion:
            req = {**self._prompt_values(), "edits": edits, "direction_files": files,
                   "pairs": [list(p) for p in self.pairs if p[0] and p[1] and p[2]]}
            if self.concepts:
                req["concepts"] = [list(c) for c in self.concepts if c[0] and c[1]]
            if self.image_path:
                req.update(self._image_values())
            return req
        req = {"seed": self.seed, "edits": edits, "keep": sorted(self.keep), "direction_files": files}
        if self.base_latent is not None:
            req["latent"] = list(self.base_latent)
        elif self.image_path:
            req["image"] = self.image_path
        return req

    def edit_preview(self) -> Job:
        """Queue an interactive preview of the current sliders (newest wins)."""
        return self._submit("preview", "edit", self.edit_request(), interactive=True)

    def edit(self) -> Job:
        """Queue the edit the sliders describe as an ordinary job (the CLI's ``latent edit``)."""
        return self._submit("edit", "edit", self.edit_request())

    def set_amount(self, name: str, amount: float) -> None:
        if name not in self._names():
            raise ParamError(f"Unknown direction {name!r}.")
        self.amounts[name] = float(amount)

    def reset_amounts(self) -> None:
        self.amounts = {}
        self.pairs = []
        self.concepts = []

    def set_keep(self, name: str, kept: bool) -> None:
        if kept:
            self.keep.add(name)
        else:
            self.keep.discard(name)

    def set_pair(self, start: str, end: str, strength: float) -> None:
        """The prompt-pair direction "start" → "end" at ``strength`` (diffusion)."""
        start, end = start.strip(), end.strip()
        self.pairs = [[start, end, float(strength)]] if start and end and strength else []

    def new_sample(self, seed: int) -> None:
        """Start from the sample drawn from ``seed`` (forgets an encoded image)."""
        self.set_value("seed", int(seed))
        if self.image_path is not None or self.base_latent is not None:
            self._forget_image()

    def use_image(self, path: str) -> None:
        """Edit ``path`` (the CLI: encoded as part of the edit itself)."""
        if not Path(path).is_file():
            raise ParamError(f"Image not found: {path}")
        self.image_path, self.base_latent = str(path), None

    def encode(self, path: str) -> Job:
        """Encode your own image: its reconstruction and PSNR are shown, then the sliders edit it."""
        path = str(path)
        if not Path(path).is_file():
            raise ParamError(f"Image not found: {path}")
        request: dict[str, Any] = {"image": path}
        if self.is_diffusion:
            request.update(self._prompt_values())
            request.update({k: v for k, v in self._image_values().items() if k != "image"})
        job = self._submit("encode", "encode", request)
        self.image_path = path
        return job

    def walk_request(self, spec: WalkSpec) -> dict[str, Any]:
        """The request of a walk from A to B (the CLI's ``latent walk`` sends the same)."""
        if self.is_diffusion:
            if not (spec.from_prompt or self.values.get("prompt")) and spec.from_seed is None:
                raise ParamError("Give the walk a start: a prompt and/or a seed.")
            request: dict[str, Any] = {
                **self._prompt_values(), "prompt": spec.from_prompt or self.values.get("prompt", ""),
                "prompt_to": spec.to_prompt or spec.from_prompt or self.values.get("prompt", ""),
                "seed": spec.from_seed if spec.from_seed is not None else self.seed, "frames": spec.frames}
            if spec.to_seed is not None:
                request["seed_to"] = spec.to_seed
            return request
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
        return request

    def walk(self, spec: WalkSpec) -> Job:
        return self._submit("walk", "walk", self.walk_request(spec))

    def measure_quality(self, bases: int = 6, sweep: int = 9, names: list[str] | None = None) -> Job:
        if not self.state.info.get("quality_available"):
            raise ParamError("Edit quality is read back with the Shapes scorer; this model has no scorer.")
        return self._submit("quality", "quality", {"bases": bases, "sweep": sweep, "directions": list(names or []),
                                                   "direction_files": list(self.direction_files)})

    def fit(self, method: str, name: str, examples: list[Any] | None = None, factor: str = "",
            count: int = 256) -> Job:
        request = {"fit_method": method, "name": name, "examples": [list(e) for e in (examples or [])],
                   "factor": factor, "count": count, "direction_files": list(self.direction_files)}
        return self._submit("fit", "fit", request)

    def save_pair_direction(self, start: str, end: str, path: str | Path) -> Job:
        """Save the prompt-pair direction "start" → "end" to a directions file (diffusion)."""
        if not start.strip() or not end.strip():
            raise ParamError("A prompt pair needs both ends, e.g. red → blue.")
        request = {**self.edit_request(), "pairs": [[start.strip(), end.strip(), 1.0]], "save_direction": str(path)}
        return self._submit("pair", "edit", request)

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
        chosen = [(d, d.vector) for d in self.directions
                  if d.vector is not None and (names is None or d.name in names)]
        if not chosen:
            raise ParamError("No directions with vectors to save (text-embedding directions are saved by the "
                             "plugin when you edit with a prompt pair).")
        dset = dirfile.DirectionSet(
            [dirfile.Direction(name=d.name, vector=vector, kind=d.kind, label=d.label, scale=d.scale,
                               range=d.range, units=d.units, score=d.score, notes=d.notes) for d, vector in chosen],
            self.state.info.get("space", "vae-latent"), str(self.state.info.get("model", "")),
            tuple(self.state.info.get("latent_shape") or ()))
        try:
            return dirfile.save(dset, path)
        except (dirfile.DirectionFileError, OSError) as exc:
            raise ParamError(str(exc)) from None

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

    # ------------------------------------------------------------------------------ engine events
    def purpose(self, job: Job) -> str | None:
        return self._jobs.get(job.id)

    def on_result(self, job: Job, event: Result) -> None:
        purpose = self._jobs.get(job.id)
        if purpose is None:
            return
        info = dict(event.info)
        images = [a.image for a in event.artifacts if a.image is not None]
        state = self.state
        state.error = ""
        if purpose == "info":
            state.info = info
            self._set_directions(info.get("directions", []))
            self.changed.emit("directions")
        elif purpose == "preview":
            state.preview = images[0] if images else None
            state.preview_latent = info.get("latent")
            state.conditional = info.get("conditional", {})
            self.changed.emit("edited")
        elif purpose == "encode":
            state.original = info.get("original")
            state.reconstruction = images[0] if images else None
            state.psnr = info.get("psnr")
            state.preview = state.reconstruction
            if info.get("latent") is not None:
                self.base_latent = list(info["latent"])
            self.changed.emit("encoded")
        elif purpose == "walk":
            state.walk_frames = images
            state.walk_smoothness = dict(info.get("smoothness", {}))
            self.changed.emit("walk")
        elif purpose == "quality":
            state.quality = dict(info.get("quality", {}))
            self.changed.emit("quality")
        elif purpose == "fit":
            state.fitted = dirfile.from_json(info["directions_json"]) if info.get("directions_json") else None
            if info.get("saved"):
                self.direction_files.append(str(info["saved"]))
        elif purpose == "pair" and info.get("saved_direction"):
            self.message.emit("info", f"Saved the direction to {info['saved_direction']}")

    def on_failed(self, job: Job, event: Failed) -> None:
        self.state.error = event.message
        if self._jobs.get(job.id) == "encode":
            self.image_path = None
        super().on_failed(job, event)

    def on_finished(self, job: Job, state: JobState) -> None:
        purpose = self._jobs.pop(job.id, None)
        if purpose is None or state is JobState.CANCELLED:
            return  # a superseded slider preview: a newer one is on its way
        if state is not JobState.FAILED:
            self._follow_up(purpose)
        self.job_finished.emit(purpose, state is not JobState.FAILED)

    def _follow_up(self, purpose: str) -> None:
        """A found direction is kept as a file and offered as a slider (the model is asked again).
        (Drawing a first preview after a load or an encode is the panel's call: the CLI has none.)"""
        if purpose == "fit" and self.state.fitted is not None:
            fitted = self.state.fitted
            self.keep_fitted()
            score = fitted.directions[0].score
            self.message.emit("info", f"Found {len(fitted)} direction(s)"
                                      + (f" (score {score:.2f})" if score is not None else "")
                                      + "; added to the sliders.")
            self.changed.emit("fitted")
            self._try(self.load_info)

    def _try(self, command: Any) -> None:
        try:
            command()
        except ParamError as exc:
            self.message.emit("error", str(exc))

    def _set_directions(self, entries: list[dict[str, Any]]) -> None:
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
