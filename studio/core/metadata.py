"""A1111-style ``parameters`` text: the de-facto standard other tools read from PNGs.

Format (one prompt block, an optional negative line, then one line of ``Key: value`` pairs)::

    a red circle
    Negative prompt: blurry
    Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 64x64, Model hash: 0123456789, Model: shapes-sd

Values that contain a comma, colon or quote are written JSON-quoted, as A1111 does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

# (A1111 label, our parameter key) in the order A1111 writes them.
_FIELDS: tuple[tuple[str, str], ...] = (
    ("Steps", "steps"),
    ("Sampler", "sampler"),
    ("Schedule type", "schedule_type"),
    ("CFG scale", "cfg_scale"),
    ("Distilled CFG Scale", "distilled_guidance"),  # Forge's name for Flux.1-dev's embedded guidance
    ("Seed", "seed"),
    ("Size", "size"),
    ("Model hash", "model_hash"),
    ("Model", "model"),
    # The denoiser weights file used with the model's other components, and load-time quantization.
    ("Transformer", "transformer"),
    ("Quantization", "quantize"),
    ("Denoising strength", "denoising_strength"),
    ("Hires upscale", "hires_upscale"),
    ("Hires steps", "hires_steps"),
    ("Hires upscaler", "hires_upscaler"),
    ("Batch size", "batch_size"),
    ("Batch pos", "batch_index"),
    ("Lora hashes", "lora_hashes"),
    ("Mode", "mode"),
    ("Template", "prompt_template"),
    ("Negative Template", "negative_template"),
    ("Mask blur", "mask_blur"),
    ("Masked content", "masked_content"),
    ("Inpaint area", "inpaint_area"),
    ("Masked area padding", "masked_padding"),
    ("IP-Adapter", "image_prompt_model"),
    ("IP-Adapter image", "image_prompt"),
    ("IP-Adapter weight", "image_prompt_weight"),
    ("Postprocess upscale by", "postprocess_upscale_by"),
    ("Postprocess upscaler", "postprocess_upscaler"),
)
_LABEL_TO_KEY = {label: key for label, key in _FIELDS}
_KEY_TO_LABEL = {key: label for label, key in _FIELDS}

_PAIR = re.compile(r'\s*([\w][\w \-/+]*):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:g}"
    else:
        text = str(value)
    if any(ch in text for ch in ',:"\n'):
        return json.dumps(text, ensure_ascii=False)
    return text


def format_parameters(params: Mapping[str, Any]) -> str:
    """Render a parameters dict (the keys image plugins put in ``Artifact.parameters``).

    ``source_parameters`` (an upscaled image's source text) is kept as it was, with this step's
    ``Postprocess ...`` fields appended to its settings line, as A1111's Extras tab does."""
    if params.get("source_parameters"):
        extra = ", ".join(f"{label}: {_format_value(params[key])}" for label, key in _FIELDS
                          if key.startswith("postprocess_") and params.get(key) not in (None, ""))
        source = str(params["source_parameters"]).rstrip()
        return f"{source}, {extra}" if extra and "Steps:" in source.split("\n")[-1] else (
            f"{source}\n{extra}" if extra else source)
    lines = [str(params.get("prompt", "")).strip()]
    negative = str(params.get("negative_prompt") or "").strip()
    if negative:
        lines.append(f"Negative prompt: {negative}")
    values = dict(params)
    if "width" in values and "height" in values and "size" not in values:
        values["size"] = f"{values['width']}x{values['height']}"
    loras = values.get("loras")
    if loras and "lora_hashes" not in values:
        values["lora_hashes"] = ", ".join(f"{name}: {float(weight):g}" for name, weight in _lora_pairs(loras))
    pairs = []
    for label, key in _FIELDS:
        value = values.get(key)
        if value is None or value == "" or (key == "denoising_strength" and values.get("mode") == "txt2img"
                                            and not values.get("hires_upscale")):
            continue
        if key == "batch_index" and not values.get("batch_size"):
            continue
        pairs.append(f"{label}: {_format_value(value)}")
    for index, value in enumerate(values.get("controlnets") or ()):  # the A1111 ControlNet extension's fields
        pairs.append(f"ControlNet {index}: {_format_value(value)}")
    lines.append(", ".join(pairs))
    return "\n".join(lines)


def _lora_pairs(loras: Any) -> list[tuple[str, float]]:
    """(name, weight) pairs from either [(name, weight)] or [{"path"|"name": ..., "weight": ...}]."""
    from pathlib import Path

    pairs = []
    for item in loras:
        if isinstance(item, Mapping):
            name = item.get("name") or Path(str(item.get("path", "lora"))).stem
            pairs.append((str(name), item.get("weight", 1.0)))
        else:
            name, weight = item
            pairs.append((str(name), weight))
    return pairs


def parse_parameters(text: str) -> dict[str, Any]:
    """Parse A1111 ``parameters`` text back into our keys (unknown labels are kept as-is)."""
    lines = text.strip().split("\n")
    settings_line = ""
    if lines and _PAIR.match(lines[-1]) and "Steps:" in lines[-1]:
        settings_line = lines.pop()
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    target = prompt_lines
    for line in lines:
        if line.startswith("Negative prompt:"):
            target = negative_lines
            line = line[len("Negative prompt:"):].strip()
        target.append(line)
    result: dict[str, Any] = {
        "prompt": "\n".join(prompt_lines).strip(),
        "negative_prompt": "\n".join(negative_lines).strip(),
    }
    for match in _PAIR.finditer(settings_line):
        label, raw = match.group(1).strip(), match.group(2).strip()
        if raw.startswith('"'):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError:
                raw = raw.strip('"')
        key = _LABEL_TO_KEY.get(label, label)
        result[key] = _coerce(key, raw)
    if isinstance(result.get("size"), str) and "x" in result["size"]:
        w, _, h = result["size"].partition("x")
        if w.isdigit() and h.isdigit():
            result["width"], result["height"] = int(w), int(h)
    return result


def _coerce(key: str, raw: str) -> Any:
    if key in ("steps", "seed", "batch_size", "batch_index", "hires_steps", "mask_blur", "masked_padding"):
        try:
            return int(raw)
        except ValueError:
            return raw
    if key in ("cfg_scale", "denoising_strength", "distilled_guidance", "hires_upscale", "postprocess_upscale_by",
               "image_prompt_weight"):
        try:
            return float(raw)
        except ValueError:
            return raw
    return raw


def read_png_parameters(path: str) -> dict[str, Any] | None:
    """The parsed ``parameters`` chunk of a PNG, or None when it has none."""
    from PIL import Image  # pillow is light; kept local so importing metadata stays free

    with Image.open(path) as image:
        text = image.info.get("parameters")
    if not text:
        return None
    return parse_parameters(text)
