"""The diffusion plugin's modes on the user's own image (edit-friendly DDPM inversion) and
direction discovery: request parsing, events and the edit recipe.  Imports torch."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from studio.plugin_api import Cancelled, CancelToken, Event, ParamError, Progress, Result
from studio.plugin_kit.latent import directions as dirfile

from . import common, ddpm_edit, hspace
from .image_edit import EditSpec

#: steps of a draft preview (a slider being dragged); the full-quality run uses the request's steps
DRAFT_STEPS = 8
RECIPE_FORMAT = "studio-latent-edit-recipe"
SLIDER_KINDS = ("pair", "concept", "direction")
#: a direction name may say which kind it is, when a text and an h-space direction share a name
TEXT_QUALIFIER, H_QUALIFIER = "text:", "h-space:"


def parse_pairs(value: Any) -> list[tuple[str, str, float]]:
    out = []
    for entry in value or ():
        if isinstance(entry, dict):
            entry = (entry.get("from"), entry.get("to"), entry.get("strength", 1.0))
        if not isinstance(entry, (list, tuple)) or len(entry) not in (2, 3):
            raise ParamError(f"Each prompt pair is [from, to, strength] (got {entry!r}).")
        a, b = str(entry[0] or "").strip(), str(entry[1] or "").strip()
        if not a or not b:
            raise ParamError("A prompt pair needs both words, e.g. red -> blue.")
        try:
            s = float(entry[2]) if len(entry) == 3 else 1.0
        except (TypeError, ValueError):
            raise ParamError(f"Strength of {a} -> {b} must be a number.") from None
        out.append((a, b, s))
    return out


def parse_concepts(value: Any) -> list[tuple[str, float]]:
    out = []
    for entry in value or ():
        if isinstance(entry, str):
            entry = (entry, 1.0)
        if isinstance(entry, dict):
            entry = (entry.get("concept"), entry.get("strength", 1.0))
        if not isinstance(entry, (list, tuple)) or len(entry) != 2 or not str(entry[0] or "").strip():
            raise ParamError(f"Each concept is [text, strength] (got {entry!r}).")
        try:
            out.append((str(entry[0]).strip(), float(entry[1])))
        except (TypeError, ValueError):
            raise ParamError(f"Strength of {entry[0]!r} must be a number.") from None
    return out


def _resolve(name: str, text_set: dirfile.DirectionSet, h_set: dirfile.DirectionSet) -> tuple[str, Any] | None:
    """("text" | "h", direction) for ``name``: a plain name, or "text:NAME" / "h-space:NAME" when a
    text and an h-space direction share a name."""
    if name in text_set:
        return "text", text_set.get(name)
    if name in h_set:
        return "h", h_set.get(name)
    for qualifier, kind, dset in ((TEXT_QUALIFIER, "text", text_set), (H_QUALIFIER, "h", h_set)):
        if name.startswith(qualifier) and name[len(qualifier):] in dset:
            return kind, dset.get(name[len(qualifier):])
    return None


def edit_spec(model: Any, request: Mapping[str, Any], h_shape: tuple[int, ...] | None) -> EditSpec:
    text_set, h_set = model._direction_sets(request)
    text_dirs, h_dirs = [], []
    for name, amount in common.parse_edits(request.get("edits")).items():
        found = _resolve(name, text_set, h_set)
        if found is None:
            raise common.unknown_direction(name, text_set.names() + h_set.names())
        kind, d = found
        if kind == "text":
            text_dirs.append((name, d.vector, float(amount) * d.scale))
        else:
            offset = d.offset(amount).astype(np.float32)
            label = f"{name} x{float(amount):g}"
            if h_shape is not None and tuple(offset.shape) != tuple(h_shape):
                if offset.ndim != 3 or offset.shape[0] != h_shape[0]:
                    raise ParamError(f"Direction {name!r} was found on another model's bottleneck "
                                     f"({list(offset.shape)}; this one {list(h_shape)}).")
                # found at another image shape: the same shift map, resampled to this bottleneck (said so)
                label += f" (resampled from {offset.shape[1]}x{offset.shape[2]} to {h_shape[1]}x{h_shape[2]})"
                offset = _resampled(offset, h_shape[1:])
            h_dirs.append((label, offset))
    return EditSpec(parse_pairs(request.get("pairs")), parse_concepts(request.get("concepts")), text_dirs, h_dirs,
                    bool(request.get("masks", True)), layout=str(request.get("layout") or "auto"),
                    zoom=bool(request.get("zoom", True)))


def _resampled(offset: np.ndarray, hw: tuple[int, ...]) -> np.ndarray:
    """A [C, h, w] bottleneck shift at another [h', w'] (bilinear)."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(offset))[None]
    return torch.nn.functional.interpolate(t, size=tuple(int(v) for v in hw), mode="bilinear",
                                           align_corners=False)[0].numpy().astype(np.float32)


