"""Studio's upscaler plugin (kind ``upscale``): Lanczos, or an ESRGAN-family / spandrel model file.

Models: ``lanczos`` (no file, always offered) and the upscaler files in ``<studio home>/upscalers``;
any other file path works too.  One mode, ``upscale``: an image and a scale.  Tiled, so a large
image fits in memory; pickle files (.pth/.pt/.ckpt) are refused unless pickle is allowed.
Importing this module is cheap: torch comes with the first model file loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from studio.plugin_api import (
    API_VERSION,
    Artifact,
    Cancelled,
    CancelToken,
    Event,
    Kind,
    LoadOptions,
    ModelChoice,
    Param,
    ParamError,
    ParamType,
    Progress,
    Result,
)
from studio.plugin_kit.paths import studio_home
from studio.plugin_kit.upscale import files, lanczos

LANCZOS = "lanczos"

PARAMETERS: tuple[Param, ...] = (
    Param("image", ParamType.IMAGE_PATH, default=None, help="The image to enlarge."),
    Param("scale", ParamType.FLOAT, default=None, optional=True, minimum=1.0, maximum=8.0, step=0.5,
          help="How many times larger (empty: the model's own factor, 2 for Lanczos). A model's factor is "
               "applied as often as needed, then Lanczos brings the image to the exact size."),
    Param("tile", ParamType.INT, default=128, minimum=32, maximum=4096, advanced=True,
          help="Tile side in input pixels (smaller = less memory)."),
)


def upscalers_folder() -> Any:
    return studio_home() / "upscalers"


class UpscaleModel:
    """A loaded upscaler (``upscaler`` None = Lanczos)."""

    def __init__(self, source: str, upscaler: Any = None) -> None:
        self.source = source
        self.upscaler = upscaler
        self.device = getattr(upscaler, "device", "cpu")
        self.memory_bytes = int(getattr(upscaler, "memory_bytes", 0))
        self.defaults = {"scale": float(upscaler.scale) if upscaler is not None else 2.0}

    def run(self, request: Mapping[str, Any], cancel: CancelToken) -> Iterator[Event]:
        from PIL import Image

        from studio.plugin_kit.images import open_user_image

        path = request.get("image")
        image = open_user_image(path, "Image", "RGB")
        with Image.open(str(path)) as original:
            source_text = original.info.get("parameters")
        scale = float(request.get("scale") or (self.upscaler.scale if self.upscaler is not None else 2.0))
        tile = int(request.get("tile") or 128)
        if max(image.width, image.height) * scale > 16384:
            raise ParamError(f"{image.width}x{image.height} times {scale:g} is over 16384 pixels on a side.")
        if self.upscaler is None:
            result, applied = lanczos.upscale(image, scale), {"upscaler": lanczos.NAME}
        else:
            from studio.plugin_kit.streaming import ThreadStream
            from studio.plugin_kit.upscale import models

            with ThreadStream[Event]("studio-upscale") as stream:

                def on_tile(done: int, total: int) -> None:  # on the helper thread, after every tile
                    if cancel.is_set or stream.consumer_gone:
                        raise Cancelled()
                    stream.emit(Progress(done, total, "tiles"))

                stream.start(lambda: models.upscale(self.upscaler, image, scale, tile=tile, on_tile=on_tile))
                yield from stream
            result, applied = stream.result()  # type: ignore[misc]  # the call's (image, applied) pair
        parameters = {"mode": "upscale", "postprocess_upscale_by": scale,
                      "postprocess_upscaler": applied["upscaler"], "width": result.width, "height": result.height,
                      "source_image": str(path)}
        if source_text:
            parameters["source_parameters"] = source_text
        yield Result((Artifact(Kind.IMAGE, image=result, parameters=parameters),),
                     info={"upscaler": applied["upscaler"], "size": result.size})

    def unload(self) -> None:
        self.upscaler = None


class UpscalePlugin:
    id = "upscale"
    label = "Upscalers"
    kind = Kind.UPSCALE
    api_version = API_VERSION

    def parameters(self) -> Sequence[Param]:
        return PARAMETERS

    def modes(self) -> Sequence[str]:
        return ("upscale",)

    def models(self) -> Sequence[ModelChoice]:
        choices = [ModelChoice(LANCZOS, "Lanczos (no model)", "A plain resampling filter; always there.")]
        for path in files.in_folder(upscalers_folder()):
            choices.append(ModelChoice(str(path), path.stem, f"Upscaler file {path.name}"))
        return choices

    def load(self, source: str, options: LoadOptions, progress: Callable[[str], None]) -> UpscaleModel:
        if source.lower() == LANCZOS:
            return UpscaleModel(source)
        try:
            files.check(source, options.allow_pickle)  # a sentence before torch is imported
        except files.UpscalerFileError as exc:
            raise ParamError(str(exc)) from None
        progress("Importing torch")
        from studio.plugin_kit.devices import pick_device
        from studio.plugin_kit.upscale import models

        try:
            upscaler = models.load(source, allow_pickle=options.allow_pickle, device=pick_device(options.device))
        except files.UpscalerFileError as exc:
            raise ParamError(str(exc)) from None
        progress(f"Loaded {upscaler.name}: x{upscaler.scale} ({upscaler.library})")
        return UpscaleModel(source, upscaler)


__all__ = ["LANCZOS", "PARAMETERS", "UpscaleModel", "UpscalePlugin"]
