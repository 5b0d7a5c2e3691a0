"""``studio`` / ``python -m studio``: the GUI with no arguments, the CLI with a subcommand."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-") or argv[:1] in (["-h"], ["--help"]):
        from studio.cli import main as cli_main

        return cli_main(argv)
    from studio.qt.app import run_gui

    return run_gui(argv)


if __name__ == "__main__":
    sys.exit(main())