def _steps(request: Mapping[str, Any]) -> tuple[int, bool]:
    steps = int(request.get("steps") or 20)
    draft = bool(request.get("draft"))
    return (min(steps, DRAFT_STEPS) if draft else steps), draft


def h_shape(model: Any, size: tuple[int, int]) -> tuple[int, ...]:
    """The bottleneck's shape for one image of ``size`` (channels, h, w), from the UNet config."""
    cfg = model.pipe.unet.config
    h, w = size[1] // model.vae_factor, size[0] // model.vae_factor
    for _ in range(len(cfg.block_out_channels) - 1):  # each downsampler (stride 2, padding 1) rounds up
        h, w = (h + 1) // 2, (w + 1) // 2
    return (int(cfg.block_out_channels[-1]), h, w)


def run_edit(model: Any, request: Mapping[str, Any], cancel: CancelToken) -> Iterator[Event]:
    started = time.perf_counter()
    parse_pairs(request.get("pairs"))  # a malformed edit is named before the image is opened
    parse_concepts(request.get("concepts"))
    image = common.open_rgb(request.get("image"))
    size = model._size(request, image)
    steps, draft = _steps(request)
    prompt = request.get("prompt") or ""
    skip, refine = float(request.get("skip", 0.2)), int(request.get("refine", 30))
    spec = edit_spec(model, request, h_shape(model, size))
    yield Progress(0, 3, "encoding your image")
    enc = model.editor.encode(image, size, refine)
    yield Progress(1, 3, "inverting" if (prompt, steps, round(skip, 4)) not in enc.inversions else "editing")

    def on_step(i: int, total: int) -> None:
        if cancel.is_set:
            raise Cancelled()

    out, how = model.editor.edit(enc, prompt, steps, skip, spec, on_step, quick=draft)
    yield Progress(3, 3, "done")
    applied = spec.applied()
    named = [f"{a}->{b}" for a, b, _ in spec.pairs] + [f"{'+' if s >= 0 else '-'}{c}" for c, s in spec.concepts]
    strengths = [s for *_, s in spec.pairs] + [s for _, s in spec.concepts]
    layouts = [f"{n}: {lay}" for n, lay, s in zip(named, how["layout"], strengths, strict=True) if s]
    recipe = {"format": RECIPE_FORMAT, "version": 1, "model": model.name, "image_sha256": enc.key.rsplit(":", 1)[-1],
              "prompt": prompt, "steps": steps, "skip": skip, "refine": refine, "masks": spec.masks,
              "layout": spec.layout, "zoom": spec.zoom,
              "pairs": [list(p) for p in spec.pairs], "concepts": [list(c) for c in spec.concepts],
              "edits": [list(e) for e in common.parse_edits(request.get("edits")).items()],
              "direction_files": [str(f) for f in request.get("direction_files") or ()],
              "encode_method": "ddpm-inversion", "draft": draft}
    # which text edits' masks follow the image's own regions (the rest keep the model's outline)
    masked_strengths = strengths + [w for *_, w in spec.text_directions]  # in the order of how["snapped"]
    masks_applied = ["none (strength 0)" if not s else "implicit, image regions" if done else "implicit"
                     for done, s in zip(how["snapped"], masked_strengths, strict=False)]
    zoomed = how.get("zoom")  # what was applied: a crop (and its enlargement) or the whole picture
    framing = (f"{zoomed['factor']:g}x, on the crop ({'{}, {}) to ({}, {}'.format(*zoomed['box'])})" if zoomed else
               ("whole picture" if spec.zoom else "off"))
    params = {"mode": "edit", "prompt": prompt, "steps": steps, "edits": applied, "encode_method": "ddpm-inversion",
              "layout": layouts, "zoom": framing, "recipe": recipe,
              **({"edit_masks": masks_applied} if masks_applied else {})}
    info = {"applied": applied, "recipe": recipe, "psnr": enc.psnr, "original": enc.seen,
            "reconstruction": enc.reconstruction, "draft": draft, "mask_share": how["mask_share"],
            "layout": layouts, "broad_share": how["broad_share"], "edit_masks": masks_applied, "zoom": framing,
            "seconds": round(time.perf_counter() - started, 3), "seed": None, "saved_direction": None}
    yield Result((model._art(out, None, params),), info=info)


