"""The view-model of editing your own image on a diffusion model (no Qt, no torch).

The flow (issue #13): choose or drop an image -> one encode job (the inversion, with progress)
-> original and reconstruction with its PSNR -> edit sliders (prompt pairs "red->blue",
concepts "+hat" / "-hat", and directions: discovered "PC n" ones the user may rename, or any
loaded directions file) -> every slider tick is an *interactive* job on one lane (newest value
wins; a draft with fewer steps while dragging, full quality on release) -> save a PNG whose
metadata holds the edit recipe.  Every slider's quality is measured on the image in the
background (a short strength sweep per slider, one ordinary job each, so a slider tick -- an
interactive job -- goes ahead of them) and shown beside it in plain words (:func:`quality_words`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core.jobs import Failed, Job, JobSpec, JobState
from studio.core.sessions.base import PanelSession
from studio.plugin_api import Artifact, Kind, ParamError, Result

PLUGIN_ID = "latent-diffusion"
LANE = "latent-diffusion-edit"


@dataclass
class EditSlider:
    """One edit: ``kind`` is pair (``text`` = "FROM->TO"), concept (the concept) or direction
    (a direction's name); ``quality`` is the measured one-line summary, when measured."""

    kind: str
    text: str
    strength: float = 0.0
    label: str = ""
    quality: str = ""
    #: what the quality figures mean and how they were measured (a tooltip)
    quality_tip: str = ""
    #: the measured figures (the plugin's slider-quality row), when measured
    figures: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.label = self.label or self.text


def parse_edit(text: str) -> EditSlider:
    """ "red->blue" (pair), "+hat" / "-hat" / "hat" (concept; "-" starts it reversed) or
    "dir:NAME" (a direction)."""
    text = text.strip()
    if "->" in text:
        a, _, b = text.partition("->")
        if not a.strip() or not b.strip():
            raise ParamError(f"A prompt pair looks like FROM->TO (got {text!r}).")
        return EditSlider("pair", f"{a.strip()}->{b.strip()}")
    if text.startswith("dir:") and text[4:].strip():
        return EditSlider("direction", text[4:].strip())
    concept = text.lstrip("+-").strip()
    if not concept:
        raise ParamError("Type an edit: red->blue, +glasses, -glasses.")
    return EditSlider("concept", concept, strength=-1.0 if text.startswith("-") else 0.0,
                      label=f"{'remove' if text.startswith('-') else 'add'} {concept}")


def _num(value: Any, fmt: str = ".2f") -> str:
    return "n/a" if value is None else format(float(value), fmt)


def quality_words(row: dict[str, Any], method: str = "") -> tuple[str, str]:
    """(a compact line for beside the slider, a tooltip saying what each figure means)."""
    grade = str(row.get("grade", ""))
    strongest = max((abs(float(v)) for v in row.get("strengths") or (0.0,)), default=0.0)
    parts = []
    if grade == "no visible change":
        line = f"no visible change, even at strength {strongest:g}"
        return line, (f"Under 0.5% of the pixels moved visibly at strength {strongest:g}"
                      + (f" (measured on {method})." if method else "."))
    if row.get("selectivity") is not None:
        parts.append(f"selective {_num(row['selectivity'])} on {row.get('attribute') or '?'}")
        parts.append(f"monotonic {_num(row.get('monotonicity'))}")
    else:
        if row.get("inside") is not None:
            parts.append(f"{_num(row['inside'], '.0%')} inside its mask")
        parts.append(f"steady {_num(row.get('steady'))}")
    parts.append(f"{_num(row.get('area'), '.0%')} of the picture")
    line = f"{grade}: " + ", ".join(parts)
    tip = ["How this slider behaves on your image, from a short sweep of its strength "
           f"({', '.join(format(float(v), 'g') for v in row.get('strengths') or ())}):"]
    if row.get("selectivity") is not None:
        tip.append(f"• selective {_num(row['selectivity'])}: of everything the Shapes scorer reads back (colour, "
                   f"shape, position, size, background), the share of the change that is {row.get('attribute')} "
                   f"{'(the attribute this edit names)' if row.get('target') else '(what it changes most)'}; "
                   "1 = it changes nothing else.")
        tip.append(f"• monotonic {_num(row.get('monotonicity'))}: 1 = {row.get('attribute')} only ever moves one "
                   "way as the slider grows; lower = it goes back and forth.")
    if row.get("inside") is not None:
        tip.append(f"• {_num(row['inside'], '.0%')} inside its mask: the share of the change that lies where the "
                   "edit is about (its implicit mask); the rest leaked elsewhere.")
    tip.append(f"• steady {_num(row.get('steady'))}: 1 = the picture only ever changes more as the slider "
               "grows; lower = it jumps back and forth.")
    tip.append(f"• {_num(row.get('area'), '.0%')} of the picture visibly changes at the strongest setting.")
    tip.append("Grades: clean (selective ≥ 0.8 and monotonic ≥ 0.9), fair (≥ 0.5 and ≥ 0.7), entangled "
               "(below); no visible change (under 0.5% of the pixels move).")
    if method:
        tip.append(f"Measured on {method}.")
    return line, "\n".join(tip)


#: the plugin's ``layout`` choices (the core does not import plugins, so they are named here too)
LAYOUTS = ("auto", "keep", "reshape")


class DiffusionEditSession(PanelSession):
    kind = Kind.LATENT

    def __init__(self, context: Any, plugin_id: str | None = PLUGIN_ID) -> None:
        # Built with every Latent panel: without the diffusion plugin the session is there but says
        # so when used (never another latent plugin in its place).
        known = {p.id for p in context.registry.plugins(self.kind)}
        super().__init__(context, plugin_id if plugin_id in known else None)
        if self.plugin is not None and self.plugin.id != plugin_id:
            self.plugin = None
        self.image_path: str = ""
        self.prompt: str = ""
        self.original: Any = None
        self.reconstruction: Any = None
        self.psnr: float | None = None
        self.edited: Any = None
        self.edited_artifact: Artifact | None = None
        #: the newest edit's timing and what it applied (seconds, draft, applied, mask_share)
        self.edited_info: dict[str, Any] = {}
        self.sliders: list[EditSlider] = []
        self.direction_files: list[str] = []
        self.steps: int = 20
        #: how text edits may change the outline: "auto" (per edit, from the model's predicted change),
        #: "keep" or "reshape" -- the user's word wins over auto's guess
        self.layout: str = "auto"
        #: make text edits on a crop around the edited object, enlarged to the model's working size
        self.zoom: bool = True
        #: measure each slider's quality on the image in the background (after the inversion,
        #: when a slider is added, when directions are found)
        self.auto_measure: bool = True
        self._purpose: dict[str, tuple[str, int]] = {}  # job id -> (what it is for, slider index)
        self._measuring: set[int] = set()  # slider indices with a quality job on its way
        self._unmeasurable: set[str] = set()  # sliders whose measurement failed on this image (not retried)
        self._discoveries = 0

    # -- requests ---------------------------------------------------------------------------
    def edit_request(self, draft: bool) -> dict[str, Any]:
        pairs, concepts, edits = [], [], []
        for s in self.sliders:
            if s.kind == "pair":
                a, _, b = s.text.partition("->")
                pairs.append([a, b, s.strength])
            elif s.kind == "concept":
                concepts.append([s.text, s.strength])
            else:
                edits.append([s.text, s.strength])
        return {"image": self.image_path, "prompt": self.prompt, "pairs": pairs, "concepts": concepts,
                "edits": edits, "direction_files": list(self.direction_files), "draft": draft,
                "steps": self.steps, "layout": self.layout, "zoom": self.zoom}

    def _submit(self, mode: str, request: dict[str, Any], purpose: str, index: int = -1,
                interactive: bool = False) -> Job:
        if self.plugin is None:
            raise ParamError("The diffusion latent plugin is not available; see the Plugins list for why.")
        job = self.submit(JobSpec(plugin_id=self.plugin.id, model=self.model, mode=mode, request=request,
                                  options=self.context.load_options(), save=False, interactive=interactive,
                                  lane_key=LANE if interactive else ""))
        self._purpose[job.id] = (purpose, index)
        return job

    def owns(self, job: Job) -> bool:
        return job.id in self._purpose

    # -- commands ---------------------------------------------------------------------------
    def set_image(self, path: str, prompt: str | None = None) -> Job:
        """A new image: one encode job (inversion); the sliders stay, at their values."""
        if not Path(path).is_file():
            raise ParamError(f"Image not found: {path}")
        self.image_path = str(path)
        if prompt is not None:
            self.prompt = prompt
        self.original = self.reconstruction = self.edited = None
        self.psnr = None
        for slider in self.sliders:  # measured on the previous image
            slider.quality, slider.quality_tip, slider.figures = "", "", None
        self._measuring.clear()
        self._unmeasurable.clear()
        self.changed.emit("image")
        self.changed.emit("quality")
        return self._submit("encode", {"image": self.image_path, "prompt": self.prompt, "steps": self.steps},
                            "encode")

    def add_edit(self, text: str) -> EditSlider:
        slider = parse_edit(text)
        self.sliders.append(slider)
        self.changed.emit("sliders")
        self._measure_new()
        return slider

    def set_strength(self, index: int, value: float, dragging: bool = True) -> Job | None:
        """A slider moved: a draft preview while ``dragging``, full quality on release."""
        self.sliders[index].strength = float(value)
        if not self.image_path:
            return None
        self._preempt_measuring()
        return self._submit("edit", self.edit_request(draft=dragging), "edit", index, interactive=True)

    def set_layout(self, layout: str) -> Job | None:
        """How text edits may change outlines (``auto`` / ``keep`` / ``reshape``); the edit on show is
        rendered again with it."""
        if layout not in LAYOUTS:
            raise ParamError(f"The outline setting is one of {', '.join(LAYOUTS)} (got {layout!r}).")
        self.layout = layout
        return self._render_again()

    def set_zoom(self, on: bool) -> Job | None:
        """Whether text edits zoom in on the edited object; the edit on show is rendered again."""
        self.zoom = bool(on)
        return self._render_again()

    def _render_again(self) -> Job | None:
        if not self.image_path or not any(s.strength for s in self.sliders):
            return None
        self._preempt_measuring()
        return self._submit("edit", self.edit_request(draft=False), "edit", interactive=True)

    def _preempt_measuring(self) -> None:
        """A slider moved: stop a background quality sweep that is running (the engine runs one
        job at a time, so the preview would wait for the whole sweep); it is queued again when it
        ends, behind the preview."""
        for job_id, (purpose, _) in self._purpose.items():
            job = self.pending.get(job_id)
            if purpose == "slider-quality" and job is not None and job.state == JobState.RUNNING:
                self.context.engine.cancel(job_id)

    def remove(self, index: int) -> Job | None:
        """Drop slider ``index``; the preview is redone without it."""
        del self.sliders[index]
        self._measuring = {i - (i > index) for i in self._measuring if i != index}
        self._purpose = {k: (p, i - (i > index) if i != index else -1) for k, (p, i) in self._purpose.items()}
        self.changed.emit("sliders")
        if not self.image_path or self.reconstruction is None:
            return None
        self._preempt_measuring()
        return self._submit("edit", self.edit_request(draft=False), "edit", -1, interactive=True)

    def is_measuring(self, index: int) -> bool:
        return index in self._measuring

    def rename(self, index: int, label: str) -> None:
        self.sliders[index].label = label.strip() or self.sliders[index].text
        self.changed.emit("sliders")

    def discover(self, source: str = "h-space", count: int = 32, output: str | None = None,
                 components: int = 4) -> Job:
        """Find directions without training (PCA) and offer them as "PC n" sliders: ``source``
        h-space (the UNet's bottleneck over sampled images) or text (prompt-variation embeddings).
        Each discovery gets its own names (h1-pc1, t1-pc1, ...), so the two kinds never clash."""
        if source not in ("h-space", "text"):
            raise ParamError(f"Directions are found in h-space or text (got {source!r}).")
        self._discoveries += 1
        prefix = f"{'h' if source == 'h-space' else 't'}{self._discoveries}-pc"
        if output is None:
            folder = self.context.settings.outputs / "directions"
            folder.mkdir(parents=True, exist_ok=True)
            stem = Path(self.image_path).stem or "model"
            output = str(folder / f"{stem}-{source}-{self._discoveries}-{len(self.direction_files)}.json")
        names = [f"{prefix}{i}" for i in range(1, components + 1)]
        return self._submit("discover", {"source": source, "count": count, "prompt": self.prompt, "output": output,
                                         "components": components, "names": names}, f"discover:{source}")

    def save_directions(self, path: str) -> str:
        """The discovered directions with the user's names, as a directions file."""
        from studio.plugin_kit.latent import directions as dirfile

        if not self.direction_files:
            raise ParamError("Find or load directions first.")
        dset = dirfile.load(self.direction_files[-1])
        renamed = {s.text: s.label for s in self.sliders if s.kind == "direction"}
        out = []
        for d in dset.directions:
            name = renamed.get(d.name, d.name)
            safe = "".join(c if c.isalnum() or c in "_.:+-" else "_" for c in name)[:80] or d.name
            out.append(dirfile.Direction(name=safe, vector=d.vector, kind=d.kind, label=name, scale=d.scale,
                                         range=d.range, units=d.units, score=d.score, notes=d.notes))
        return str(dirfile.save(dirfile.DirectionSet(out, dset.space, dset.model, dset.latent_shape), path))

    def measure(self, index: int, scenes: int = 6) -> Job:
        """The quality of slider ``index``: on the image (a short strength sweep at draft steps,
        in the background) once one is inverted; before that, a colour / shape prompt pair on
        held-out drawn scenes (ShapeEval read-back)."""
        slider = self.sliders[index]
        if self.image_path and self.reconstruction is not None:
            request = {"image": self.image_path, "prompt": self.prompt, "steps": self.steps, "draft": True,
                       "layout": self.layout, "zoom": self.zoom, "sliders": [[slider.kind, slider.text]],
                       "direction_files": list(self.direction_files)}
            job = self._submit("quality", request, "slider-quality", index)
            self._measuring.add(index)
            self.changed.emit("quality")
            return job
        if slider.kind != "pair":
            raise ParamError("Open an image first: this slider's quality is measured on your image.")
        return self._submit("quality", {"scenes": scenes, "measure": [slider.text], "steps": self.steps},
                            "quality", index)

    def _measure_new(self) -> None:
        """Measure the next slider not measured on this image yet (auto_measure).  One such job at
        a time: a slider tick goes ahead of queued jobs but waits for a running one, so it never
        waits for more than one slider's sweep."""
        if not (self.auto_measure and self.image_path and self.reconstruction is not None) or self._measuring:
            return
        for i, slider in enumerate(self.sliders):
            if slider.figures is None and slider.text not in self._unmeasurable:
                self.measure(i)
                return

    def save(self, path: str) -> Path:
        """The edited image as PNG, the recipe in its metadata; never replaces a file."""
        from studio.core.store import OutputStore

        if self.edited_artifact is None:
            raise ParamError("Nothing to save yet: move a slider first.")
        target = Path(path)
        return OutputStore(target.parent).save(self.edited_artifact, exact=target)

    # -- events -----------------------------------------------------------------------------
    def on_result(self, job: Job, event: Result) -> None:
        purpose, index = self._purpose.get(job.id, ("", -1))
        info = event.info or {}
        if purpose == "encode":
            self.original, self.psnr = info.get("original"), info.get("psnr")
            self.reconstruction = event.artifacts[0].image if event.artifacts else None
            self.changed.emit("reconstruction")
            self._measure_new()
        elif purpose == "edit" and event.artifacts:
            self.edited_artifact = event.artifacts[0]
            self.edited = self.edited_artifact.image
            self.edited_info = {k: info.get(k) for k in ("seconds", "draft", "applied", "mask_share", "layout",
                                                                "zoom")}
            self.changed.emit("edited")
        elif purpose.startswith("discover"):
            saved = info.get("saved_direction")
            if saved:
                self.direction_files.append(saved)
            where = "bottleneck" if purpose.endswith("h-space") else "prompt"
            for i, d in enumerate(info.get("directions", []), 1):
                self.sliders.append(EditSlider("direction", d["name"], label=f"PC {i} · {where}"))
            self.changed.emit("sliders")
            self._measure_new()
        elif purpose == "slider-quality":
            self._measuring.discard(index)
            row = next(iter((info.get("sliders") or {}).values()), None)
            if row is not None and 0 <= index < len(self.sliders) and self.sliders[index].text == row.get("text"):
                slider = self.sliders[index]
                slider.figures = row
                slider.quality, slider.quality_tip = quality_words(row, str(info.get("method") or ""))
                self.changed.emit("quality")  # the rows' figures only: a drag in progress goes on
        elif purpose == "quality":
            row = next((r for k, r in info.get("quality", {}).items() if k != "reconstruction"), None)
            if row is not None and 0 <= index < len(self.sliders):
                mono = row.get("monotonicity")
                self.sliders[index].quality = (
                    f"{row['grade']}: reaches it in {100 * row['success']:.0f}% of {row['n']} drawn scenes, "
                    f"selectivity {row['selectivity']:.2f}, monotonic {'n/a' if mono is None else f'{mono:.2f}'}")
                self.sliders[index].quality_tip = ("Measured on held-out drawn scenes (no image open yet), read "
                                                   "back with the Shapes scorer: " + str(info.get("method") or ""))
                self.changed.emit("quality")

    def on_failed(self, job: Job, event: Failed) -> None:
        purpose, index = self._purpose.get(job.id, ("", -1))
        if purpose == "slider-quality" and 0 <= index < len(self.sliders):
            slider = self.sliders[index]
            self._unmeasurable.add(slider.text)
            slider.quality, slider.quality_tip = "could not be measured", event.message
            self.changed.emit("quality")
            return
        super().on_failed(job, event)

    def on_finished(self, job: Job, state: Any) -> None:
        purpose, index = self._purpose.pop(job.id, ("", -1))
        if purpose == "slider-quality":
            self._measuring.discard(index)
            self.changed.emit("quality")
            self._measure_new()
