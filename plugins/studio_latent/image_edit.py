"""Edit the user's own image on a diffusion pipeline, one attribute at a time (torch).

1. **Encode** once per (image content, model, size): the VAE latent (posterior mean), optionally
   refined by a few gradient steps so the decoder gives the picture back more closely; the
   decoded latent is "the reconstruction" and its PSNR is reported.
2. **Invert** once per (steps, skip, prompt) with :func:`ddpm_edit.invert`; amount 0 needs no
   UNet call at all -- it *is* the reconstruction.
3. **Edit**: every edit is a pair of condition rows whose difference is added to the source
   prediction (semantic guidance): a prompt pair "FROM->TO" (the prompt with FROM replaced by
   TO against the prompt; with no prompt, TO against FROM), a concept (the concept against the
   empty prompt; a negative strength removes it), a text-embedding direction (the source
   embedding moved along it against the source) or an h-space direction (the source row with
   its bottleneck shifted).  Text edits get an implicit mask (:func:`ddpm_edit.implicit_masks`)
   so a colour edit recolours the object, not the background.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from PIL import Image

from . import ddpm_edit, mask_snap
from .denoiser import Conditions, Denoiser, cross_attention_capture, token_positions

#: strength 1 of a text edit = this many times the guidance difference.  Chosen on the built-in model
#: with masks snapped to the image's regions and kept-layout edits low-passed (below), on 40 drawn tuning
#: scenes per edit (quality seeds 2+4 for red->blue, 3+5 for circle->square; the reported figures use
#: other seeds): red->blue 67.5 / 77.5 / 80 / 77.5 % clean at gains 3 / 4 / 6 / 8 (with the low-pass),
#: circle->square 42.5 / 50 / 37.5 % at 4 / 6 / 8
TEXT_GAIN = 6.0
#: latent pixels of the low-pass a kept-layout text edit's guidance gets (:class:`ddpm_edit.Guide` ``smooth``).
#: A colour, tone or background change is broad; the fine part of the guidance difference is the model
#: redrawing outlines its own way -- which the kept layout is there to prevent.  On the red->blue tuning
#: scenes (gain 4): 0 / 0.7 / 1.5 / 3 -> 67.5 / 70 / 72.5 / 67.5 % clean (shape losses 8 -> 5 -> 4 -> 1, but
#: the colour no longer reached at 3)
KEEP_SMOOTH = 1.5
# A kept-layout text edit also samples with the unedited picture's self-attention maps
# (:class:`ddpm_edit.Guide` ``structure``): on 80 drawn tuning scenes (quality seeds 2, 4, 6, 8) red->blue went
# from 76 % clean to 87.5 % (shape losses 7 -> 2, position / count 4 -> 2), at one more UNet row per step
#: fixed noise seed of the inversion: the same image always inverts to the same chain
INVERSION_SEED = 0
CACHE_SIZE = 8
#: latent pixels an implicit mask is grown by.  Chosen on 10 drawn tuning scenes per edit (quality seed 1;
#: the reported figures use other seeds): 0 kept shape and position better for red->blue (7/10 vs 5/10)
#: and did no worse for circle->square (3/10 vs 2/10); the soft border leaves a reshaped object some room
MASK_GROW = 0
#: how an edit may change the layout.  "keep": the stored residuals carry the image's outlines through
#: every step (colour, texture, background edits; a shape that fits inside the old one).  "reshape":
#: inside each text edit's mask, grown to the bounding box of each of its parts plus ``RESHAPE_GROW``
#: latent pixels, the residuals give way to fresh noise (fully at strength 1) while the region's low
#: frequencies are held (:func:`ddpm_edit.sample`): for shapes that need room the old one did not take.
#: "auto" decides per edit from the change the model predicts for this image (:func:`ddpm_edit.broad_share`)
LAYOUTS = ("auto", "keep", "reshape")
#: "auto" reshapes an edit when less than this share of its predicted change is broad.  Measured on
#: 3-5 drawn scenes each of quality seeds 2-9 and 31-36: colour edits 0.21-0.67, background edits
#: 0.35-0.72, circle->square and triangle->circle 0.06-0.14, square->triangle 0.08-0.32 (it works in
#: either layout: the new shape fits inside the old)
AUTO_BROAD = 0.18
RESHAPE_GROW = 1
#: "zoom": a text edit on one object is made on a crop centred on it, in which the object spans
#: ``FRAME_SHARE`` of the side, resized to the working size and blended back (much as A1111's "inpaint only
#: masked" works on the masked part at full resolution).  A model draws a shape well only at the sizes and
#: places it learned: the built-in one squares off a circle of half-width 10.4-10.7 px in 15 of 18 edits and
#: one of 8-9 px in none.  On 40 drawn tuning scenes (quality seeds 3+5; the reported figures use other
#: seeds), circle->square was 42.5 % clean without the zoom; with it, at object spans of 0.31 / 0.333 /
#: 0.355 / 0.38 of the crop, 55 / 82.5 / 87.5 / 27.5 %; red->blue (seeds 2+4) 87.5 % without, 90 % at 0.345
FRAME_SHARE = 0.345
#: past this the crop is mostly resampling blur
MAX_ZOOM = 4.0
#: a part that would need a crop this many times the picture's side (a background, most of the scene) is
#: edited on the whole picture: shrinking it would only lose detail.  A crop past the picture's edges is
#: filled with its edge pixels (:func:`padded_crop`); only the picture's part comes back
MAX_SHRINK = 1.25


@dataclass
class Encoded:
    key: str
    seen: Image.Image
    x0: torch.Tensor
    reconstruction: Image.Image
    psnr: float
    seconds: float
    inversions: dict = field(default_factory=dict)
    #: the picture as given, before it was resized to the working size: a zoomed edit crops from it
    source: Image.Image | None = None
    refine: int = 0
    #: the picture's size as given (``source`` may be smaller): what a zoom's crop is reported in
    given: tuple[int, int] = (0, 0)
    #: implicit masks depend on the image, the prompt and the edit's words -- not on its strength --
    #: so a slider drag computes them once
    masks: dict = field(default_factory=dict)


@dataclass
class EditSpec:
    pairs: Sequence[tuple[str, str, float]] = ()
    concepts: Sequence[tuple[str, float]] = ()
    #: (name, vector of the prompt embedding's shape, amount * scale)
    text_directions: Sequence[tuple[str, np.ndarray, float]] = ()
    #: (name, bottleneck shift for amount * scale) -- already multiplied
    h_directions: Sequence[tuple[str, np.ndarray]] = ()
    masks: bool = True
    #: intersect the implicit masks with the cross-attention of the edited words (LEDITS++)
    attention: bool = True
    #: one of ``LAYOUTS``; applies to the prompt pairs and concepts
    layout: str = "auto"
    #: give the implicit masks the outline of the image's own regions (:mod:`mask_snap`)
    snap: bool = True
    #: make text edits on a small object on an enlarged crop around it (``FRAME_SHARE``)
    zoom: bool = True

    def applied(self) -> list[str]:
        out = [f"{a}->{b} x{s:g}" for a, b, s in self.pairs if s]
        out += [f"{'+' if s > 0 else '-'}{c} x{abs(s):g}" for c, s in self.concepts if s]
        out += [f"{n} x{w:g}" for n, _, w in self.text_directions if w]
        out += [n for n, v in self.h_directions if np.any(v)]
        return out


def psnr(a: Image.Image, b: Image.Image) -> float:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    mse = float(np.mean((x - y) ** 2))
    return float("inf") if mse <= 0 else float(10 * np.log10(255.0 ** 2 / mse))


class ImageEditor:
    def __init__(self, pipe: Any, xl: bool, model_name: str):
        self.pipe, self.xl, self.model_name = pipe, xl, model_name
        self._cache: OrderedDict[str, Encoded] = OrderedDict()
        self._texts: dict = {}  # prompt embeddings, shared by every Conditions built here

    # -------------------------------------------------------------------------- VAE
    def _scale(self) -> tuple[float, float]:
        cfg = self.pipe.vae.config
        return float(cfg.scaling_factor), float(getattr(cfg, "shift_factor", None) or 0.0)

    @torch.no_grad()
    def decode(self, latent: torch.Tensor) -> Image.Image:
        scale, shift = self._scale()
        vae = self.pipe.vae
        y = vae.decode((latent / scale + shift).to(vae.device, vae.dtype)).sample
        arr = ((y[0].float().permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().byte().cpu().numpy()
        return Image.fromarray(arr)

    def encode(self, image: Image.Image, size: tuple[int, int], refine: int) -> Encoded:
        """The image's latent, cached by its pixels (not its file name) and the model."""
        seen = image.convert("RGB")
        if seen.size != size:
            seen = seen.resize(size, Image.Resampling.LANCZOS)
        digest = hashlib.sha256(seen.tobytes()).hexdigest()[:20]
        key = f"{self.model_name}:{size[0]}x{size[1]}:r{refine}:{digest}"
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        started = time.perf_counter()
        vae = self.pipe.vae
        scale, shift = self._scale()
        x = torch.from_numpy(np.asarray(seen, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
        x = x.to(vae.device, vae.dtype)
        with torch.no_grad():
            z = vae.encode(x).latent_dist.mean.float()
        if refine > 0:
            z = self._refine(z, x.float(), refine)
        x0 = (z - shift) * scale
        rec = self.decode(x0)
        # the zoom crops from the picture as given, which need not be larger than its largest zoom needs
        # (a 12-megapixel photo would otherwise be held in every cache entry)
        source = image.convert("RGB")
        factor = MAX_ZOOM * max(size[0] / source.width, size[1] / source.height)
        if factor < 1.0:
            source = source.resize((max(1, round(source.width * factor)), max(1, round(source.height * factor))),
                                   Image.Resampling.LANCZOS)
        enc = Encoded(key, seen, x0, rec, psnr(seen, rec), time.perf_counter() - started, source=source,
                      refine=refine, given=image.size)
        self._cache[key] = enc
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return enc

    def _refine(self, z: torch.Tensor, target: torch.Tensor, steps: int) -> torch.Tensor:
        """A few Adam steps on the latent so that the decoder reproduces the picture: the VAE's
        encoder alone loses hard edges (about 1.5 dB on a drawn 64x64 shape in 40 steps)."""
        vae = self.pipe.vae
        z = z.clone().requires_grad_(True)
        opt = torch.optim.Adam([z], lr=0.05)
        for p in vae.decoder.parameters():
            p.requires_grad_(False)
        try:
            for _ in range(steps):
                y = vae.decode(z.to(vae.dtype)).sample.float()
                loss = torch.nn.functional.mse_loss(y, target)
                opt.zero_grad()
                loss.backward()
                opt.step()
        finally:
            for p in vae.decoder.parameters():
                p.requires_grad_(True)
        return z.detach()

    # -------------------------------------------------------------------------- inversion
    def inversion(self, enc: Encoded, prompt: str, steps: int, skip: float) -> ddpm_edit.Inversion:
        key = (prompt, int(steps), round(float(skip), 4))
        if key not in enc.inversions:
            schedule = ddpm_edit.Schedule.from_config(self.pipe.scheduler.config, steps)
            conds = Conditions(self.pipe, enc.seen.size, self.xl, [prompt], self._texts)
            enc.inversions[key] = (schedule, ddpm_edit.invert(Denoiser(self.pipe.unet, conds, only=0), schedule,
                                                              enc.x0, skip, INVERSION_SEED))
        return enc.inversions[key]

    # -------------------------------------------------------------------------- edits
    def _snapped(self, enc: Encoded, cue: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """(mask, whether it follows the image's regions): the cue itself when it points at none."""
        if "segments" not in enc.masks:
            enc.masks["segments"] = mask_snap.segments(enc.seen)
        mask = mask_snap.snap(cue, enc.masks["segments"])
        return (cue, False) if mask is None else (mask, True)

    def _broad(self, enc: Encoded, key: Any, model: Any, schedule: ddpm_edit.Schedule, inv: ddpm_edit.Inversion,
               guides: Sequence[ddpm_edit.Guide]) -> list[float]:
        """:func:`ddpm_edit.broad_share` of the text edits, cached per edit like their masks (not per
        strength); an edit at strength 0 is not measured (1.0: it changes nothing either way)."""
        keys = [("broad", key, model.conds.labels[g.plus], model.conds.labels[g.minus]) for g in guides]
        todo = [k for k, (g, full) in enumerate(zip(guides, keys, strict=True)) if g.amount and full not in enc.masks]
        if todo:
            shares = ddpm_edit.broad_share(model, schedule, inv, [(guides[k].plus, guides[k].minus) for k in todo])
            for k, share in zip(todo, shares, strict=True):
                enc.masks[keys[k]] = share
        return [float(enc.masks.get(full, 1.0)) for full in keys]

    def edit(self, enc: Encoded, prompt: str, steps: int, skip: float, spec: EditSpec,
             on_step: Callable[[int, int], None] | None = None, quick: bool = False) -> tuple[Image.Image, dict]:
        """``enc`` edited as ``spec`` says.  ``quick`` (a preview while a slider drags): a zoomed edit's
        crop is encoded without the latent fit, which is most of a first preview's time (0.5 of 1.0 s
        on the built-in model); the full-quality render on release fits it."""
        schedule, inv = self.inversion(enc, prompt, steps, skip)
        conds = Conditions(self.pipe, enc.seen.size, self.xl, [prompt], self._texts)
        guides: list[ddpm_edit.Guide] = []
        masked: list[int] = []
        looks: list[tuple[int, list[int]] | None] = []  # (row, tokens) whose cross-attention locates the edit
        tok = self.pipe.tokenizer
        for a, b, strength in spec.pairs:
            pattern = re.compile(rf"\b{re.escape(a)}\b", re.IGNORECASE)
            if prompt and pattern.search(prompt):
                plus, minus = conds.add(pattern.sub(b, prompt)), 0
                looks.append((0, token_positions(tok, prompt.lower(), a.lower())))
            else:
                plus, minus = conds.add(b), conds.add(a)
                looks.append((minus, token_positions(tok, a.lower(), a.lower())))
            masked.append(len(guides))
            guides.append(ddpm_edit.Guide(plus, minus, strength * TEXT_GAIN))
        for concept, strength in spec.concepts:
            masked.append(len(guides))
            row = conds.add(concept)
            looks.append((row, token_positions(tok, concept.lower(), concept.lower())))
            guides.append(ddpm_edit.Guide(row, conds.add(""), strength * TEXT_GAIN))
        texts = len(guides)  # the prompt pairs and concepts: the edits a layout applies to
        for name, vector, weight in spec.text_directions:
            looks.append(None)
            masked.append(len(guides))
            row = conds.add_moved(0, torch.from_numpy(np.asarray(vector, dtype=np.float32)), f"dir:{name}")
            guides.append(ddpm_edit.Guide(row, 0, weight))
        if spec.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)} (got {spec.layout!r})")
        layouts = ["keep" if spec.layout == "auto" else spec.layout] * texts
        shifts: list[tuple[int, np.ndarray]] = []
        for name, shift in spec.h_directions:
            row = conds.add_moved(0, torch.zeros_like(conds.hidden(0)), f"h:{name}")
            shifts.append((row, shift))
            guides.append(ddpm_edit.Guide(row, 0, 1.0 if np.any(shift) else 0.0))  # amount 0: no change at all
        shift_rows = None
        if shifts:
            shape = shifts[0][1].shape
            shift_rows = torch.zeros((len(conds), *shape), dtype=torch.float32)
            for row, shift in shifts:
                shift_rows[row] = torch.from_numpy(np.asarray(shift, dtype=np.float32))
            shift_rows = shift_rows.to(enc.x0.device)
        model = Denoiser(self.pipe.unet, conds, shift_rows)
        mask_share: list[float] = []
        snapped: list[bool] = []
        broad: list[float] = []
        if spec.masks and masked and any(guides[i].amount for i in masked):
            # cached per edit, not per set of sliders: a slider added at 0 costs the others nothing, and an
            # edit at strength 0 needs no mask (an empty one stands in: it changes nothing either way)
            base = ("mask", prompt, steps, round(float(skip), 4), spec.attention, MASK_GROW, spec.snap)
            keys = [(*base, conds.labels[guides[i].plus], conds.labels[guides[i].minus]) for i in masked]
            todo = [k for k, i in enumerate(masked) if guides[i].amount and keys[k] not in enc.masks]
            if todo:
                cues = ddpm_edit.implicit_masks(
                    model, schedule, inv, [(guides[masked[k]].plus, guides[masked[k]].minus) for k in todo],
                    [looks[k] for k in todo] if spec.attention else (),
                    lambda store: cross_attention_capture(self.pipe.unet, store), grow=MASK_GROW)
                for k, cue in zip(todo, cues, strict=True):
                    enc.masks[keys[k]] = self._snapped(enc, cue) if spec.snap else (cue, False)
            empty = (torch.zeros_like(enc.x0[:, :1]), False)
            chosen = [enc.masks.get(key, empty) for key in keys]
            masks = [m for m, _ in chosen]
            snapped = [done for _, done in chosen]
            # the zoom frames one object: a direction from a file or the bottleneck acts on the whole picture
            whole = any(w for *_, w in spec.text_directions) or any(np.any(v) for _, v in spec.h_directions)
            if spec.zoom and not whole:
                active = [k for k, i in enumerate(masked) if guides[i].amount]
                box = self._frame(enc, [masks[k] for k in active], all(snapped[k] for k in active))
                if box is not None:
                    return self._edit_framed(enc, box, prompt, steps, skip, spec, on_step, masks, snapped, quick)
            if spec.layout == "auto" and texts:
                broad = self._broad(enc, (prompt, steps, round(float(skip), 4)), model, schedule, inv, guides[:texts])
                layouts = ["reshape" if b < AUTO_BROAD else "keep" for b in broad]
            for i, m in zip(masked, masks, strict=True):
                if i < texts and layouts[i] == "reshape":
                    m = ddpm_edit.boxed(m, RESHAPE_GROW)
                guides[i].mask = m
                mask_share.append(round(float((m > 0.5).float().mean()), 3))
        elif spec.layout == "auto" and texts and any(g.amount for g in guides[:texts]):
            broad = self._broad(enc, (prompt, steps, round(float(skip), 4)), model, schedule, inv, guides[:texts])
            layouts = ["reshape" if b < AUTO_BROAD else "keep" for b in broad]
        for g, layout in zip(guides[:texts], layouts, strict=True):
            if layout == "reshape":
                g.reshape, g.full = 1.0, TEXT_GAIN
            else:
                g.smooth, g.structure = KEEP_SMOOTH, True
        latent = ddpm_edit.sample(model, schedule, inv, guides, on_step=on_step)
        info = {"mask_share": mask_share, "snapped": snapped, "rows": len(conds), "steps": len(inv.steps),
                "layout": layouts, "broad_share": [round(b, 3) for b in broad], "zoom": None,
                "masks": [guides[i].mask for i in masked if guides[i].mask is not None]}  # for slider quality
        return (enc.reconstruction if latent is inv.x0 else self.decode(latent)), info

    # -------------------------------------------------------------------------- zoom
    def _frame(self, enc: Encoded, masks: Sequence[torch.Tensor], snapped: bool) -> tuple[int, int, int, int] | None:
        """The crop of ``enc.source`` (left, top, right, bottom pixels) a zoomed edit works on, or None
        when the edited part is already large enough (or there is none)."""
        if not masks or enc.source is None:
            return None
        union = torch.stack([m.float() for m in masks]).amax(dim=0)
        extent = mask_snap.extent(union, enc.masks.get("segments") if snapped else None)
        if extent is None:
            return None
        return frame_box(extent, enc.source.size)

    def _edit_framed(self, enc: Encoded, box: tuple[int, int, int, int], prompt: str, steps: int, skip: float,
                     spec: EditSpec, on_step: Callable[[int, int], None] | None, masks: list[torch.Tensor],
                     snapped: list[bool], quick: bool = False) -> tuple[Image.Image, dict]:
        """The edit made on the crop ``box`` at the working size, blended back into the reconstruction."""
        assert enc.source is not None
        crop = self.encode(padded_crop(enc.source, box), enc.seen.size, 0 if quick else enc.refine)
        out, info = self.edit(crop, prompt, steps, skip, replace(spec, zoom=False), on_step)
        (w, h), (sw, sh) = enc.seen.size, enc.source.size
        left, top = round(box[0] * w / sw), round(box[1] * h / sh)
        right, bottom = max(left + 1, round(box[2] * w / sw)), max(top + 1, round(box[3] * h / sh))
        patch = out.resize((right - left, bottom - top), Image.Resampling.LANCZOS)
        alpha = feather(patch.size, (left, top, w - right, h - bottom))
        inside = (max(0, -left), max(0, -top), patch.width - max(0, right - w), patch.height - max(0, bottom - h))
        result = enc.reconstruction.copy()
        result.paste(patch.crop(inside), (max(0, left), max(0, top)), alpha.crop(inside))
        zoom = round(min(sw / (box[2] - box[0]), sh / (box[3] - box[1])), 2)
        gw, gh = enc.given if enc.given[0] else (sw, sh)
        given_box = [round(box[0] * gw / sw), round(box[1] * gh / sh), round(box[2] * gw / sw), round(box[3] * gh / sh)]
        # the masks and their shares as the whole picture has them (slider figures measure outside them)
        info.update(masks=masks, snapped=snapped, zoom={"factor": zoom, "box": given_box},
                    mask_share=[round(float((m > 0.5).float().mean()), 3) for m in masks])
        return result, info


def frame_box(extent: tuple[float, float, float, float], size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The crop, in pixels of a picture of ``size``, centred on the part at ``extent`` (fractions of the
    picture: left, top, right, bottom), in which the part spans ``FRAME_SHARE`` of the side; the
    picture's aspect.  It may reach past the picture's edges.  None for a part too large to frame
    (``MAX_SHRINK``)."""
    width, height = size
    x0, y0, x1, y1 = extent
    side = max(x1 - x0, y1 - y0) / FRAME_SHARE  # the crop's side as a share of the picture's
    if side > MAX_SHRINK:
        return None
    side = max(side, 1.0 / MAX_ZOOM)
    cw, ch = max(8, round(side * width)), max(8, round(side * height))
    left, top = round((x0 + x1) / 2 * width - cw / 2), round((y0 + y1) / 2 * height - ch / 2)
    if (left, top, cw, ch) == (0, 0, width, height):
        return None
    return left, top, left + cw, top + ch


def padded_crop(image: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    """``image`` cropped to ``box``; where the box reaches past the picture, its edge pixels repeated."""
    left, top, right, bottom = box
    pad = (max(0, -top), max(0, bottom - image.height)), (max(0, -left), max(0, right - image.width)), (0, 0)
    arr = np.pad(np.asarray(image.convert("RGB")), pad, mode="edge")
    x, y = left + pad[1][0], top + pad[0][0]
    return Image.fromarray(arr[y:y + bottom - top, x:x + right - left])


def feather(size: tuple[int, int], room: tuple[int, int, int, int]) -> Image.Image:
    """An alpha ("L") of ``size`` that fades to nothing over its outer tenth on each side that has
    picture around it (``room``: pixels beyond the left, top, right and bottom edge), so a pasted crop
    leaves no seam; on a side at the picture's edge it stays opaque."""
    w, h = size
    ramp = max(1, round(0.1 * min(w, h)))
    xs, ys = np.arange(w, dtype=np.float32) + 0.5, np.arange(h, dtype=np.float32) + 0.5
    ax = np.ones(w, dtype=np.float32)
    ay = np.ones(h, dtype=np.float32)
    if room[0] > 0:
        ax = np.minimum(ax, xs / ramp)
    if room[2] > 0:
        ax = np.minimum(ax, (w - xs) / ramp)
    if room[1] > 0:
        ay = np.minimum(ay, ys / ramp)
    if room[3] > 0:
        ay = np.minimum(ay, (h - ys) / ramp)
    alpha = np.clip(np.outer(ay, ax), 0.0, 1.0)
    return Image.fromarray((alpha * 255).round().astype(np.uint8), "L")
