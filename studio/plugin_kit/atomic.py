"""Atomic file writes (the core and plugins share them): a temp file in the same folder, fsync,
then a rename onto the target.

A crash mid-write leaves either the old file or the new one, never half of one.  Files get
the user's umask like any other program's (``tempfile.mkstemp`` would make them 0600, which
a file server or a second user's tools cannot read).

Two ways to finish:

* :func:`atomic_output` / :func:`write_bytes_atomic` *replace* the target (settings, a file
  the user asked to overwrite);
* :func:`publish_new` never replaces anything: it links the finished temp file to a name that
  must not exist yet, so two processes can never overwrite each other's output.

Temp files are named ``.NAME.PID-RANDOM.tmp``: :func:`remove_stale_temp_files` deletes those
whose process is gone (a crash or a kill -9 mid-write), never a live writer's.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

_TEMP = re.compile(r"^\..+\.(\d+)-[0-9a-f]{8}\.tmp$")
#: a temp file this old is stale whatever its process id says (ids are reused)
_STALE_AFTER_S = 24 * 3600


def _temp_path(path: Path) -> Path:
    return path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"


def _write_temp(path: Path, data: bytes) -> Path:
    """``data`` in a new, fsynced temp file beside ``path``; mode 0666 minus the umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        _unlink_quietly(tmp)
        raise
    return tmp


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


@contextmanager
def atomic_output(path: Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Write through a handle; on success the file replaces ``path`` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_output(path, "wb") as handle:
        handle.write(data)


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_output(path, "w") as handle:
        handle.write(text)


class Staged:
    """A finished temp file waiting for its final name (see :func:`stage`)."""

    def __init__(self, tmp: Path):
        self.tmp = tmp

    def publish(self, path: Path) -> bool:
        """Give the data the name ``path`` if nothing has it yet; False if something does.

        ``os.link`` creates the name only if it does not exist, atomically, in every process.
        Filesystems without hard links get an exclusive create of the name first (the name
        is ours from then on) and a rename onto it."""
        try:
            os.link(self.tmp, path)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK,
                                 errno.ENOSYS):
                raise
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            except FileExistsError:
                return False
            os.replace(self.tmp, path)
            return True
        _unlink_quietly(self.tmp)
        return True

    def discard(self) -> None:
        _unlink_quietly(self.tmp)


def stage(path: Path, data: bytes) -> Staged:
    """Write ``data`` to a temp file beside ``path`` (same folder, so the link is atomic)."""
    return Staged(_write_temp(Path(path), data))


def publish_new(path: Path, data: bytes) -> None:
    """Write ``path``, which must not exist; FileExistsError (nothing written) if it does."""
    staged = stage(path, data)
    try:
        if not staged.publish(Path(path)):
            raise FileExistsError(errno.EEXIST, "already exists; not replaced", str(path))
    finally:
        staged.discard()


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's live process (or we cannot tell): keep its file
    return True


def remove_stale_temp_files(folder: Path, depth: int = 1) -> list[Path]:
    """Delete the temp files a crashed writer left in ``folder`` (and ``depth`` levels below).

    A temp file is stale when the process that wrote it is gone, or it is a day old."""
    removed: list[Path] = []
    folder = Path(folder)
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            if depth > 0:
                removed += remove_stale_temp_files(entry, depth - 1)
            continue
        match = _TEMP.match(entry.name)
        if not match:
            continue
        try:
            old = now - entry.stat().st_mtime > _STALE_AFTER_S
            if old or not _process_alive(int(match.group(1))):
                entry.unlink()
                removed.append(entry)
        except OSError:
            continue
    return removed
