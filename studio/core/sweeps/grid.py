"""Labelled grid images, like A1111's X/Y/Z plot: X values across the top, Y values down the
left, the axis titles beside them and a header line (seed, Z value) above.

Small tiles are enlarged by a whole factor with nearest-neighbour sampling (no invented
detail) so the labels stay readable next to 64-pixel images.  The sweep file goes into the
PNG's text chunks (``sweep``), so a grid says how to make it again.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core.atomic import write_bytes_atomic

MIN_TILE = 192  # pixels: tiles smaller than this are enlarged by a whole factor
GAP = 4
PAD = 8
FONT_SIZE = 16


@dataclass(frozen=True)
class GridAxis:
    title: str
    labels: tuple[str, ...]


def make_grid(tiles: Mapping[tuple[int, int], Any], x: GridAxis | None, y: GridAxis | None,
              header: str) -> Any:
    """One PIL image: ``tiles[(x, y)]`` (PIL images; missing ones are drawn as a grey box)."""
    from PIL import Image, ImageDraw

    columns = len(x.labels) if x else 1
    rows = len(y.labels) if y else 1
    sample = next(iter(tiles.values()), None)
    width, height = sample.size if sample is not None else (64, 64)
    factor = max(1, math.ceil(MIN_TILE / max(width, height)))
    tile_w, tile_h = width * factor, height * factor
    font = _font(FONT_SIZE)
    line_h = FONT_SIZE + 4
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    column_lines = [_wrap(probe, font, label, tile_w) for label in (x.labels if x else ("",))]
    top_rows = max(len(lines) for lines in column_lines) if x else 0
    left_w = 0
    if y:
        widest = max(probe.textlength(label, font=font) for label in (*y.labels, f"Y: {y.title}"))
        left_w = int(min(max(widest + 2 * PAD, 80), 2.5 * tile_w))
    row_lines = [_wrap(probe, font, label, left_w - 2 * PAD) for label in (y.labels if y else ())]
    header_lines = _wrap(probe, font, header, max(columns * (tile_w + GAP) + left_w, 300) - 2 * PAD)
    title_h = line_h if (x or y) else 0
    top = PAD + len(header_lines) * line_h + title_h + top_rows * line_h + PAD
    total_w = left_w + columns * (tile_w + GAP) + PAD
    total_w = max(total_w, max(int(probe.textlength(t, font=font)) for t in header_lines) + 2 * PAD)
    total_h = top + rows * (tile_h + GAP) + PAD

    canvas = Image.new("RGB", (total_w, total_h), "white")
    draw = ImageDraw.Draw(canvas)
    ink, faint = (20, 20, 20), (90, 90, 90)
    cursor = PAD
    for line in header_lines:
        draw.text((PAD, cursor), line, fill=ink, font=font)
        cursor += line_h
    if x:
        title = f"X: {x.title}"
        span = columns * (tile_w + GAP) - GAP
        draw.text((left_w + max(0.0, (span - probe.textlength(title, font=font)) / 2), cursor), title,
                  fill=faint, font=font)
    if y:
        draw.text((PAD, cursor), f"Y: {y.title}", fill=faint, font=font)
    cursor += title_h
    for column, lines in enumerate(column_lines if x else ()):
        left = left_w + column * (tile_w + GAP)
        for i, line in enumerate(lines):
            text_w = probe.textlength(line, font=font)
            draw.text((left + (tile_w - text_w) / 2, cursor + i * line_h), line, fill=ink, font=font)
    for row in range(rows):
        top_y = top + row * (tile_h + GAP)
        if y:
            lines = row_lines[row]
            start = top_y + (tile_h - len(lines) * line_h) / 2
            for i, line in enumerate(lines):
                draw.text((PAD, start + i * line_h), line, fill=ink, font=font)
        for column in range(columns):
            left = left_w + column * (tile_w + GAP)
            tile = tiles.get((column, row))
            if tile is None:
                draw.rectangle((left, top_y, left + tile_w - 1, top_y + tile_h - 1), fill=(200, 200, 200))
                draw.text((left + PAD, top_y + PAD), "missing", fill=ink, font=font)
                continue
            if tile.size != (width, height):
                tile = tile.resize((width, height))
            canvas.paste(tile.convert("RGB").resize((tile_w, tile_h), Image.Resampling.NEAREST), (left, top_y))
    return canvas


def save_grid(path: Path, image: Any, texts: Mapping[str, str]) -> Path:
    """Write ``image`` atomically with ``texts`` as PNG text chunks."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in texts.items():
        info.add_itxt(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType: a scalable font
    except TypeError:  # pragma: no cover - older Pillow: the small bitmap font
        return ImageFont.load_default()


def _wrap(draw: Any, font: Any, text: str, width: float) -> list[str]:
    """``text`` broken into lines no wider than ``width`` (long words are cut)."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if draw.textlength(candidate, font=font) <= width or not current:
            current = candidate
        else:
            lines.append(current)
            current = word
        while draw.textlength(current, font=font) > width and len(current) > 1:
            cut = _fit(draw, font, current, width)
            lines.append(current[:cut])
            current = current[cut:]
    if current or not lines:
        lines.append(current)
    return lines


def _fit(draw: Any, font: Any, text: str, width: float) -> int:
    for end in range(len(text) - 1, 0, -1):
        if draw.textlength(text[:end], font=font) <= width:
            return end
    return 1
