"""The Image panel's view-model: values, mode and model in; jobs out; results, seeds and
restores back — everything the Image panel shows, with no Qt.

Follow one prompt: the panel's Generate button calls :meth:`ImageSession.generate`, which
builds the request from the session's values (:meth:`PanelSession.job_spec`, the one path the
CLI uses too) and queues it on the engine.  The engine runs the plugin's generator on its
worker thread; the bridge hands each event to :meth:`PanelSession.handle` on the GUI thread,
which updates progress, previews and seeds, and on ``Saved`` (the file is already written and
indexed) puts an :class:`OutputRecord` first in :attr:`ImageSession.results` and emits
``results_changed`` — the gallery redraws from that list.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from psygnal import Signal

from studio.core.context import StudioContext
from studio.core.history import OutputRecord
from studio.core.jobs import Failed, Job, JobSpec, Saved
from studio.core.metadata import read_png_parameters
from studio.core.sessions.base import PanelSession
from studio.plugin_api import Kind, MapsA1111, Param, ParamError, ParamType
from studio.plugin_kit.image_limits import bomb_sentence, image_limit

# Fields the studio itself reads (mode, model) or that only describe one output of a run: never
# reported as "not applied".
_STUDIO_KEYS = ("mode", "model", "model_hash", "model_source", "batch_index", "batch_size", "interrupted_at",
                "lora_hashes", "model_family", "load_memory")
# Load options a run records (not form values): restored only as far as the panel can.
_LOAD_KEYS = ("transformer", "quantize")

#: the denoiser weights files a transformer / UNet picker accepts (LoadOptions.transformer)
TRANSFORMER_SUFFIXES = (".gguf", ".safetensors")


@dataclass
class Restored:
    values: dict[str, Any]
    model: str | None
    mode: str | None
    ignored: list[str] = field(default_factory=list)  # fields read but not applied, with why


class ImageSession(PanelSession):
    kind = Kind.IMAGE

    #: a job of this panel saved an image: (job, Saved); after ``results`` has it first
    saved = Signal(object, object)

    def __init__(self, context: StudioContext, plugin_id: str | None = None) -> None:
        super().__init__(context, plugin_id)
        #: saved images, newest first (the gallery); filled from the history by load_results()
        self.results: list[OutputRecord] = []
        #: a separate transformer / UNet weights file (GGUF or single-file .safetensors) used with
        #: the model's other components; "" = the model's own (LoadOptions.transformer)
        self.transformer = ""

    # -- the parameters the panel treats specially ---------------------------------------------
    def _first(self, wanted: ParamType, test: Any) -> Param | None:
        return next((p for p in self.parameters() if p.type is wanted and test(p)), None)

    @property
    def mask_param(self) -> Param | None:
        """The inpaint mask (an image path the panel paints rather than picks)."""
        return self._first(ParamType.IMAGE_PATH, lambda p: "mask" in p.name)

    @property
    def init_param(self) -> Param | None:
        images = [p for p in self.parameters() if p.type is ParamType.IMAGE_PATH and "mask" not in p.name]
        return next((p for p in images if p.name == "init_image"), images[0] if images else None)

    @property
    def lora_param(self) -> Param | None:
        return self._first(ParamType.LIST, lambda p: "lora" in p.name)

    def applies(self, param: Param | None) -> bool:
        """Whether ``param`` is part of a request in the current mode."""
        return param is not None and (not param.modes or self.mode in param.modes)

    # -- commands ----------------------------------------------------------------------------------
    def set_transformer(self, path: str) -> None:
        """Use ``path`` as the denoiser weights of this panel's jobs ("" = the model's own).
        What the last load said about the model no longer holds once its weights change."""
        path = path.strip()
        if path != self.transformer:
            self.transformer = path
            self._forget_loaded_model()
            self.changed.emit("transformer")
            self.changed.emit("hints")

    def job_spec(self, **overrides: Any) -> JobSpec:
        """The job the current values describe, loaded with this panel's transformer file."""
        if "options" not in overrides:
            overrides["options"] = replace(self.context.load_options(), transformer=self._checked_transformer())
        return super().job_spec(**overrides)

    def _checked_transformer(self) -> str:
        if not self.transformer:
            return ""
        path = Path(self.transformer).expanduser()
        if path.suffix.lower() not in TRANSFORMER_SUFFIXES:
            raise ParamError(f"Transformer / UNet weights must be a .gguf or .safetensors file, not {path.name}.")
        if not path.is_file():
            raise ParamError(f"Transformer / UNet weights file not found: {path}.")
        return str(path.resolve())

    def generate(self) -> Job:
        """Queue a job with the current values.  Raises ParamError (one sentence) for bad input."""
        job = self.submit(self.job_spec())
        self._remember_model()
        return job

    def _remember_model(self) -> None:
        if self.plugin is None:
            return
        settings = self.context.settings
        before = list(settings.recent_models.get(self.plugin.id, []))
        settings.remember_model(self.plugin.id, self.model)
        if settings.recent_models.get(self.plugin.id, []) != before:
            try:
                settings.save()
            except OSError as exc:
                self.message.emit("warning", f"Could not save the recent models list: {exc}")

    def use_as_init(self, path: str) -> None:
        """Start from ``path``: switch to a mode that takes an init image (img2img first)."""
        init = self.init_param
        if init is None:
            return
        if not self.applies(init):
            modes = [m for m in self.modes() if not init.modes or m in init.modes]
            if modes:
                self.set_mode("img2img" if "img2img" in modes else modes[0])
        self.set_value(init.name, path)

    # -- results ------------------------------------------------------------------------------------
    def upscale(self, path: str, scale: float = 2.0) -> Job:
        """The gallery's Upscale action: a job on the upscaler plugin, owned by this session so its
        image joins the results (see :func:`studio.core.upscaling.upscale_spec`)."""
        from studio.core.upscaling import upscale_spec

        return self.submit(upscale_spec(self.context, path, scale))

    def load_results(self, limit: int = 500) -> None:
        """Fill the results list from the history (newest first; files that are gone are left out)."""
        records = self.context.history.outputs(Kind.IMAGE.value, limit)
        self.results = [r for r in records if Path(r.path).exists()]
        self.results_changed.emit()

    def on_saved(self, job: Job, event: Saved) -> None:
        artifact = event.artifact
        record = OutputRecord(id=event.output_id, job_id=job.id, kind=artifact.kind.value, path=str(event.path),
                              seed=artifact.seed, parameters=dict(artifact.parameters), created=time.time())
        self.results.insert(0, record)
        self.saved.emit(job, event)  # first: a view may draw the new image from memory
        self.results_changed.emit()

    def on_failed(self, job: Job, event: Failed) -> None:
        prefix = {"load": "Could not load the model", "validate": "Invalid settings"}.get(event.stage,
                                                                                             "Generation failed")
        self.message.emit("error", f"{prefix}: {event.message}")

    # -- restore -----------------------------------------------------------------------------------
    def restore_from_parameters(self, parsed: dict[str, Any], what: str = "") -> Restored:
        """Apply A1111 ``parameters`` (as parsed by core.metadata): through the plugin's
        MapsA1111 capability when it has one.  Every value is validated against the plugin's
        spec; what is not applied is listed in ``ignored`` and said in ``message``."""
        fields = {k: v for k, v in parsed.items() if k not in ("mode", "model", "model_source", *_LOAD_KEYS)}
        values, ignored = self._map_a1111(fields)
        ignored += self._load_options_not_restored(parsed)
        specs = {p.name: p for p in self.parameters()}
        applied: dict[str, Any] = {}
        for name, value in values.items():
            spec = specs.get(name)
            if spec is None:
                ignored.append(f"{name} (not a setting of this model)")
                continue
            offered = self.choices.get(name)
            try:
                clean = spec.validate(value)
                if offered and clean not in offered:
                    raise ParamError("not offered for this model")
            except ParamError as exc:
                ignored.append(f"{spec.label} {value!r} ({str(exc).rstrip('.')})")
                continue
            applied[name] = clean
        mode = parsed.get("mode")
        if mode in self.modes():
            self.set_mode(mode)
        self.set_values(applied)
        model = parsed.get("model")
        if model and not parsed.get("model_source"):
            source = self.find_model(str(model))
            if source is None:
                ignored.append(f"model “{model}” (not among the known models; kept the current one)")
            else:
                self.set_model(source)
        restored = Restored(values=applied, model=model, mode=self.mode, ignored=ignored)
        if what:
            self._report(what, restored)
        return restored

    def _load_options_not_restored(self, parsed: dict[str, Any]) -> list[str]:
        """The run's transformer file and quantization, where they differ from this panel's now:
        the history keeps only the file's name, and quantization is a Settings option."""
        notes = []
        recorded = parsed.get("transformer")
        if recorded and Path(self.transformer).name != str(recorded):
            notes.append(f"transformer “{recorded}” (choose that file under Transformer / UNet weights)")
        quantize = parsed.get("quantize")
        current = self.context.settings.quantize or "none"
        if quantize and str(quantize) != current:
            notes.append(f"quantization {quantize} (a load option in Settings, now {current})")
        return notes

    def _map_a1111(self, fields: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Through the plugin's MapsA1111 capability; without it, only fields that already carry
        one of the plugin's parameter names apply (the rest is listed, never guessed)."""
        plugin: object = self.plugin  # a capability is checked on the object, whatever protocol it is typed as
        if isinstance(plugin, MapsA1111):
            mapped, unplaced = plugin.from_a1111(fields)
            # An empty value (no LoRAs, no negative prompt) left unplaced loses nothing.
            lost = [k for k in unplaced if k not in _STUDIO_KEYS and fields.get(k) not in ("", [], (), None)]
            return dict(mapped), lost
        names = {p.name for p in self.parameters()}
        values = {k: v for k, v in fields.items() if k in names}
        return values, [k for k in fields if k not in names and k not in _STUDIO_KEYS]

    def find_model(self, name: str) -> str | None:
        """The source of the offered model ``name`` refers to (its source, label, folder or file name)."""
        for choice in self.models():
            if name in (choice.source, choice.label, Path(choice.source).name, Path(choice.source).stem):
                return choice.source
        return None

    def _report(self, what: str, restored: Restored) -> None:
        count = len(restored.values)
        text = f"Restored {count} setting{'s' if count != 1 else ''} from {what}."
        if restored.ignored:
            text += " Not applied: " + "; ".join(restored.ignored) + "."
        self.message.emit("warning" if restored.ignored else "success", text)

    def restore_from_png(self, path: str | Path) -> Restored:
        """Restore from a PNG's A1111 ``parameters``; raises ParamError when there are none."""
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
        return self.restore_from_parameters(parsed, Path(path).name)

    def restore_from_output(self, record: OutputRecord) -> Restored:
        """Restore from one of our own results; says something only when not all applied."""
        parameters = dict(record.parameters)
        restored = self.restore_from_parameters(parameters)
        # The exact model source is in our own history even when A1111 text only has a name.
        source = parameters.get("model_source")
        if source:
            self.set_model(str(source))
        if restored.ignored:
            self._report(Path(record.path).name, restored)
        return restored
