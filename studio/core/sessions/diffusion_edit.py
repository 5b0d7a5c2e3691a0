"""The view-model of editing your own image on a diffusion model (no Qt, no torch).

The flow (issue #13): choose or drop an image -> one encode job (the inversion, with progress)
-> original and reconstruction with its PSNR -> edit sliders (prompt pairs "red->blue",
concepts "+hat" / "-hat", and directions: discovered "PC n" ones the user may rename, or any
loaded directions file) -> every slider tick is an *interactive* job on one lane (newest value
wins; a draft with fewer steps while dragging, full quality on release) -> save a PNG whose
metadata holds the edit recipe.  Each slider can be measured (the quality mode on held-out
drawn scenes) and shows its figures beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core.jobs import Job, JobSpec
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


class DiffusionEditSession(PanelSession):
    kind = Kind.LATENT

    def __init__(self, context: Any, plugin_id: str | None = PLUGIN_ID) -> None:
        super().__init__(context, plugin_id)
        self.image_path: str = ""
        self.prompt: str = ""
        self.original: Any = None
        self.reconstruction: Any = None
        self.psnr: float | None = None
        self.edited: Any = None
        self.edited_artifact: Artifact | None = None
        self.sliders: list[EditSlider] = []
        self.direction_files: list[str] = []
        self.steps: int = 20
        self._purpose: dict[str, tuple[str, int]] = {}  # job id -> (what it is for, slider index)

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
                "steps": self.steps}

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
        self.changed.emit("image")
        return self._submit("encode", {"image": self.image_path, "prompt": self.prompt, "steps": self.steps},
                            "encode")

    def add_edit(self, text: str) -> EditSlider:
        slider = parse_edit(text)
        self.sliders.append(slider)
        self.changed.emit("sliders")
        return slider

    def set_strength(self, index: int, value: float, dragging: bool = True) -> Job | None:
        """A slider moved: a draft preview while ``dragging``, full quality on release."""
        self.sliders[index].strength = float(value)
        if not self.image_path:
            return None
        return self._submit("edit", self.edit_request(draft=dragging), "edit", index, interactive=True)

    def rename(self, index: int, label: str) -> None:
        self.sliders[index].label = label.strip() or self.sliders[index].text
        self.changed.emit("sliders")

    def discover(self, source: str = "h-space", count: int = 32, output: str | None = None) -> Job:
        """Find directions without training (PCA) and offer them as "PC n" sliders."""
        if output is None:
            folder = self.context.settings.outputs / "directions"
            folder.mkdir(parents=True, exist_ok=True)
            output = str(folder / f"{Path(self.image_path).stem or 'model'}-{source}-{len(self.direction_files)}.json")
        out = output
        return self._submit("discover", {"source": source, "count": count, "prompt": self.prompt, "output": out},
                            "discover")

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
        """Edit quality of a prompt-pair slider on held-out drawn scenes (ShapeEval read-back)."""
        slider = self.sliders[index]
        if slider.kind != "pair":
            raise ParamError("Quality is measured for prompt pairs such as red->blue or circle->square.")
        return self._submit("quality", {"scenes": scenes, "measure": [slider.text], "steps": self.steps},
                            "quality", index)

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
        elif purpose == "edit" and event.artifacts:
            self.edited_artifact = event.artifacts[0]
            self.edited = self.edited_artifact.image
            self.changed.emit("edited")
        elif purpose == "discover":
            saved = info.get("saved_direction")
            if saved:
                self.direction_files.append(saved)
            for d in info.get("directions", []):
                self.sliders.append(EditSlider("direction", d["name"], label=d.get("label", d["name"])))
            self.changed.emit("sliders")
        elif purpose == "quality":
            row = next((r for k, r in info.get("quality", {}).items() if k != "reconstruction"), None)
            if row is not None and 0 <= index < len(self.sliders):
                mono = row.get("monotonicity")
                self.sliders[index].quality = (
                    f"{row['grade']}: reaches it in {100 * row['success']:.0f}% of {row['n']} drawn scenes, "
                    f"selectivity {row['selectivity']:.2f}, monotonic {'n/a' if mono is None else f'{mono:.2f}'}")
                self.changed.emit("sliders")

    def on_finished(self, job: Job, state: Any) -> None:
        self._purpose.pop(job.id, None)
