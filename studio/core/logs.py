"""Where tracebacks go: a rotating log file in the data folder, never the user's terminal.

The GUI and the CLI call :func:`setup_logging` first.  Every failure reaches the user as one
sentence (CLI: stderr; GUI: the panel's message bar); the details, tracebacks included, go to
``<data>/logs/studio.log`` (1 MB, 3 old files kept), whose path the sentence names when it
helps (:func:`see_log`).  Python warnings are captured into the same file.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import tempfile
from pathlib import Path

from studio.core.settings import studio_home

FORMAT = "%(asctime)s %(process)d %(threadName)s %(levelname)s %(name)s: %(message)s"
MAX_BYTES = 1_000_000
BACKUPS = 3

_handler: logging.Handler | None = None
#: environment variable -> (the library's logger, the value that makes its import quiet)
_QUIET_IMPORTS = {"TORCH_LOGS": ("torch", "-torch"), "DIFFUSERS_VERBOSITY": ("diffusers", "error"),
                  "TRANSFORMERS_VERBOSITY": ("transformers", "error")}
_quieted: set[str] = set()


def default_log_path() -> Path:
    return studio_home() / "logs" / "studio.log"


def _open_handler(path: Path) -> logging.handlers.RotatingFileHandler:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS,
                                                   encoding="utf-8", delay=False)
    handler.setFormatter(logging.Formatter(FORMAT))
    return handler


def setup_logging(path: Path | None = None, level: int = logging.INFO) -> Path:
    """Send every log record (and Python warning) to the rotating log file, and nothing to
    the terminal.  A data folder that cannot be written gets a log in the temp folder.
    Returns the log file's path.  Calling it again moves the log (tests, a new data folder)."""
    global _handler
    # torch, diffusers and transformers attach their own terminal handler to their logger when
    # they are imported (inside the first model load) and may warn during that very import,
    # before we can re-point the handler: their own settings keep the import quiet (a user's own
    # values win), and adopt_console_handlers() then sends their warnings to the log file.
    for variable, (logger_name, value) in _QUIET_IMPORTS.items():
        if variable not in os.environ:
            os.environ[variable] = value
            _quieted.add(logger_name)
    target = path or default_log_path()
    try:
        handler = _open_handler(target)
    except OSError:
        target = Path(tempfile.gettempdir()) / "studio-logs" / "studio.log"
        handler = _open_handler(target)
    root = logging.getLogger()
    for old in list(root.handlers):
        if old is _handler or isinstance(old, logging.StreamHandler) and getattr(old, "stream", None) in (
                sys.stderr, sys.__stderr__, sys.stdout, sys.__stdout__):
            root.removeHandler(old)
            if old is _handler:
                old.close()
    root.addHandler(handler)
    root.setLevel(level)
    _handler = handler
    logging.captureWarnings(True)
    adopt_console_handlers()
    return target


def log_file() -> Path | None:
    """The log file in use (None before :func:`setup_logging`)."""
    return Path(_handler.baseFilename) if isinstance(_handler, logging.FileHandler) else None


def see_log() -> str:
    """" (details in LOGFILE)" for the end of a sentence, or "" when there is no log file."""
    path = log_file()
    return f" (details in {path})" if path else ""


def with_log_hint(sentence: str) -> str:
    """``sentence`` ending with where its details are: "It failed (details in LOGFILE)." """
    hint = see_log()
    if not hint:
        return sentence
    return sentence.rstrip().rstrip(".") + hint + "."


def adopt_console_handlers() -> None:
    """Libraries that add their own terminal handler at import (torch does, for its loggers)
    would print warnings on the user's terminal: point those loggers at the log file instead.
    Called after setup and after every model load (when such libraries get imported)."""
    if _handler is None:
        return
    for logger in [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]:
        console = [h for h in logger.handlers if type(h) is logging.StreamHandler
                   and getattr(h, "stream", None) in (sys.stderr, sys.__stderr__)]
        for h in console:
            logger.removeHandler(h)
        if console and _handler not in logger.handlers and not logger.propagate:
            logger.addHandler(_handler)
        if console and logger.name in _quieted:
            logger.setLevel(logging.WARNING)  # from now on its warnings reach the log file
