"""The history index: every job and every output, in SQLite (WAL, survives a crash).

Jobs still ``queued`` or ``running`` when the app stopped are the ones offered again
at the next start (:meth:`History.unfinished`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core.data_files import file_writable, move_aside, notify

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    plugin_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    model TEXT NOT NULL,
    request TEXT NOT NULL,
    state TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    finished REAL
);
CREATE TABLE IF NOT EXISTS outputs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    seed INTEGER,
    parameters TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outputs_kind ON outputs(kind, id);
"""


def _json(text: Any) -> Any:
    """A stored JSON column; a damaged row reads as empty rather than stopping the studio."""
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return {}


@dataclass(frozen=True)
class JobRecord:
    id: str
    plugin_id: str
    kind: str
    model: str
    request: dict[str, Any]
    state: str
    message: str
    created: float


@dataclass(frozen=True)
class OutputRecord:
    id: int
    job_id: str
    kind: str
    path: str
    seed: int | None
    parameters: dict[str, Any]
    created: float


#: messages by which SQLite says the file is damaged or not ours (not "database is locked",
#: which another studio process causes and the busy timeout waits out)
_DAMAGED = ("not a database", "malformed", "no such column", "no such table", "readonly", "read-only",
            "disk image", "unable to open")
#: how long a write waits for another process holding the database (GUI + CLI scripts)
BUSY_TIMEOUT_S = 30.0


def _use_write_ahead_log(db: sqlite3.Connection, path: Path) -> None:
    """Put the file in WAL mode (readers never block the writer: GUI + CLI on one history).

    Converting needs the file to itself, and while another connection holds the write lock of a
    not-yet-converted file SQLite refuses at once, without running the busy handler: studio
    processes opening a new history together saw "database is locked" whatever the timeout (CI,
    eight writer processes; here 9 of 960 threaded opens). WAL is a property of the file, so it is read first
    (after the first open there is nothing to convert), and a refused conversion is retried within
    the same busy budget, stopping as soon as another process has done it."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    pause = 0.005
    while True:
        try:
            mode = db.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() == "wal":
                return
            # A file system without shared memory answers with the old mode and no error: the
            # history then works as before, one process at a time, rather than not at all.
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc).lower() and "busy" not in str(exc).lower():
                raise
            reason = str(exc)
        if time.monotonic() >= deadline:
            raise sqlite3.OperationalError(f"{path} stayed busy for {BUSY_TIMEOUT_S:.0f} s ({reason})")
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


class History:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            if not any(word in str(exc).lower() for word in _DAMAGED):
                raise
            aside = move_aside(self.path)
            notify(f"The history {self.path} could not be used ({exc}); it was moved to {aside.name} "
                   "and a new, empty history was started.")
            self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        if self.path.exists() and not file_writable(self.path):
            raise sqlite3.DatabaseError("the file is read-only")
        db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None,
                             timeout=BUSY_TIMEOUT_S)
        try:
            _use_write_ahead_log(db, self.path)
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            # Touch both tables the way the studio will (a damaged or foreign file fails here,
            # at start, not at the first save), and check that the file takes a write.
            db.execute("SELECT id, plugin_id, kind, model, request, state, message, created, finished "
                       "FROM jobs LIMIT 1").fetchall()
            db.execute("SELECT id, job_id, kind, path, seed, parameters, created FROM outputs LIMIT 1").fetchall()
            version = db.execute("PRAGMA user_version").fetchone()[0]
            db.execute(f"PRAGMA user_version = {int(version)}")
        except BaseException:
            db.close()
            raise
        return db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _execute(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()

    # jobs ------------------------------------------------------------------
    def add_job(self, job_id: str, plugin_id: str, kind: str, model: str, request: dict[str, Any]) -> None:
        self._execute(
            "INSERT OR REPLACE INTO jobs (id, plugin_id, kind, model, request, state, created) "
            "VALUES (?, ?, ?, ?, ?, 'queued', ?)",
            (job_id, plugin_id, kind, model, json.dumps(request, default=str), time.time()),
        )

    def set_state(self, job_id: str, state: str, message: str = "") -> None:
        finished = time.time() if state not in ("queued", "running") else None
        self._execute("UPDATE jobs SET state = ?, message = ?, finished = ? WHERE id = ?",
                      (state, message, finished, job_id))

    def unfinished(self) -> list[JobRecord]:
        rows = self._execute(
            "SELECT id, plugin_id, kind, model, request, state, message, created FROM jobs "
            "WHERE state IN ('queued', 'running') ORDER BY created")
        return [JobRecord(r[0], r[1], r[2], r[3], _json(r[4]), r[5], r[6], r[7]) for r in rows]

    def job(self, job_id: str) -> JobRecord | None:
        rows = self._execute(
            "SELECT id, plugin_id, kind, model, request, state, message, created FROM jobs WHERE id = ?",
            (job_id,))
        if not rows:
            return None
        r = rows[0]
        return JobRecord(r[0], r[1], r[2], r[3], _json(r[4]), r[5], r[6], r[7])

    # outputs ---------------------------------------------------------------
    def add_output(self, job_id: str, kind: str, path: Path, seed: int | None,
                   parameters: dict[str, Any]) -> int:
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO outputs (job_id, kind, path, seed, parameters, created) VALUES (?, ?, ?, ?, ?, ?)",
                (job_id, kind, str(path), seed, json.dumps(parameters, default=str), time.time()))
            return int(cursor.lastrowid or 0)

    def outputs_of_job(self, job_id: str) -> list[OutputRecord]:
        """In the order they were saved."""
        rows = self._execute(
            "SELECT id, job_id, kind, path, seed, parameters, created FROM outputs "
            "WHERE job_id = ? ORDER BY id", (job_id,))
        return [OutputRecord(r[0], r[1], r[2], r[3], r[4], _json(r[5]), r[6]) for r in rows]

    def outputs(self, kind: str, limit: int = 500) -> list[OutputRecord]:
        """Newest first."""
        rows = self._execute(
            "SELECT id, job_id, kind, path, seed, parameters, created FROM outputs "
            "WHERE kind = ? ORDER BY id DESC LIMIT ?", (kind, limit))
        return [OutputRecord(r[0], r[1], r[2], r[3], r[4], _json(r[5]), r[6]) for r in rows]