def run_encode(model: Any, request: Mapping[str, Any], cancel: CancelToken) -> Iterator[Event]:
    image = common.open_rgb(request.get("image"))
    size = model._size(request, image)
    steps, _ = _steps(request)
    skip, refine = float(request.get("skip", 0.2)), int(request.get("refine", 30))
    prompt = request.get("prompt") or ""
    started = time.perf_counter()
    yield Progress(0, 2, "encoding your image")
    enc = model.editor.encode(image, size, refine)
    yield Progress(1, 2, "inverting")
    model.editor.inversion(enc, prompt, steps, skip)
    warm = steps > DRAFT_STEPS and bool(request.get("warm_draft", True))
    if warm:  # the drafts' own short chain too, so the first drag of a slider needs no inversion
        model.editor.inversion(enc, prompt, DRAFT_STEPS, skip)
    yield Progress(2, 2, "done")
    params = {"mode": "encode", "encode_method": "ddpm-inversion", "psnr": round(enc.psnr, 2), "refine": refine,
              "warm_draft": warm}
    yield Result((model._art(enc.reconstruction, None, params),),
                 info={"psnr": enc.psnr, "original": enc.seen, "method": "ddpm-inversion", "seed": None,
                       "seconds": round(time.perf_counter() - started, 3)})


