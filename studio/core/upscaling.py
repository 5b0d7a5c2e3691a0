"""An "Upscale" job for any saved image (the gallery's action; `studio upscale` builds the same job).

The upscaler is the first upscaler file in ``<data>/upscalers`` when there is one, else Lanczos; the
result is a new gallery image whose metadata is the source's plus A1111's ``Postprocess`` fields.
"""

from __future__ import annotations

from typing import Any

from studio.core.jobs import JobSpec
from studio.plugin_api import Kind, ParamError


def upscale_spec(context: Any, image_path: str, scale: float = 2.0, model: str | None = None) -> JobSpec:
    plugins = context.registry.plugins(Kind.UPSCALE)
    if not plugins:
        raise ParamError("No upscaler plugin is available; see the Plugins list for why.")
    plugin = context.registry.default(Kind.UPSCALE) or plugins[0]
    if model is None:
        choices = [choice.source for choice in plugin.models()]
        model = choices[1] if len(choices) > 1 else choices[0]  # a model file beats plain Lanczos
    return JobSpec(plugin_id=plugin.id, model=model, mode="upscale", request={"image": image_path, "scale": scale},
                   options=context.load_options())


__all__ = ["upscale_spec"]
