"""Output files: one folder per day, ``NNNNN-SEED-prompt-slug.ext``, written atomically.

The file is complete on disk (metadata included) before anybody is told it exists.
"""

from __future__ import annotations

import datetime as _dt
import io
import re
import threading
import unicodedata
from pathlib import Path

from studio.core.atomic import write_bytes_atomic, write_text_atomic
from studio.core.metadata import format_parameters
from studio.plugin_api import Artifact, Kind

_COUNTER = re.compile(r"^(\d{5,})-")


def slugify(text: str, limit: int = 60) -> str:
    """A filename-safe slug: ASCII letters, digits and dashes only, so no prompt can name a
    path outside the output folder (no separators, no dots, no drive letters)."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:limit].rstrip("-") or "untitled"


class OutputStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self._lock = threading.Lock()

    def day_folder(self, when: _dt.date | None = None) -> Path:
        return self.root / (when or _dt.date.today()).isoformat()

    def _next_path(self, folder: Path, seed: int | None, title: str, suffix: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        highest = -1
        for entry in folder.iterdir():
            match = _COUNTER.match(entry.name)
            if match:
                highest = max(highest, int(match.group(1)))
        seed_part = "x" if seed is None else str(seed)
        path = folder / f"{highest + 1:05d}-{seed_part}-{slugify(title)}{suffix}"
        # Belt and braces: the slug cannot contain separators, but check the resolved path.
        if path.resolve().parent != folder.resolve():
            raise ValueError("refusing to write outside the output folder")
        return path

    def save(self, artifact: Artifact, title: str = "") -> Path:
        """Write one artifact and return its path."""
        title = title or str(artifact.parameters.get("prompt", "")) or artifact.kind.value
        with self._lock:
            if artifact.kind in (Kind.IMAGE, Kind.LATENT) and artifact.image is not None:
                return self._save_png(artifact, title)
            if artifact.kind is Kind.TEXT and artifact.text is not None:
                path = self._next_path(self.day_folder(), artifact.seed, title, ".txt")
                write_text_atomic(path, artifact.text)
                return path
            if artifact.audio is not None:
                from studio.core.audio_files import wav_bytes

                path = self._next_path(self.day_folder(), artifact.seed, title, ".wav")
                if artifact.midi:  # symbolic clips keep their notes next to the audio (same stem)
                    write_bytes_atomic(path.with_suffix(".mid"), artifact.midi)
                write_bytes_atomic(path, wav_bytes(artifact.audio, artifact.sample_rate, artifact.parameters))
                return path
        raise ValueError(f"nothing to save in a {artifact.kind.value} artifact")

    def _save_png(self, artifact: Artifact, title: str) -> Path:
        from PIL.PngImagePlugin import PngInfo

        path = self._next_path(self.day_folder(), artifact.seed, title, ".png")
        info = PngInfo()
        info.add_text("parameters", format_parameters(artifact.parameters))
        buffer = io.BytesIO()
        artifact.image.save(buffer, format="PNG", pnginfo=info)
        write_bytes_atomic(path, buffer.getvalue())
        return path
