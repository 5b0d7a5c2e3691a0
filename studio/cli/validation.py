"""Every command-line option checked at the boundary, before any model loads or file is written.

argparse knows types; this knows what a value may mean: numbers must be finite and in range,
options that need another option say so, ``--device`` must name a device this machine has.
The plugin's own parameter specs check the rest when the request is built (``validate_request``).
Each problem is one sentence (UsageError, exit 2).
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

from studio.cli.common import UsageError

Check = Callable[[float], str | None]


def at_least(low: float) -> Check:
    return lambda v: None if v >= low else f"must be at least {low:g}"


def more_than(low: float) -> Check:
    return lambda v: None if v > low else f"must be more than {low:g}"


def between(low: float, high: float) -> Check:
    return lambda v: None if low <= v <= high else f"must be between {low:g} and {high:g}"


def above_and_at_most(low: float, high: float) -> Check:
    return lambda v: None if low < v <= high else f"must be more than {low:g} and at most {high:g}"


SEED = between(-1, 2**32 - 1)

#: (subcommand, attribute) -> check, for values that no plugin parameter spec checks (the
#: plugin's own specs check the rest, with the plugin's own ranges, before any load)
RULES: dict[tuple[str, str], Check] = {
    ("latent", "amount"): between(-100, 100),
    ("latent", "fps"): above_and_at_most(0, 120),
    ("latent", "frames"): between(2, 240),
    ("latent", "steps"): between(1, 1000),
    ("latent", "seed_from"): SEED,
    ("latent", "seed_to"): SEED,
    ("image", "batch"): between(1, 100),
}

#: option -> the option it needs (for the subcommands that have both)
NEEDS: dict[str, tuple[str, str]] = {
    "strength": ("init_image", "--strength needs --init-image (it is img2img's denoising strength)"),
    "system": ("chat", "--system needs --chat"),
}

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def validate_args(args: argparse.Namespace) -> None:
    command = getattr(args, "command", "")
    for name, value in vars(args).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        shown = flag(name) if name not in ("amount",) or command != "latent" else "--amount"
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"{shown} must be a finite number (got {value})")
        check = RULES.get((command, name))
        problem = check(value) if check else None
        if problem:
            raise UsageError(f"{shown} {problem} (got {value:g})")
    for name, (needed, message) in NEEDS.items():
        if getattr(args, name, None) not in (None, "", False) and not getattr(args, needed, None):
            raise UsageError(message)
    device = getattr(args, "device", None)
    if device is not None:
        check_device(device)


def machine_devices() -> list[str]:
    """The devices this machine has (the plugin kit's one device policy; imports torch, so only
    called for a device other than auto/cpu)."""
    from studio.plugin_kit.devices import machine_devices as found

    return found()


def check_device(device: str) -> None:
    name = device.strip().lower()
    if name in ("auto", "cpu"):
        return
    if not _DEVICE.match(name):
        have = machine_devices()
        raise UsageError(f"unknown device {device!r}; this machine has: {', '.join(have)}")
    have = machine_devices()
    if name not in have:
        raise UsageError(f"device {device!r} is not available on this machine; it has: {', '.join(have)}")
