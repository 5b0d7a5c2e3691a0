"""Output files: one folder per day, ``NNNNN-SEED-prompt-slug.ext``, safe across processes.

The file is complete on disk (metadata included) before anybody is told it exists, and no
save ever replaces an existing file: the data is written to a temp file first, then, under a
lock that holds between processes (``<day folder>/.studio-names.lock``), the next free number
is found and the temp file is linked to it, which fails rather than replace a file another
process made meanwhile (then the next number is tried).
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path

from studio.core.atomic import Staged, remove_stale_temp_files, stage
from studio.core.interprocess_lock import locked
from studio.core.metadata import format_parameters
from studio.plugin_api import Artifact, Kind

_COUNTER = re.compile(r"^(\d{5,})-")
LOCK_NAME = ".studio-names.lock"
#: PNG text chunk with an artifact's ``parameters["recipe"]`` as JSON (a latent edit's replayable recipe)
RECIPE_CHUNK = "studio-recipe"


def slugify(text: str, limit: int = 60) -> str:
    """A filename-safe slug: ASCII letters, digits and dashes only, so no prompt can name a
    path outside the output folder (no separators, no dots, no drive letters)."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:limit].rstrip("-") or "untitled"


def _highest_number(folder: Path) -> int:
    highest = -1
    for entry in folder.iterdir():
        match = _COUNTER.match(entry.name)
        if match:
            highest = max(highest, int(match.group(1)))
    return highest


class OutputStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def day_folder(self, when: _dt.date | None = None) -> Path:
        return self.root / (when or _dt.date.today()).isoformat()

    def remove_stale_temp_files(self) -> list[Path]:
        """Temp files a crashed or killed save left in the output folders (a live writer's stay)."""
        return remove_stale_temp_files(self.root, depth=1)

    def save(self, artifact: Artifact, title: str = "", exact: Path | None = None) -> Path:
        """Write one artifact and return its path.

        ``exact``: write exactly this file (the user named it) instead of the next numbered
        name; FileExistsError if it exists (it is never replaced)."""
        title = title or str(artifact.parameters.get("prompt", "")) or artifact.kind.value
        data, suffix, midi = self._encode(artifact)
        folder = exact.parent if exact is not None else self.day_folder()
        folder.mkdir(parents=True, exist_ok=True)
        staged = stage(folder / f"x{suffix}", data)
        staged_midi = stage(folder / "x.mid", midi) if midi else None
        try:
            if exact is not None:
                return self._publish_exact(staged, staged_midi, exact)
            seed_part = "x" if artifact.seed is None else str(artifact.seed)
            with locked(folder / LOCK_NAME):
                number = _highest_number(folder) + 1
                while True:
                    path = folder / f"{number:05d}-{seed_part}-{slugify(title)}{suffix}"
                    # Belt and braces: the slug cannot contain separators; check the resolved path.
                    if path.resolve().parent != folder.resolve():
                        raise ValueError("refusing to write outside the output folder")
                    # symbolic clips keep their notes next to the audio (same stem), claimed first
                    midi_path = path.with_suffix(".mid")
                    if staged_midi is None or staged_midi.publish(midi_path):
                        if staged.publish(path):
                            return path
                        if staged_midi is not None:  # ours, just made: give the number back whole
                            staged_midi = stage(midi_path, midi_path.read_bytes())
                            midi_path.unlink()
                    number += 1
        finally:
            staged.discard()
            if staged_midi is not None:
                staged_midi.discard()

    @staticmethod
    def _publish_exact(staged: Staged, staged_midi: Staged | None, exact: Path) -> Path:
        if staged_midi is not None and not staged_midi.publish(exact.with_suffix(".mid")):
            raise FileExistsError(17, "already exists; not replaced", str(exact.with_suffix(".mid")))
        if not staged.publish(exact):
            raise FileExistsError(17, "already exists; not replaced", str(exact))
        return exact

    @staticmethod
    def _encode(artifact: Artifact) -> tuple[bytes, str, bytes | None]:
        """The file's bytes, its suffix, and MIDI bytes to keep beside it."""
        if artifact.kind in (Kind.IMAGE, Kind.LATENT) and artifact.image is not None:
            from PIL.PngImagePlugin import PngInfo

            info = PngInfo()
            info.add_text("parameters", format_parameters(artifact.parameters))
            recipe = artifact.parameters.get("recipe")
            if isinstance(recipe, Mapping):  # e.g. a latent edit: everything needed to replay it
                info.add_text(RECIPE_CHUNK, json.dumps(recipe, default=str))
            buffer = io.BytesIO()
            artifact.image.save(buffer, format="PNG", pnginfo=info)
            return buffer.getvalue(), ".png", None
        if artifact.kind is Kind.TEXT and artifact.text is not None:
            return artifact.text.encode("utf-8"), ".txt", None
        if artifact.audio is not None:
            from studio.core.audio_files import wav_bytes

            return wav_bytes(artifact.audio, artifact.sample_rate, artifact.parameters), ".wav", artifact.midi or None
        raise ValueError(f"nothing to save in a {artifact.kind.value} artifact")
