"""The loaded vector-latent VAE: every latent-panel feature as a run mode.  Imports torch.

Directions come from, in order: the model folder's ``directions.safetensors`` +
``directions.json`` (named factor directions with their units, ``boundary_*`` normals, PCA
rows), its ``directions/`` folder, the ``studio.latent_directions`` entry points, and the
request's ``direction_files``.  A Shapes VAE exported without directions gets them fitted at
load from rendered, labelled scenes (regression directions + PCA), so the sliders always work.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from studio.plugin_api import Artifact, CancelToken, Event, Kind, LoadOptions, Log, ParamError, Progress, Result
from studio.plugin_kit.latent import directions as dirfile
from studio.plugin_kit.latent import fitting, metrics, vectors
from studio.plugin_kit.shapes import world

from . import VAE_MODES, common, shapes_quality

SPACE = "vae-latent"
SMALL_MODEL_THREADS = 1
FACTOR_LABELS = {"x": "X position", "y": "Y position", "size": "Size", "hue": "Hue", "background": "Background",
                 "shape_circle": "Circle-ness", "shape_square": "Square-ness", "shape_triangle": "Triangle-ness"}
CONTINUOUS = ("x", "y", "size", "hue")
SHAPE_FACTORS = {"x", "y", "size", "hue", "background", "circle", "square", "triangle"}


def _shipped_directions(raw: dict[str, np.ndarray], meta: dict, dim: int) -> list[dirfile.Direction]:
    out: list[dirfile.Direction] = []
    factors = meta.get("factors", {})
    for name, info in factors.items():
        if name not in raw:
            continue
        upl = float(info.get("units_per_latent", 1.0)) or 1.0
        lo, hi = info.get("range", (-1.0, 1.0))
        span = float(hi) - float(lo)
        kind_cont = info.get("kind") == "continuous"
        rng = (-span, span) if kind_cont else (-1.5, 1.5)
        units = str(info.get("units", ""))
        out.append(dirfile.Direction(name=name, vector=raw[name], kind="named",
                                     label=FACTOR_LABELS.get(name, name), scale=1.0 / upl, range=rng,
                                     units=units, score=info.get("r2"),
                                     notes="conditional direction: the other factors' linear read-outs stay fixed"))
        b = f"boundary_{name}"
        if b in raw:
            # |W_k| = upl / cos(n_k, d_k): the raw normal moves the factor that much per unit length
            cos = vectors.cosine(raw[b], raw[name])
            scale = cos / upl if abs(cos) > 0.05 else 1.0 / upl
            out.append(dirfile.Direction(name=b, vector=raw[b], kind="boundary",
                                         label=f"{FACTOR_LABELS.get(name, name)} (unadjusted)", scale=scale,
                                         range=rng, units=units,
                                         notes="InterFaceGAN boundary / regression normal, unconditioned"))
    if "pca" in raw:
        stds = meta.get("pca", {}).get("std") or [1.0] * int(raw["pca"].shape[0])
        ratios = meta.get("pca", {}).get("explained_ratio") or [None] * int(raw["pca"].shape[0])
        for i, row in enumerate(np.asarray(raw["pca"]).reshape(-1, dim)):
            out.append(dirfile.Direction(name=f"pc{i}", vector=row, kind="pca", label=f"PC {i}",
                                         scale=float(stds[i]) if i < len(stds) else 1.0, range=(-3.0, 3.0),
                                         units="σ", score=ratios[i] if i < len(ratios) else None,
                                         notes="GANSpace: principal axis of the encoded training scenes"))
    return out


class VectorLatentModel:
    """A :class:`studio.plugin_api.LoadedModel` for a :class:`studio.shapes.vector_vae.VectorVAE`."""

    def __init__(self, folder: Path, vae: Any, dset: dirfile.DirectionSet, stats: dict, options: LoadOptions,
                 notes: list[str], shapes: bool):
        self.folder = folder
        self.source = str(folder)
        self.device = "cpu"
        self.vae = vae
        self.directions = dset
        self.stats = stats  # latent_mean / latent_std, when known
        self.options = options
        self.notes = notes
        self.shapes = shapes  # a Shapes-world VAE: seeds draw scenes, quality is read back
        self.latent_dim = int(vae.latent_dim)
        self.image_size = int(vae.config.get("image_size", 64))
        self.memory_bytes = sum(p.numel() * p.element_size() for p in vae.parameters())
        self.defaults = {"seed": 0}
        self.choices: dict[str, list[Any]] = {}
        self.modes = VAE_MODES
        self._encoded: dict[tuple, np.ndarray] = {}
        self._file_sets: dict[tuple, dirfile.DirectionSet] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------ loading
    @classmethod
    def load(cls, folder: Path, options: LoadOptions, progress: Callable[[str], None]) -> VectorLatentModel:
        from studio.plugin_kit.shapes import load_directions_meta, load_vector_vae

        if str(options.device).startswith(("cuda", "mps")):
            progress(f"{options.device} requested; this small VAE runs on the CPU")
        progress(f"Loading the vector VAE from {folder.name}")
        vae, raw = load_vector_vae(str(folder))
        meta = load_directions_meta(str(folder))
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        shapes = cfg.get("model_type") == "shapes-vector-vae"
        dim = int(vae.latent_dim)
        raw_np = {k: v.detach().cpu().numpy().astype(np.float64) for k, v in raw.items()}
        stats = {k: raw_np[k] for k in ("latent_mean", "latent_std") if k in raw_np}
        notes: list[str] = []
        dirs = _shipped_directions(raw_np, meta, dim)
        model = cls(folder, vae, dirfile.DirectionSet(dirs, SPACE, folder.name, (dim,)), stats, options, notes,
                    shapes)
        if not dirs and shapes:
            progress("No directions shipped with this VAE: fitting them from rendered Shapes scenes")
            model.directions = model._fit_shapes_directions()
            notes.append("This VAE shipped no directions; named and PCA directions were fitted at load from "
                         "256 rendered Shapes scenes.")
        for extra, more in (common.folder_directions(folder, SPACE, (dim,)),
                            common.contributed_directions(SPACE, (dim,))):
            model.directions = model.directions.merged(extra)
            notes.extend(more)
        progress(f"Loaded {folder.name}: latent {dim}, {len(model.directions)} directions")
        return model

    def _fit_shapes_directions(self, count: int = 256, seed: int = 9001) -> dirfile.DirectionSet:
        rng = np.random.default_rng(seed)
        scenes = [world.sample_continuous_scene(rng) for _ in range(count)]
        z = self.encode_array(np.stack([world.render(s) for s, _ in scenes]))
        facts = [shapes_quality.scene_factors(f) for _, f in scenes]
        out = []
        for name in CONTINUOUS:
            fitted = fitting.fit_regression_direction(z, [f[name] for f in facts])
            lo, hi = shapes_quality.WORLD_RANGE[name]
            out.append(dirfile.Direction(name=name, vector=fitted.vector, kind="regression",
                                         label=FACTOR_LABELS[name], scale=fitted.scale,
                                         range=(-(hi - lo), hi - lo), score=fitted.score,
                                         units="hue" if name == "hue" else "px"))
        try:
            bg = fitting.fit_linear_boundary(z, [f["background"] for f in facts])
            out.append(dirfile.Direction(name="background", vector=bg.vector, kind="boundary",
                                         label="Background", scale=bg.scale, range=(-3, 3), score=bg.score,
                                         units="σ"))
        except ValueError:
            pass
        pca = fitting.fit_pca(z, k=min(8, self.latent_dim))
        for i, row in enumerate(pca.components):
            out.append(dirfile.Direction(name=f"pc{i}", vector=row, kind="pca", label=f"PC {i}",
                                         scale=float(pca.std[i]) or 1.0, range=(-3, 3), units="σ",
                                         score=float(pca.explained_ratio[i])))
        self.stats.setdefault("latent_mean", z.mean(0))
        self.stats.setdefault("latent_std", z.std(0))
        return dirfile.DirectionSet(out, SPACE, self.folder.name, (self.latent_dim,))

    # ------------------------------------------------------------------------------ numerics
    def encode_array(self, images: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.vae.encode_images(np.array(images, dtype=np.uint8, copy=True)).cpu().numpy().astype(np.float64)

    def decode_array(self, z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.vae.decode_images(torch.as_tensor(np.asarray(z, dtype=np.float32)))

    def _image_array(self, image: Image.Image) -> np.ndarray:
        s = self.image_size
        if image.size != (s, s):
            image = image.resize((s, s), Image.Resampling.BOX)
        return np.asarray(image.convert("RGB"), dtype=np.uint8)

    def encode_file(self, path: Any, label: str = "Image") -> tuple[np.ndarray, np.ndarray]:
        """-> (latent [D], the image as the model saw it, uint8 [S, S, 3]); cached per file."""
        image = self._image_array(common.open_rgb(path, label))
        key = common.file_key(path)
        if key not in self._encoded:
            if len(self._encoded) > 64:
                self._encoded.clear()
            self._encoded[key] = self.encode_array(image[None])[0]
        return self._encoded[key].copy(), image

    def seed_latent(self, seed: int) -> np.ndarray:
        """A base latent from a seed: a rendered Shapes scene, encoded (Shapes VAE), else a prior draw."""
        rng = np.random.default_rng(int(seed))
        if self.shapes:
            scene, _ = world.sample_continuous_scene(rng)
            return self.encode_array(world.render(scene)[None])[0]
        mean = self.stats.get("latent_mean", np.zeros(self.latent_dim))
        std = self.stats.get("latent_std", np.ones(self.latent_dim))
        return mean + std * rng.standard_normal(self.latent_dim)

    def directions_for(self, request: Mapping[str, Any]) -> dirfile.DirectionSet:
        return common.directions_with_files(self.directions, self._file_sets, request)

    def _latent_arg(self, value: Any, label: str) -> np.ndarray | None:
        if value is None or len(value) == 0:
            return None
        try:
            z = np.asarray(value, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise ParamError(f"{label} must be a list of numbers.") from None
        if z.size != self.latent_dim or not np.all(np.isfinite(z)):
            raise ParamError(f"{label} must have {self.latent_dim} finite numbers (got {z.size}).")
        return z

    def edit_offset(self, dset: dirfile.DirectionSet, edits: Mapping[str, float],
                    keep: list[str]) -> tuple[np.ndarray, dict]:
        """Sum of the edits' latent moves, each made orthogonal to the kept directions."""
        for name in list(edits) + list(keep):
            if name not in dset:
                raise common.unknown_direction(name, dset.names())
        offset = np.zeros(self.latent_dim)
        report: dict[str, dict] = {}
        for name, amount in edits.items():
            d = dset.get(name)
            vec = d.vector.astype(np.float64).ravel()
            conds = [dset.get(k).vector.astype(np.float64).ravel() for k in keep if k != name]
            before = {k: vectors.cosine(vec, dset.get(k).vector) for k in keep if k != name}
            if conds:
                try:
                    vec = vectors.conditional_direction(vec, conds)
                except ValueError as exc:
                    raise ParamError(f"Cannot edit {name!r} while keeping {', '.join(keep)}: {exc}.") from None
            after = {k: vectors.cosine(vec, dset.get(k).vector) for k in keep if k != name}
            offset += float(amount) * d.scale * vec
            report[name] = {"cos_before": before, "cos_after": after}
        return offset, report

    # ------------------------------------------------------------------------------ running
    def run(self, request: Mapping[str, Any], cancel: CancelToken) -> Iterator[Event]:
        with self._lock:
            for note in self.notes:
                yield Log(note, "warning")
            self.notes = []
            mode = request.get("mode") or "edit"
            handler = getattr(self, f"_run_{mode}", None)
            if handler is None:
                raise ParamError(f"Unknown mode {mode!r}.")
            # This network is tiny: one thread decodes a 64 px image in a few ms, while extra
            # threads on a busy CPU spin and wait (measured: 29 ms vs 143 ms per slider preview
            # with 2 threads on a loaded 2-core machine).  The engine runs one job at a time.
            previous = torch.get_num_threads()
            torch.set_num_threads(SMALL_MODEL_THREADS)
            try:
                yield from handler(request, cancel)
            finally:
                torch.set_num_threads(previous)

    def _artifact(self, image: np.ndarray, seed: int | None, params: dict) -> Artifact:
        params = {"model": self.folder.name, **params}
        return Artifact(Kind.LATENT, image=Image.fromarray(np.asarray(image, dtype=np.uint8)), seed=seed,
                        parameters=params)

    def _run_info(self, request, cancel) -> Iterator[Event]:
        dset = self.directions_for(request)
        doc = dset.header()
        for entry, d in zip(doc["directions"], dset.directions, strict=True):
            entry["vector"] = [float(v) for v in d.vector.ravel()]
        yield Result((), info={"directions": doc["directions"], "space": SPACE, "latent_shape": [self.latent_dim],
                               "model": self.folder.name, "image_size": self.image_size,
                               "quality_available": self.shapes, "encode_available": True,
                               "kind": "vector-vae"})

    def _base(self, request) -> tuple[np.ndarray, int | None, str]:
        z = self._latent_arg(request.get("latent"), "Latent")
        if z is not None:
            return z, None, "latent"
        if request.get("image"):
            z, _ = self.encode_file(request["image"])
            return z, None, Path(str(request["image"])).name
        from studio.plugin_kit.seeds import pick_seed

        seed = pick_seed(request.get("seed"))
        return self.seed_latent(seed), seed, f"seed {seed}"

    def _run_edit(self, request, cancel) -> Iterator[Event]:
        started = time.perf_counter()
        dset = self.directions_for(request)
        edits = common.parse_edits(request.get("edits"))
        keep = [str(k) for k in (request.get("keep") or ())]
        base, seed, what = self._base(request)
        offset, report = self.edit_offset(dset, edits, keep)
        z = base + offset
        image = self.decode_array(z[None])[0]
        params = {"mode": "edit", "base": what, "edits": {k: v for k, v in edits.items() if v}, "keep": keep}
        yield Result((self._artifact(image, seed, params),),
                     info={"latent": z.tolist(), "base_latent": base.tolist(), "seed": seed, "conditional": report,
                           "seconds": round(time.perf_counter() - started, 4)})

    def _run_encode(self, request, cancel) -> Iterator[Event]:
        if not request.get("image"):
            raise ParamError("Choose an image to encode.")
        z, seen = self.encode_file(request["image"])
        rec = self.decode_array(z[None])[0]
        value = metrics.psnr(seen, rec)
        yield Result((self._artifact(rec, None, {"mode": "encode", "image": str(request["image"]),
                                                 "psnr": round(value, 2)}),),
                     info={"latent": z.tolist(), "psnr": value, "original": Image.fromarray(seen),
                           "method": "VAE encoder (posterior mean)"})

    def _endpoint(self, request, side: str) -> tuple[np.ndarray, str]:
        z = self._latent_arg(request.get(f"{side}_latent"), f"{side.capitalize()} latent")
        if z is not None:
            return z, "latent"
        if request.get(f"{side}_image"):
            return self.encode_file(request[f"{side}_image"], f"{side.capitalize()} image")[0], \
                Path(str(request[f"{side}_image"])).name
        seed = request.get(f"{side}_seed")
        if seed is None:
            raise ParamError(f"The walk needs a '{side}' end: an image, a seed or a latent.")
        return self.seed_latent(int(seed)), f"seed {int(seed)}"

    def _run_walk(self, request, cancel) -> Iterator[Event]:
        a, what_a = self._endpoint(request, "from")
        b, what_b = self._endpoint(request, "to")
        frames = int(request.get("frames") or 8)
        method = request.get("interpolation") or "lerp"
        zs = np.stack(vectors.interpolate(a, b, frames, method))
        images = self.decode_array(zs)
        smooth = metrics.walk_smoothness(images)
        params = {"mode": "walk", "from": what_a, "to": what_b, "frames": frames, "interpolation": method}
        arts = tuple(self._artifact(im, None, {**params, "frame": i}) for i, im in enumerate(images))
        yield Progress(frames, frames)
        yield Result(arts, info={"smoothness": smooth, "latents": zs.tolist()})

    def _run_quality(self, request, cancel) -> Iterator[Event]:
        if not self.shapes:
            raise ParamError("Edit quality is read back with the Shapes scorer, so it needs a Shapes VAE.")
        dset = self.directions_for(request)
        wanted = [str(n) for n in (request.get("directions") or ())]
        for n in wanted:
            if n not in dset:
                raise common.unknown_direction(n, dset.names())
        names = wanted or [d.name for d in dset.directions if d.kind in ("named", "regression", "pca")
                           or (d.kind == "boundary" and d.name == "background")]
        bases_n = int(request.get("bases") or 6)
        points = int(request.get("sweep") or 9)
        seed = int(request.get("seed") or 0)
        rng = np.random.default_rng(10_000 + seed)
        scenes = [world.sample_continuous_scene(rng)[0] for _ in range(bases_n)]
        bases = self.encode_array(np.stack([world.render(s) for s in scenes]))
        base_reads = [shapes_quality.read_factors(im) for im in self.decode_array(bases)]
        out: dict[str, dict] = {}
        for i, name in enumerate(names):
            cancel.raise_if_set()
            d = dset.get(name)
            step = d.scale * d.vector.astype(np.float64).ravel()
            rows = []
            for zb, rb in zip(bases, base_reads, strict=True):
                amounts = shapes_quality.sweep_amounts(name, rb, d.range, points)
                rows.append(shapes_quality.sweep_quality(self.decode_array, zb, step, amounts, name))
            out[name] = shapes_quality.summarise(rows)
            yield Progress(i + 1, len(names), name)
        yield Result((), info={"quality": out, "bases": bases_n, "sweep": points})

    def _run_fit(self, request, cancel) -> Iterator[Event]:
        method = request.get("fit_method") or "boundary"
        factor = (request.get("factor") or "").strip().lower()
        examples = list(request.get("examples") or ())
        name = (request.get("name") or "").strip() or factor or f"{method}-direction"
        if factor:
            if not self.shapes:
                raise ParamError("Learning from rendered scenes needs a Shapes VAE; give labelled images instead.")
            if factor not in SHAPE_FACTORS:
                raise ParamError(f"Factor must be one of: {', '.join(sorted(SHAPE_FACTORS))} (got {factor!r}).")
            rng = np.random.default_rng(int(request.get("seed") or 0) + 77)
            scenes = [world.sample_continuous_scene(rng) for _ in range(int(request.get("count") or 256))]
            z = self.encode_array(np.stack([world.render(s) for s, _ in scenes]))
            if factor in ("circle", "square", "triangle"):
                labels = np.array([1.0 if f["shape"] == factor else 0.0 for _, f in scenes])
            else:
                labels = np.array([shapes_quality.scene_factors(f)[factor] for _, f in scenes])
        else:
            if not examples:
                raise ParamError("Give labelled example images, or a Shapes factor to learn from.")
            zs, labels_l = [], []
            for i, entry in enumerate(examples):
                path, label = (entry[0], entry[1]) if isinstance(entry, (list, tuple)) and len(entry) > 1 \
                    else (entry[0] if isinstance(entry, (list, tuple)) else entry, 0.0)
                zs.append(self.encode_file(path, "Example image")[0])
                try:
                    labels_l.append(float(label))
                except (TypeError, ValueError):
                    raise ParamError(f"Label of {path} must be a number (got {label!r}).") from None
                if i % 16 == 15:
                    yield Progress(i + 1, len(examples), "encoding examples")
            z, labels = np.stack(zs), np.array(labels_l)
        try:
            if method == "pca":
                pca = fitting.fit_pca(z, k=min(8, self.latent_dim, len(z)))
                dirs = [dirfile.Direction(name=f"{name}-pc{i}", vector=row, kind="pca", scale=float(pca.std[i]) or 1,
                                          range=(-3, 3), units="σ", score=float(pca.explained_ratio[i]))
                        for i, row in enumerate(pca.components)]
                score = float(pca.explained_ratio.sum())
            elif method == "boundary":
                if factor in CONTINUOUS:  # threshold a continuous factor at its median
                    labels = (labels > np.median(labels)).astype(float)
                fitted = fitting.fit_linear_boundary(z, labels)
                dirs = [dirfile.Direction(name=name, vector=fitted.vector, kind="boundary", scale=fitted.scale,
                                          range=(-3, 3), units="σ", score=fitted.score,
                                          notes="InterFaceGAN linear boundary normal")]
                score = fitted.score
            else:
                fitted = fitting.fit_regression_direction(z, labels)
                dirs = [dirfile.Direction(name=name, vector=fitted.vector, kind="regression", scale=fitted.scale,
                                          range=(-3 * float(np.std(labels) or 1), 3 * float(np.std(labels) or 1)),
                                          units="label units", score=fitted.score)]
                score = fitted.score
        except (ValueError, dirfile.DirectionFileError) as exc:
            raise ParamError(f"Could not fit a direction: {exc}") from None
        dset = dirfile.DirectionSet(dirs, SPACE, self.folder.name, (self.latent_dim,))
        saved = None
        if request.get("output"):
            try:
                saved = str(dirfile.save(dset, request["output"]))
            except (dirfile.DirectionFileError, OSError) as exc:
                raise ParamError(f"Could not save the directions: {exc}") from None
        existing = self.directions_for(request)
        cosines = {d.name: {e.name: vectors.cosine(d.vector, e.vector) for e in existing.directions
                            if e.kind in ("named", "regression")} for d in dirs}
        yield Result((), info={"directions_json": dirfile.to_json(dset), "saved": saved, "score": score,
                               "method": method, "examples": int(len(z)), "cosines": cosines})

    def unload(self) -> None:
        self.vae = None
        self._encoded.clear()
