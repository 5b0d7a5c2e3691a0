"""The CLI's one error path: every failure is one line on stderr and an exit status.

* bad input (:class:`UsageError`, a :class:`ParamError` that escaped, argparse) -> 2;
* a run that failed, or anything unexpected -> 1, the traceback in the log file whose path
  the line names;
* Ctrl-C -> 130.

Nothing here prints a traceback: the rotating log file has it (``studio.core.logs``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from studio.cli.common import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, UsageError

log = logging.getLogger("studio.cli")


def say(message: str) -> None:
    """One line on stderr, prefixed ``studio:`` (newlines folded so it stays one line)."""
    text = " ".join(str(message).split())
    print(f"studio: {text}", file=sys.stderr, flush=True)


def _note(text: str) -> None:
    say(f"note: {text}")


def run_guarded(body: Callable[[], int]) -> int:
    from studio.core.data_files import listen
    from studio.core.errors import describe
    from studio.core.logs import setup_logging, with_log_hint
    from studio.core.settings import Settings, ensure_writable_home
    from studio.plugin_api import ParamError
    from studio.plugin_kit.image_limits import set_max_pixels

    listen(_note)
    try:
        ensure_writable_home()
        setup_logging()
        set_max_pixels(Settings.load().max_image_pixels)  # also says if the settings were damaged
    except Exception as exc:  # noqa: BLE001 - even a broken data folder is one line, not a traceback
        say(f"cannot start: {describe(exc)}")
        return EXIT_FAILED
    log.info("studio %s", " ".join(sys.argv[1:]))
    try:
        return body()
    except UsageError as exc:
        log.info("bad input: %s", exc)
        say(str(exc))
        return EXIT_BAD_INPUT
    except ParamError as exc:
        log.info("bad input: %s", exc)
        say(str(exc))
        return EXIT_BAD_INPUT
    except LookupError as exc:
        if type(exc) is not LookupError:  # a KeyError/IndexError is a bug, not the user's input
            log.exception("the command failed")
            say(with_log_hint(describe(exc)))
            return EXIT_FAILED
        say(str(exc))  # the registry's "no plugin named X (installed: ...)"
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        say("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:  # the one place every unexpected failure becomes a sentence
        log.exception("the command failed")
        say(with_log_hint(describe(exc)))
        return EXIT_FAILED
