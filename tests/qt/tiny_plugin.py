"""A tiny image plugin for the GUI tests: a real :class:`studio.plugin_api.Plugin` that paints
small PIL images step by step, so the tests exercise the whole engine → bridge → widget path
without a diffusion model.  It honours cancel and interrupt like a real plugin must.

``gate`` (a threading.Event, open by default) lets a test hold a run between steps.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from studio.plugin_api import (
    API_VERSION,
    Artifact,
    Cancelled,
    CancelToken,
    Kind,
    LoadOptions,
    ModelChoice,
    Param,
    ParamType,
    Preview,
    Progress,
    Result,
)

SCHEDULERS = ("Euler", "Euler a", "DPM++ 2M", "DDIM")


def tiny_parameters() -> list[Param]:
    return [
        Param("prompt", ParamType.TEXT, "", label="Prompt", help="What to paint."),
        Param("negative_prompt", ParamType.TEXT, "", label="Negative prompt", help="What to avoid."),
        Param("init_image", ParamType.IMAGE_PATH, None, label="Init image", help="The image to start from.",
              modes=("img2img", "inpaint")),
        Param("strength", ParamType.FLOAT, 0.6, label="Strength", minimum=0.0, maximum=1.0, step=0.05,
              help="How much to change the init image.", modes=("img2img", "inpaint")),
        Param("mask_image", ParamType.IMAGE_PATH, None, label="Mask", modes=("inpaint",)),
        Param("steps", ParamType.INT, 4, label="Steps", minimum=1, maximum=150, help="Denoising steps."),
        Param("cfg_scale", ParamType.FLOAT, 7.0, label="CFG scale", minimum=0.0, maximum=30.0, step=0.5,
              help="How closely to follow the prompt."),
        Param("scheduler", ParamType.CHOICE, "Euler", label="Sampler", choices=SCHEDULERS),
        Param("size", ParamType.SIZE, (64, 64), label="Size", multiple_of=8, maximum=1024,
              help="Width × height in pixels."),
        Param("seed", ParamType.SEED, None, label="Seed", help="Blank = random."),
        Param("batch_count", ParamType.INT, 1, label="Batch count", minimum=1, maximum=8, advanced=True),
        Param("loras", ParamType.LIST, [], label="LoRAs", advanced=True, help="LoRA files with a weight each."),
        Param("preview_every", ParamType.INT, 1, label="Preview every", minimum=0, maximum=50, advanced=True,
              help="Show a preview every N steps (0 = never)."),
    ]


class TinyModel:
    def __init__(self, plugin: TinyImagePlugin, source: str):
        self.plugin = plugin
        self.source = source
        self.device = "cpu"
        self.memory_bytes = 1024
        self.defaults: dict[str, Any] = {}
        self.choices: dict[str, Any] = {}
        self.unloaded = False

    def _paint(self, size: tuple[int, int], step: int, total: int, seed: int) -> Image.Image:
        width, height = size
        rng = random.Random(seed)
        base = (rng.randrange(60, 200), rng.randrange(60, 200), rng.randrange(60, 200))
        image = Image.new("RGB", (width, height), (20, 22, 28))
        draw = ImageDraw.Draw(image)
        grown = max(1, int(min(width, height) * 0.45 * step / max(total, 1)))
        cx, cy = width // 2, height // 2
        draw.ellipse((cx - grown, cy - grown, cx + grown, cy + grown), fill=base)
        return image

    def run(self, request: Mapping[str, Any], cancel: CancelToken) -> Iterator[object]:
        plugin = self.plugin
        plugin.runs.append(dict(request))
        steps = int(request["steps"])
        size = tuple(request["size"])
        seed = request.get("seed")
        seed = random.randrange(2**32) if seed is None else int(seed)
        every = int(request.get("preview_every", 1))
        image = None
        done = 0
        for step in range(1, steps + 1):
            while not plugin.gate.wait(0.02):
                if cancel.is_set:
                    break
            if cancel.is_set:
                if cancel.keep_partial and image is not None:
                    yield Result(self._artifacts(request, image, seed, done, 1), interrupted=True)
                    return
                raise Cancelled()
            time.sleep(plugin.step_delay)
            image = self._paint(size, step, steps, seed)
            done = step
            yield Progress(step, steps)
            if every and step % every == 0:
                yield Preview(step, image=image)
        count = int(request.get("batch_count", 1))
        yield Result(self._artifacts(request, image, seed, steps, count))

    def _artifacts(self, request: Mapping[str, Any], image: Image.Image, seed: int, steps_done: int,
                   count: int) -> tuple[Artifact, ...]:
        artifacts = []
        for index in range(count):
            width, height = request["size"]
            parameters = {
                "prompt": request.get("prompt", ""),
                "negative_prompt": request.get("negative_prompt", ""),
                "steps": request["steps"],
                "sampler": request.get("scheduler"),
                "cfg_scale": request.get("cfg_scale"),
                "seed": seed + index,
                "width": width,
                "height": height,
                "model": Path(self.source).name or self.source,
                "mode": request.get("mode", "txt2img"),
            }
            if request.get("mode") in ("img2img", "inpaint"):
                parameters["denoising_strength"] = request.get("strength")
            if request.get("loras"):
                parameters["loras"] = [(Path(e["path"]).stem, float(e["weight"])) for e in request["loras"]]
            if steps_done < request["steps"]:
                parameters["interrupted_at"] = steps_done
            artifacts.append(Artifact(Kind.IMAGE, image=image.copy(), seed=seed + index, parameters=parameters))
        return tuple(artifacts)

    def unload(self) -> None:
        self.unloaded = True


class TinyImagePlugin:
    id = "tiny"
    label = "Tiny test painter"
    kind = Kind.IMAGE
    api_version = API_VERSION

    def __init__(self, step_delay: float = 0.01, load_delay: float = 0.0):
        self.step_delay = step_delay
        self.load_delay = load_delay
        self.gate = threading.Event()
        self.gate.set()
        self.runs: list[dict[str, Any]] = []
        self.loads: list[str] = []

    def parameters(self) -> list[Param]:
        return tiny_parameters()

    def modes(self) -> list[str]:
        return ["txt2img", "img2img", "inpaint"]

    # MapsA1111, as an image plugin with A1111-style metadata has it
    _A1111 = {"prompt": "prompt", "negative_prompt": "negative_prompt", "steps": "steps", "cfg_scale": "cfg_scale",
              "seed": "seed", "sampler": "scheduler", "denoising_strength": "strength"}

    def from_a1111(self, fields: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        values = {self._A1111[k]: v for k, v in fields.items() if k in self._A1111}
        if "width" in fields and "height" in fields:
            values["size"] = (int(fields["width"]), int(fields["height"]))
        return values, [k for k in fields if k not in self._A1111 and k not in ("width", "height")]

    def models(self) -> list[ModelChoice]:
        return [ModelChoice("tiny-default", "Tiny default", "The built-in test painter")]

    def load(self, source: str, options: LoadOptions, progress) -> TinyModel:
        progress(f"Loading {source}")
        if source.startswith("missing"):
            raise FileNotFoundError(source)
        time.sleep(self.load_delay)
        self.loads.append(source)
        return TinyModel(self, source)
