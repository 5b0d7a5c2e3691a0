"""What ``--out`` means, for every command that writes: a path with the kind's file suffix is
the file to write (a batch adds ``-1``, ``-2``... to its stem); anything else is a folder.

Checked before any generation, so a typo costs one sentence, not a run: a file that exists
is never replaced, a folder must really take a new file, and a file name that is an existing
folder (or a folder name that is an existing file) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.core.data_files import folder_writable
from studio.plugin_api import ParamError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
AUDIO_SUFFIXES = (".wav",)
WALK_SUFFIXES = (".gif", ".mp4")


@dataclass(frozen=True)
class OutPlan:
    folder: Path | None  # write numbered files here (the store's day folders)...
    files: tuple[Path, ...] = ()  # ...or exactly these files


def numbered(path: Path, count: int) -> list[Path]:
    """``picture.png`` for one file; ``picture-1.png``, ``picture-2.png``... for a batch."""
    if count <= 1:
        return [path]
    return [path.with_name(f"{path.stem}-{i}{path.suffix}") for i in range(1, count + 1)]


def plan_out(out: str, count: int = 1, suffixes: tuple[str, ...] = IMAGE_SUFFIXES, flag: str = "--out",
             folder_allowed: bool = True) -> OutPlan:
    """Where ``--out OUT`` writes ``count`` outputs; ParamError (one sentence) if it cannot."""
    path = Path(out).expanduser()
    if path.suffix.lower() in suffixes:
        if path.is_dir():
            raise ParamError(f"{flag} {out} is an existing folder; name a new file, or a folder without "
                             f"a {path.suffix} suffix.")
        files = numbered(path, count)
        for file in files:
            if file.exists() or file.is_symlink():
                raise ParamError(f"{flag}: {file} already exists and is never replaced; choose another name.")
        if not folder_writable(path.parent if str(path.parent) else Path(".")):
            raise ParamError(f"{flag}: cannot write in the folder {path.parent} (read-only or not allowed).")
        return OutPlan(None, tuple(files))
    if not folder_allowed:
        raise ParamError(f"{flag} must end in {' or '.join(suffixes)} (got {out}).")
    if path.exists() and not path.is_dir():
        raise ParamError(f"{flag} {out} is an existing file; give a new file name ending in "
                         f"{' or '.join(suffixes)}, or a folder.")
    if not folder_writable(path):
        raise ParamError(f"{flag}: cannot write in the folder {path} (read-only or not allowed).")
    return OutPlan(path)
