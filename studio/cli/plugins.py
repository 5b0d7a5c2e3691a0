"""`studio plugins`: every plugin, its kind and status, and the control preprocessors it provides."""

from __future__ import annotations

import argparse
from typing import Any

from studio.cli.common import EXIT_OK


def add_parser(sub: Any) -> None:
    sub.add_parser("plugins", help="list plugins with their kind and status")


def run(args: argparse.Namespace) -> int:
    from studio.core.registry import Registry
    from studio.plugin_kit.control import providers

    registry = Registry.discover()
    if not registry.entries:
        print("no plugins installed")
    for entry in registry.entries:
        kind = entry.kind.value if entry.kind else "?"
        label = entry.plugin.label if entry.plugin else entry.target
        print(f"{entry.name:<20} {kind:<7} {entry.status:<8}  {label}")
        if entry.provides:
            print(f"{'':<20} control preprocessors: {', '.join(entry.provides)}")
        if entry.plugin is not None:
            for note in providers.skipped(entry.plugin.id):
                print(f"{'':<20} control preprocessor skipped: {note}")
    return EXIT_OK
