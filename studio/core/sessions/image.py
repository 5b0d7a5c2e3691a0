"""The Image panel's view-model: form values in, jobs out, gallery and restore.

Plain Python: the Qt panel only shows what this holds and forwards clicks to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core.context import StudioContext
from studio.core.history import OutputRecord
from studio.core.jobs import Job, JobSpec
from studio.plugin_kit.image_limits import bomb_sentence, image_limit
from studio.core.metadata import read_png_parameters
from studio.plugin_api import Kind, ModelChoice, Param, ParamError

# A1111 keys (as parsed by core.metadata) -> the diffusers plugin's parameter names.
_RESTORE_KEYS = {
    "prompt": "prompt",
    "negative_prompt": "negative_prompt",
    "steps": "steps",
    "cfg_scale": "cfg_scale",
    "seed": "seed",
    "sampler": "scheduler",
    "denoising_strength": "strength",
}


@dataclass
class Restored:
    values: dict[str, Any]
    model: str | None
    mode: str | None
    ignored: list[str]  # fields we read but the form has no place for


class ImageSession:
    kind = Kind.IMAGE

    def __init__(self, context: StudioContext, plugin_id: str | None = None):
        self.context = context
        plugins = context.registry.plugins(Kind.IMAGE)
        if plugin_id is None and plugins:
            plugin_id = plugins[0].id
        self.plugin = context.registry.get(plugin_id) if plugin_id else None
        self.mode: str | None = self.modes()[0] if self.modes() else None
        self.model: str = self._first_model()
        self.values: dict[str, Any] = {p.name: p.default for p in self.parameters()}

    # -- what the form shows -------------------------------------------------------------
    def parameters(self) -> list[Param]:
        return list(self.plugin.parameters()) if self.plugin else []

    def visible_parameters(self) -> list[Param]:
        return [p for p in self.parameters() if not p.modes or self.mode in p.modes]

    def modes(self) -> list[str]:
        return list(self.plugin.modes()) if self.plugin else []

    def models(self) -> list[ModelChoice]:
        offered = list(self.plugin.models()) if self.plugin else []
        known = {m.source for m in offered}
        recent = self.context.settings.recent_models.get(self.plugin.id, []) if self.plugin else []
        return offered + [ModelChoice(source=s, label=Path(s).name or s) for s in recent if s not in known]

    def model_defaults(self, source: str) -> dict[str, Any]:
        """Values that suit ``source`` before it is loaded (from the plugin's ModelChoice)."""
        for choice in self.models():
            if choice.source == source:
                return dict(choice.defaults)
        return {}

    def _first_model(self) -> str:
        models = self.models()
        return models[0].source if models else ""

    # -- actions ---------------------------------------------------------------------------
    def set_model(self, source: str) -> None:
        self.model = source.strip()

    def generate(self) -> Job:
        """Queue a job with the current values.  Raises ParamError for bad input."""
        if self.plugin is None:
            raise ParamError("No image plugin is available; see the Plugins list for why.")
        spec = JobSpec(plugin_id=self.plugin.id, model=self.model, mode=self.mode,
                       request=self.request_values(), options=self.context.load_options())
        job = self.context.engine.submit(spec)
        self.context.settings.remember_model(self.plugin.id, self.model)
        return job

    def request_values(self) -> dict[str, Any]:
        names = {p.name for p in self.visible_parameters()}
        return {k: v for k, v in self.values.items() if k in names}

    def interrupt(self, job: Job) -> None:
        self.context.engine.interrupt(job.id)

    def remove_queued(self, job: Job) -> None:
        self.context.engine.cancel(job.id)

    def gallery(self, limit: int = 500) -> list[OutputRecord]:
        return [r for r in self.context.history.outputs(Kind.IMAGE.value, limit) if Path(r.path).exists()]

    # -- restore ---------------------------------------------------------------------------
    def restore_from_parameters(self, parsed: dict[str, Any]) -> Restored:
        names = {p.name for p in self.parameters()}
        values: dict[str, Any] = {}
        ignored = []
        for key, value in parsed.items():
            target = _RESTORE_KEYS.get(key)
            if target and target in names:
                values[target] = value
            elif key not in ("width", "height", "size", "model", "model_hash", "mode", "batch_index"):
                ignored.append(key)
        if "width" in parsed and "height" in parsed and "size" in names:
            values["size"] = (int(parsed["width"]), int(parsed["height"]))
        choices = self._scheduler_names()
        if "scheduler" in values and choices and values["scheduler"] not in choices:
            ignored.append(f"sampler {values.pop('scheduler')!r}")
        self.values.update(values)
        mode = parsed.get("mode")
        if mode in self.modes():
            self.mode = mode
        model = parsed.get("model")
        return Restored(values=values, model=model, mode=self.mode, ignored=ignored)

    def restore_from_png(self, path: str | Path) -> Restored:
        from PIL import Image

        try:
            with image_limit():  # a dropped decompression bomb is refused at its header
                parsed = read_png_parameters(str(path))
        except Image.DecompressionBombError as exc:
            raise ParamError(bomb_sentence(exc, f"image {path}")) from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise ParamError(f"Cannot read {path}: {exc}") from None
        if parsed is None:
            raise ParamError(f"{Path(path).name} has no generation parameters to restore.")
        return self.restore_from_parameters(parsed)

    def restore_from_output(self, record: OutputRecord) -> Restored:
        restored = self.restore_from_parameters(dict(record.parameters))
        # The exact model source is in our own history even when A1111 text only has a name.
        source = record.parameters.get("model_source")
        if source:
            self.model = source
        return restored

    def _scheduler_names(self) -> list[str]:
        for p in self.parameters():
            if p.name == "scheduler":
                return list(p.choices)
        return []
