"""Command line on the same engine as the GUI: ``studio image|text|music|latent|plugins ...``.

One module per subcommand; each has ``add_parser(sub)`` and ``run(args) -> int``. A new
subcommand is a new module plus one line in :data:`SUBCOMMANDS`.

Exit status: 0 success, 1 the run failed, 2 bad input (one line on stderr, no traceback),
130 interrupted with Ctrl-C.  Tracebacks go to the log file (``studio.core.logs``), whose path
the line names when something unexpected failed.
"""

from __future__ import annotations

import argparse
import importlib
import logging
from collections.abc import Sequence

from studio.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Parser,
    UsageError,
)

__all__ = ["main", "EXIT_OK", "EXIT_FAILED", "EXIT_BAD_INPUT", "EXIT_INTERRUPTED", "UsageError"]

#: subcommand name -> module under studio.cli (imported only for building the parser: light)
SUBCOMMANDS = {
    "image": "studio.cli.image",
    "text": "studio.cli.text",
    "music": "studio.cli.music",
    "plugins": "studio.cli.plugins",
    "latent": "studio.cli.latent",
    "sweep": "studio.cli.sweep",
    "upscale": "studio.cli.upscale",
}

log = logging.getLogger("studio.cli")


def _build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="studio", description="Studio: local generative models, from the command line.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in SUBCOMMANDS.values():
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from studio.cli.errors import run_guarded

    return run_guarded(lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    from studio.cli.validation import validate_args

    args = _build_parser().parse_args(list(argv) if argv is not None else None)
    validate_args(args)
    code: int = importlib.import_module(SUBCOMMANDS[args.command]).run(args)
    return code
