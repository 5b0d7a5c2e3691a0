"""The sweep's manifest: one JSON line per finished item, in the output folder.

Append-only and fsynced per line, after the item's files are complete on disk: killing a
sweep at any moment loses no finished item, and a torn last line (a kill mid-write) is
ignored on reading.  A rerun reads which item keys are done and runs only the rest.

An exclusive lock on ``sweep.lock`` keeps a second process from running into the same folder
at the same time (it would run the same items twice).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

MANIFEST = "sweep-manifest.jsonl"
LOCK = "sweep.lock"


@dataclass(frozen=True)
class DoneItem:
    key: str
    index: int
    files: tuple[str, ...]  # relative to the manifest's folder
    seconds: float  # run time of the item alone (no model load)
    backend: str


class FolderBusyError(RuntimeError):
    """Another sweep is writing into this folder right now."""


class Manifest:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / MANIFEST
        self._lock_handle: IO[str] | None = None
        self.header: dict[str, Any] = {}
        self.done: dict[str, DoneItem] = {}
        self._read()

    def _read(self) -> None:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a kill mid-write: that item simply runs again
            if record.get("type") == "sweep" and not self.header:
                self.header = record
            elif record.get("type") == "item" and record.get("key") not in self.done:
                self.done[record["key"]] = DoneItem(record["key"], int(record.get("index", -1)),
                                                    tuple(record.get("files", ())),
                                                    float(record.get("seconds", 0.0)), str(record.get("backend", "")))

    # -- writing -----------------------------------------------------------------------------
    def lock(self) -> None:
        """Take the folder for this process; FolderBusyError when another sweep holds it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        handle = open(self.folder / LOCK, "a+", encoding="utf-8")  # noqa: SIM115 - held until unlock()
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; one sweep per folder is then up to the user
            self._lock_handle = handle
            return
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise FolderBusyError(f"another sweep is running into {self.folder}; wait for it or use --out") from None
        self._lock_handle = handle

    def unlock(self) -> None:
        if self._lock_handle is not None:
            self._lock_handle.close()  # closing releases the flock
            self._lock_handle = None

    def start(self, header: dict[str, Any]) -> None:
        """Write the header once (the first run into this folder)."""
        if not self.header:
            self.header = {"type": "sweep", "created": time.time(), **header}
            self._append(self.header)

    def record(self, key: str, index: int, files: list[Path], seconds: float, backend: str) -> DoneItem:
        relative = tuple(_relative(Path(f), self.folder) for f in files)
        item = DoneItem(key, index, relative, seconds, backend)
        self._append({"type": "item", "key": key, "index": index, "files": list(relative),
                      "seconds": round(seconds, 4), "backend": backend, "time": time.time()})
        self.done[key] = item
        return item

    def _append(self, record: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, default=str) + "\n"
        with open(self.path, "a+b") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell():
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":  # a torn line from a killed run: start a fresh one
                    line = "\n" + line
            handle.write(line.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())

    def files_of(self, key: str) -> list[Path]:
        item = self.done.get(key)
        return [self.folder / f for f in item.files] if item else []


def _relative(path: Path, folder: Path) -> str:
    try:
        return path.resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())