def run_discover(model: Any, request: Mapping[str, Any], cancel: CancelToken) -> Iterator[Event]:
    """h-space or text-embedding PCA; saved to ``output`` when given, and offered at once."""
    from .denoiser import Conditions, Denoiser

    source = request.get("source") or "h-space"
    k = int(request.get("components") or 6)
    names = [str(n) for n in request.get("names") or ()]
    prompt = request.get("prompt") or ""
    size = model._size(request)
    started = time.perf_counter()
    if source == "h-space":
        count = int(request.get("count") or 32)
        yield Progress(0, 1, f"sampling {count} images for h-space PCA")
        schedule = ddpm_edit.Schedule.from_config(model.pipe.scheduler.config, int(request.get("steps") or 10))
        conds = Conditions(model.pipe, size, model.xl, [prompt])
        lat = (1, int(model.pipe.unet.config.in_channels), size[1] // model.vae_factor, size[0] // model.vae_factor)
        dset = hspace.discover_h(model.pipe, Denoiser(model.pipe.unet, conds, only=0), schedule, lat, count,
                                 int(request.get("seed") or 0), k, model.name, names, lambda: cancel.is_set)
        if cancel.is_set:
            raise Cancelled()
        model.h_directions = dset
    else:
        variations = [str(v) for v in request.get("variations") or ()]
        try:
            dset = hspace.discover_text(lambda t: model.embed(t, "", False)["prompt_embeds"], prompt, variations, k,
                                        model.name, names)
        except ValueError as exc:
            raise ParamError(str(exc)) from None
        model.directions = model.directions.merged(dset, prefix="text:")
    saved = None
    if request.get("output"):
        try:
            saved = str(dirfile.save(dset, request["output"]))
        except (dirfile.DirectionFileError, OSError) as exc:
            raise ParamError(f"Could not save the directions: {exc}") from None
    yield Progress(1, 1, "done")
    yield Result((), info={"directions": [{**d.header(), "space": dset.space} for d in dset.directions],
                           "space": dset.space, "latent_shape": list(dset.latent_shape), "saved_direction": saved,
                           "seconds": round(time.perf_counter() - started, 3)})



def parse_sliders(value: Any) -> list[tuple[str, str]]:
    """``[[kind, text], ...]``: kind pair ("red->blue"), concept ("stripes") or direction (a name)."""
    out = []
    for entry in value or ():
        if not isinstance(entry, (list, tuple)) or len(entry) != 2 or str(entry[0]) not in SLIDER_KINDS \
                or not str(entry[1] or "").strip():
            raise ParamError(f"Each slider to measure is [kind, text] with kind one of {', '.join(SLIDER_KINDS)} "
                             f"(got {entry!r}).")
        kind, text = str(entry[0]), str(entry[1]).strip()
        if kind == "pair" and len([w for w in text.split("->", 1) if w.strip()]) != 2:
            raise ParamError(f"A prompt pair looks like FROM->TO (got {text!r}).")
        out.append((kind, text))
    return out


def _one_slider(kind: str, text: str, strength: float) -> dict[str, Any]:
    """The edit fields of a request holding this slider alone at ``strength``."""
    if kind == "pair":
        a, _, b = text.partition("->")
        return {"pairs": [[a.strip(), b.strip(), strength]]}
    if kind == "concept":
        return {"concepts": [[text, strength]]}
    return {"edits": [[text, strength]]}


def _uses_shapes_scorer(model: Any, request: Mapping[str, Any]) -> bool:
    choice = request.get("scorer") or "auto"
    if choice != "auto":
        return bool(choice == "shapes")
    from . import default_sd_folder

    try:
        return Path(model.source).resolve() == default_sd_folder().resolve()
    except (OSError, TypeError):
        return False


def measure_sliders(model: Any, request: Mapping[str, Any], sliders: list[tuple[str, str]],
                    images: list[tuple[Any, str]], steps: int, cancel: CancelToken,
                    report: Any = None) -> dict[str, dict[str, Any]]:
    """Each slider swept on each (image, prompt): the figures of :mod:`slider_quality` (means over
    several images)."""
    import torch

    from . import slider_quality as sq

    skip, refine = float(request.get("skip", 0.2)), int(request.get("refine", 30))
    strengths = [float(s) for s in request.get("strengths") or sq.SWEEP]
    if 0.0 not in strengths:
        strengths = [0.0, *strengths]
    scorer = _uses_shapes_scorer(model, request)
    masks_on = bool(request.get("masks", True))
    rows: dict[str, dict[str, Any]] = {}

    def stop_if_cancelled(step: int, total: int) -> None:  # a slider tick preempts a background sweep
        if cancel.is_set:
            raise Cancelled()

    for k, (kind, text) in enumerate(sliders):
        per_image = []
        for image, prompt in images:
            size = model._size(request, image)  # each image at its own shape, as the edit makes it
            shape = h_shape(model, size)
            enc = model.editor.encode(image, size, refine)

            def edit_at(s: float, enc=enc, prompt=prompt, kind=kind, text=text, shape=shape):
                if cancel.is_set:
                    raise Cancelled()
                spec = edit_spec(model, {**request, "pairs": (), "concepts": (), "edits": (),
                                         **_one_slider(kind, text, s), "masks": masks_on}, shape)
                out, how = model.editor.edit(enc, prompt, steps, skip, spec, on_step=stop_if_cancelled)
                masks = how.get("masks") or []
                if not masks:
                    return out, None
                region = torch.stack(masks).amax(dim=0).float()
                region = torch.nn.functional.interpolate(region, size=(out.height, out.width), mode="bilinear",
                                                         align_corners=False)
                return out, region[0, 0].cpu().numpy()

            points = sq.sweep(edit_at, strengths)
            per_image.append(sq.measure(points, enc.reconstruction, scorer, sq.case_for(kind, text)))
        row = per_image[0] if len(per_image) == 1 else sq.mean_figures(per_image)
        row.update(kind=kind, text=text, n=len(per_image), strengths=strengths, steps=steps)
        rows[text] = row
        if report is not None:
            report(k + 1, len(sliders), text)
    return rows


def run_slider_quality(model: Any, request: Mapping[str, Any], cancel: CancelToken) -> Iterator[Event]:
    """Quality of the sliders on the user's own image: a short sweep each (see slider_quality)."""
    sliders = parse_sliders(request.get("sliders"))
    if not sliders:
        raise ParamError("Name the sliders to measure on your image.")
    steps, draft = _steps(request)
    image = common.open_rgb(request.get("image"))
    prompt = request.get("prompt") or ""
    started = time.perf_counter()
    events: list[Event] = []
    rows = measure_sliders(model, request, sliders, [(image, prompt)], steps, cancel,
                           lambda i, n, text: events.append(Progress(i, n, f"measured {text}")))
    yield from events
    method = (f"your image, strengths {', '.join(f'{s:g}' for s in next(iter(rows.values()))['strengths'])}, "
              f"{steps} steps{' (draft)' if draft else ''}, read back with "
              f"{'ShapeEval' if any(r['scorer'] == 'ShapeEval' for r in rows.values()) else 'pixel change'}")
    yield Result((), info={"sliders": rows, "method": method, "seconds": round(time.perf_counter() - started, 2)})


def run_quality(model: Any, request: Mapping[str, Any], cancel: CancelToken) -> Iterator[Event]:
    """Reconstruction and text-edit quality on held-out drawn scenes (see diffusion_quality); with
    an ``image``, the quality of ``sliders`` on that image instead."""
    from . import diffusion_quality as dq

    if request.get("image"):
        yield from run_slider_quality(model, request, cancel)
        return
    size = model._size(request)
    steps, _ = _steps(request)
    skip, refine = float(request.get("skip", 0.2)), int(request.get("refine", 30))
    count, seed = int(request.get("scenes") or 20), int(request.get("seed") or 0)
    prompted, masks = bool(request.get("prompted", True)), bool(request.get("masks", True))
    layout = str(request.get("layout") or "auto")
    zoom = bool(request.get("zoom", True))
    strengths = [float(s) for s in request.get("strengths") or (0.0, 0.25, 0.5, 1.0, 1.5)]
    sliders = parse_sliders(request.get("sliders"))
    if not sliders and request.get("direction_files"):
        sliders = [("direction", name) for name in _file_direction_names(model, request)]
    try:
        cases = [dq.parse_case(str(c)) for c in
                 request.get("measure") or (() if sliders else dq.DEFAULT_CASES)]
    except ValueError as exc:
        raise ParamError(str(exc)) from None
    chosen: dict[str, int] = {}  # the layout each measured edit got at strength 1 (auto decides per image)

    def edit(image, prompt, pairs):
        if cancel.is_set:
            raise Cancelled()
        enc = model.editor.encode(image, size, refine)
        spec = EditSpec(pairs=pairs, masks=masks, layout=layout, zoom=zoom)
        out, how = model.editor.edit(enc, prompt, steps, skip, spec)
        if pairs and pairs[0][2] == 1.0:
            chosen[how["layout"][0]] = chosen.get(how["layout"][0], 0) + 1
        return out, enc.psnr

    started = time.perf_counter()
    total = 1 + len(cases) + len(sliders)
    rows = yield from drawn_rows(edit, cases, count, seed, prompted, strengths, total, chosen)
    slider_rows: dict[str, dict[str, Any]] = {}
    if sliders:  # directions (and other sliders): the same sweep figures the panel shows, over drawn scenes
        scenes = [(sc.image, sc.prompt if prompted else "") for sc in dq.scenes_for(None, count, seed + 100)]
        for i, slider in enumerate(sliders, 1 + len(cases)):
            yield Progress(i, total, f"{slider[1]} on {count} drawn scenes")
            slider_rows.update(measure_sliders(model, request, [slider], scenes, steps, cancel))
    yield Progress(total, total, "done")
    method = (f"{count} held-out PIL-drawn scenes per row (seed {seed}), ddpm-inversion, {steps} steps, "
              f"skip {skip:g}, refine {refine}, prompt {'= the scene caption' if prompted else 'none'}, "
              f"masks {'on' if masks else 'off'}, layout {layout}, zoom {'on' if zoom else 'off'}, "
              "read back with ShapeEval")
    yield Result((), info={"quality": rows, "sliders": slider_rows, "method": method,
                           "seconds": round(time.perf_counter() - started, 1)})


def drawn_rows(edit: Callable, cases: Sequence[Any], count: int, seed: int, prompted: bool,
               strengths: Sequence[float], total: int,
               layouts: dict[str, int] | None = None) -> Generator[Event, None, dict[str, Any]]:
    """Reconstruction and text-edit figures on held-out drawn scenes for any ``edit(image, prompt,
    pairs) -> (image, reconstruction psnr)`` -- the DDPM editor here, FlowEdit for SD3 / Flux --
    yielding progress; ``layouts`` (filled by ``edit``) is recorded per edit row."""
    from PIL import Image

    from . import diffusion_quality as dq

    def edit_at_scene_size(image, prompt, pairs):  # ShapeEval reads pictures at the drawings' 64 px
        out, value = edit(image, prompt, pairs)
        return (out if out.size == image.size else out.resize(image.size, Image.Resampling.LANCZOS)), value

    yield Progress(0, total, f"reconstruction of {count} drawn scenes")
    rows: dict[str, Any] = {"reconstruction": dq.measure_reconstruction(
        edit_at_scene_size, dq.scenes_for(None, count, seed), prompted)}
    for i, case in enumerate(cases, 1):
        yield Progress(i, total, f"{case.label} on {count} drawn scenes")
        if layouts is not None:
            layouts.clear()
        rows[case.label] = dq.measure_edit(edit_at_scene_size, case, dq.scenes_for(case, count, seed + i), strengths,
                                           prompted)
        if layouts is not None:
            rows[case.label]["layouts"] = dict(layouts)
    return rows


def _file_direction_names(model: Any, request: Mapping[str, Any]) -> list[str]:
    """The directions the request's files add (text-embedding and h-space), by the names edits use."""
    text_set, h_set = model._direction_sets(request)
    own = set(model.directions.names()) | set(model.h_directions.names())
    return [f"{TEXT_QUALIFIER}{n}" for n in text_set.names() if n not in own] + \
        [f"{H_QUALIFIER}{n}" for n in h_set.names() if n not in own]
