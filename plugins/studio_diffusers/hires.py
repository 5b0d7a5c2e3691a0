"""Hires fix, as A1111 does it: draw at the model's native size, enlarge, then a second img2img pass
at the target size with its own steps and denoising strength (so detail is redrawn, not stretched).

The enlargement is the user's choice: ``Latent`` (the first pass's latents, resized bilinearly: no
VAE round trip), ``Lanczos`` (the decoded image), or an upscaler model file (ESRGAN family /
spandrel, tiled; see :mod:`studio.plugin_kit.upscale`).  torch is imported on use only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.plugin_api import Param, ParamError, ParamType

UPSCALERS = ("Latent", "Lanczos", "Model")

PARAMETERS: tuple[Param, ...] = (
    Param("hires_scale", ParamType.FLOAT, default=1.0, minimum=1.0, maximum=4.0, step=0.25, modes=("txt2img",),
          label="Hires fix: upscale by", help="1 = off. Above 1: draw at this size, enlarge by this factor, then "
                                               "redraw details in a second pass."),
    Param("hires_strength", ParamType.FLOAT, default=0.5, minimum=0.0, maximum=1.0, step=0.05, modes=("txt2img",),
          label="Hires denoising strength", help="How much the second pass may change the enlarged image."),
    Param("hires_steps", ParamType.INT, default=0, minimum=0, maximum=150, modes=("txt2img",), advanced=True,
          label="Hires steps", help="Steps of the second pass (0 = the same as Steps)."),
    Param("hires_upscaler", ParamType.CHOICE, default="Latent", choices=UPSCALERS, modes=("txt2img",),
          label="Hires upscaler", help="Latent: resize the latents; Lanczos: resize the image; Model: the "
                                       "upscaler file below."),
    Param("hires_model", ParamType.FILE_PATH, default=None, optional=True, modes=("txt2img",), advanced=True,
          label="Hires upscaler model", help="An ESRGAN-family .safetensors file (for 'Model')."),
)


@dataclass(frozen=True)
class Hires:
    scale: float
    strength: float
    steps: int  # steps of the second pass as asked (its run count is steps * strength)
    upscaler: str  # Latent | Lanczos | Model
    model: Path | None

    def target(self, width: int, height: int, multiple: int) -> tuple[int, int]:
        """The second pass's size: scaled, rounded to the model's size multiple."""
        return (max(multiple, round(width * self.scale / multiple) * multiple),
                max(multiple, round(height * self.scale / multiple) * multiple))

    @property
    def runs(self) -> int:
        return min(int(self.steps * self.strength), self.steps)

    @property
    def label(self) -> str:
        return self.model.stem if self.upscaler == "Model" and self.model else self.upscaler

    def metadata(self) -> dict[str, Any]:
        """A1111's own field names: Hires upscale / steps / upscaler, Denoising strength."""
        return {"hires_upscale": self.scale, "hires_steps": self.steps, "hires_upscaler": self.label,
                "denoising_strength": self.strength}


def from_request(request: Any, steps: int, mode: str, allow_pickle: bool) -> Hires | None:
    scale = float(request.get("hires_scale") or 1.0)
    if mode != "txt2img" or scale <= 1.0:
        return None
    strength = float(request.get("hires_strength", 0.5))
    hires_steps = int(request.get("hires_steps") or 0) or steps
    upscaler = request.get("hires_upscaler") or "Latent"
    model = None
    if upscaler == "Model":
        if not request.get("hires_model"):
            raise ParamError("Hires upscaler 'Model' needs an upscaler file (hires_model).")
        from studio.plugin_kit.upscale import files

        try:
            model = files.check(request["hires_model"], allow_pickle)
        except files.UpscalerFileError as exc:
            raise ParamError(str(exc)) from None
    hires = Hires(scale, strength, hires_steps, upscaler, model)
    if hires.runs < 1:
        raise ParamError(f"Hires fix with denoising strength {strength:g} and {hires_steps} step(s) runs no "
                         f"second pass; raise the hires strength or steps.")
    return hires


def upscale_latents(latents: Any, size: tuple[int, int], factor: int) -> Any:
    """Latents resized to the pixel ``size`` / the VAE's ``factor`` (bilinear, like A1111's 'Latent')."""
    from torch.nn import functional

    target = (size[1] // factor, size[0] // factor)
    return functional.interpolate(latents, size=target, mode="bilinear", align_corners=False)


def upscale_images(images: list, size: tuple[int, int], upscaler: Any) -> list:
    """Decoded first-pass images enlarged to ``size`` (Lanczos, or the model then Lanczos)."""
    from studio.plugin_kit.upscale import lanczos, models

    out = []
    for image in images:
        if upscaler is None:
            out.append(lanczos.resize_to(image, size))
        else:
            big, _ = models.upscale(upscaler, image, max(size[0] / image.width, size[1] / image.height))
            out.append(lanczos.resize_to(big, size))
    return out


__all__ = ["PARAMETERS", "UPSCALERS", "Hires", "from_request", "upscale_images", "upscale_latents"]
