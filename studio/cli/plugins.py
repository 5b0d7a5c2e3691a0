"""`studio plugins`: every plugin, its kind and status."""

from __future__ import annotations

import argparse
from typing import Any

from studio.cli.common import EXIT_OK


def add_parser(sub: Any) -> None:
    sub.add_parser("plugins", help="list plugins with their kind and status")


def run(args: argparse.Namespace) -> int:
    from studio.core.registry import Registry

    registry = Registry.discover()
    if not registry.entries:
        print("no plugins installed")
    for entry in registry.entries:
        kind = entry.kind.value if entry.kind else "?"
        label = entry.plugin.label if entry.plugin else entry.target
        print(f"{entry.name:<20} {kind:<7} {entry.status:<8}  {label}")
    return EXIT_OK
