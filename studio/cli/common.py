"""What every subcommand shares: one-line usage errors, waiting for a job, a progress line."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from studio.core.progress import ProgressClock
from studio.plugin_kit.sources import looks_like_path

if TYPE_CHECKING:
    from studio.core.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """Bad command-line input; printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would exit itself; we want one line and status 2
        raise UsageError(message)


def parse_loras(values: list[str]) -> list[dict]:
    loras = []
    for value in values:
        path, weight = value, 1.0
        head, sep, tail = value.rpartition(":")
        if sep and head and is_number(tail):
            path, weight = head, float(tail)
        if not Path(path).is_file():
            raise UsageError(f"LoRA file not found: {path}")
        loras.append({"path": path, "weight": weight})
    return loras


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_image(path: str | None, what: str) -> None:
    """A readable image within the size limit (Settings: max_image_pixels), checked from its
    header before anything decodes it (a PNG can declare 20000x20000 in a few bytes)."""
    if path is None:
        return
    from PIL import Image

    from studio.plugin_api import ParamError
    from studio.plugin_kit.image_limits import bomb_sentence, check_declared_size, image_limit

    try:
        with image_limit():
            with Image.open(path) as image:
                check_declared_size(image.size, f"{what} {path}")
                image.verify()
    except ParamError as exc:
        raise UsageError(str(exc)) from None
    except Image.DecompressionBombError as exc:
        raise UsageError(bomb_sentence(exc, f"{what} {path}")) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UsageError(f"cannot read {what} {path}: {exc}") from None


def wait(context, job, keep_partial_on_ctrl_c: bool = False) -> bool:
    """Wait for ``job``; True when it produced its result (done or interrupted).

    Ctrl-C stops the job (keeping what it made when ``keep_partial_on_ctrl_c``) and re-raises.
    A failure while validating or loading is the user's input to fix: UsageError (exit 2).
    Any other failure is printed as one line and False is returned (exit 1).
    """
    from studio.core.jobs import JobState

    try:
        while not job.wait(0.2):
            pass
    except KeyboardInterrupt:
        (context.engine.interrupt if keep_partial_on_ctrl_c else context.engine.cancel)(job.id)
        job.wait(30)
        raise
    if job.state is JobState.FAILED:
        message = job.failure.message if job.failure else job.message
        if job.failure and job.failure.stage in ("validate", "load"):
            raise UsageError(message)
        print(f"studio: {message}", file=sys.stderr)
        return False
    return job.state in (JobState.DONE, JobState.INTERRUPTED)


def checked_request_and_model(plugin, request: dict, mode: str | None, given: str | None) -> str:
    """Validate ``request`` first (bad values are the user's to fix whatever the model), then
    resolve the model: the one given, else the plugin's built-in default."""
    from studio.plugin_api import ParamError, validate_request

    try:
        validate_request(plugin.parameters(), request, mode)
    except ParamError as exc:
        raise UsageError(str(exc)) from None
    model = given or next((m.source for m in plugin.models()), "")
    if not model:
        raise UsageError("no model given and no embedded default found; pass --model")
    if given and looks_like_path(given) and not Path(given).exists():
        raise UsageError(f"model not found: {given}")
    return model


class ProgressBar:
    """A one-line progress bar on stderr (only when stderr is a terminal, else plain lines)."""

    def __init__(self) -> None:
        self.clock = ProgressClock()
        self.tty = sys.stderr.isatty()
        self.last_print = 0.0

    def update(self, event) -> None:
        self.clock.update(event.step, event.total)
        now = time.monotonic()
        if self.tty:
            width = max(10, min(40, shutil.get_terminal_size((80, 20)).columns - 40))
            filled = int(width * event.step / event.total) if event.total else 0
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.clock.describe()}   ")
            sys.stderr.flush()
        elif now - self.last_print > 1.0 or event.step == event.total:
            print(f"step {self.clock.describe()}", file=sys.stderr)
            self.last_print = now

    def note(self, text: str) -> None:
        """A line on stderr that does not break the bar (the bar redraws below it)."""
        sys.stderr.write(("\r\033[K" if self.tty else "") + text + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


def settings_for(args: argparse.Namespace, out: object = None) -> Settings:
    """The saved settings with this command line's overrides: the output folder ``out`` planned
    for (an :class:`~studio.core.out_paths.OutPlan` whose ``folder`` is set), and the
    ``--allow-download``, ``--allow-pickle`` and ``--device`` options a subcommand has."""
    from studio.core.settings import Settings

    settings = Settings.load()
    folder = getattr(out, "folder", None)
    if folder is not None:
        settings.output_dir = str(folder)
    if getattr(args, "allow_download", False):
        settings.allow_download = True
    if getattr(args, "allow_pickle", False):
        settings.allow_pickle = True
    if getattr(args, "device", None):
        settings.device = args.device
    return settings
