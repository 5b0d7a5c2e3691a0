"""Exporting walks: animated GIF (Pillow), MP4 (imageio + imageio-ffmpeg, imported on use) and
numbered PNG frames.  Frames are PIL images or HxWx3 uint8 arrays."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # PIL is imported on use
    from PIL.Image import Image as PILImage

VIDEO_SUFFIXES = (".gif", ".mp4")


def _pil(frame: Any) -> PILImage:
    from PIL import Image

    if isinstance(frame, Image.Image):
        return frame.convert("RGB")
    return Image.fromarray(np.asarray(frame, dtype=np.uint8)).convert("RGB")


def _upscaled(frames: Sequence[Any], min_edge: int) -> list[PILImage]:
    from PIL import Image

    images = [_pil(f) for f in frames]
    if not images:
        raise ValueError("no frames to export")
    w, h = images[0].size
    factor = max(1, -(-min_edge // max(1, min(w, h))))  # ceil; tiny 64 px frames are hard to watch
    if factor > 1:
        images = [im.resize((w * factor, h * factor), Image.Resampling.NEAREST) for im in images]
    return images


def save_gif(frames: Sequence[Any], path: str | Path, fps: float = 8.0, loop: bool = True, bounce: bool = False,
             min_edge: int = 256) -> Path:
    images = _upscaled(frames, min_edge)
    if bounce and len(images) > 2:
        images = images + images[-2:0:-1]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=max(20, int(round(1000 / fps))),
                   loop=0 if loop else 1, optimize=False, disposal=2)
    return path


def save_mp4(frames: Sequence[Any], path: str | Path, fps: float = 8.0, min_edge: int = 256) -> Path:
    try:
        import imageio.v2 as imageio
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("MP4 export needs the 'imageio' and 'imageio-ffmpeg' packages "
                           "(pip install imageio imageio-ffmpeg); GIF and PNG frames work without them") from exc
    images = _upscaled(frames, min_edge)
    w, h = images[0].size
    if w % 16 or h % 16:  # the encoder wants macroblock-aligned sizes
        from PIL import Image

        w2, h2 = -(-w // 16) * 16, -(-h // 16) * 16
        images = [im.resize((w2, h2), Image.Resampling.NEAREST) for im in images]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The ffmpeg plugin's writer has append_data; imageio's declared return type (its base class) does not.
    writer: Any = imageio.get_writer(str(path), fps=fps, codec="libx264", quality=8, pixelformat="yuv420p",
                                     macro_block_size=16)
    with writer:
        for im in images:
            writer.append_data(np.asarray(im))
    return path


def save_frames(frames: Sequence[Any], folder: str | Path, stem: str = "frame") -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, f in enumerate(frames):
        p = folder / f"{stem}-{i:03d}.png"
        _pil(f).save(p)
        out.append(p)
    return out


def export(frames: Sequence[Any], path: str | Path, fps: float = 8.0) -> list[Path]:
    """By suffix: .gif, .mp4, or a folder (no suffix) of PNG frames."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".gif":
        return [save_gif(frames, path, fps)]
    if suffix == ".mp4":
        return [save_mp4(frames, path, fps)]
    if suffix == "":
        return save_frames(frames, path)
    raise ValueError(f"walks are exported as .gif, .mp4 or a folder of PNG frames (got {path.name})")
