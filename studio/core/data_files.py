"""The studio's own data files (settings, history) when they are damaged or cannot be written.

A corrupt or read-only ``settings.json`` / ``history.sqlite`` is never deleted: it is renamed
to ``NAME.broken-YYYYMMDD-HHMMSS`` beside itself (kept for the user or a bug report) and the
studio starts with a fresh one and says so.  What was said is collected here as notices that
the GUI shows in its info bar and the CLI prints as a note.  A data folder that cannot be
written at all is replaced, for this session, by one in the temp folder.
"""

from __future__ import annotations

import datetime as _dt
import os
import secrets
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

_notices: list[str] = []
_listeners: list[Callable[[str], None]] = []
_lock = threading.Lock()


def notify(text: str) -> None:
    with _lock:
        if text in _notices:
            return
        _notices.append(text)
        listeners = list(_listeners)
    for listener in listeners:
        listener(text)


def listen(listener: Callable[[str], None]) -> None:
    """Also tell ``listener`` each new notice as it happens (the CLI prints it at once)."""
    with _lock:
        if listener not in _listeners:
            _listeners.append(listener)


def take_notices() -> list[str]:
    """The notices since the last call (each once)."""
    with _lock:
        taken = list(_notices)
        _notices.clear()
    return taken


def move_aside(path: Path) -> Path:
    """Rename ``path`` (and SQLite's ``-wal``/``-shm`` companions) to a ``.broken-...`` name."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.broken-{stamp}")
    while target.exists():
        target = path.with_name(f"{path.name}.broken-{stamp}-{secrets.token_hex(2)}")
    os.replace(path, target)
    for companion in ("-wal", "-shm", "-journal"):
        extra = path.with_name(path.name + companion)
        if extra.exists():
            os.replace(extra, target.with_name(target.name + companion))
    return target


def folder_writable(folder: Path) -> bool:
    """Whether a file can really be created in ``folder`` (made if missing); tried, not guessed
    from permission bits (root ignores those; read-only mounts do not)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".studio-probe-{os.getpid()}-{secrets.token_hex(4)}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(probe)
        return True
    except OSError:
        return False


def file_writable(path: Path) -> bool:
    """Whether an existing file can be opened for writing (without changing it)."""
    try:
        with open(path, "r+b"):
            return True
    except OSError:
        return False


def fallback_data_folder() -> Path:
    """A private folder in the temp folder, for a session whose data folder is read-only."""
    user = os.environ.get("USER") or os.environ.get("USERNAME") or str(getattr(os, "getuid", lambda: 0)())
    folder = Path(tempfile.gettempdir()) / f"studio-{user}-fallback"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
