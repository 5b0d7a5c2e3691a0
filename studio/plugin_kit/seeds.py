"""Seeds: one random 32-bit seed per request when none is given; item i of a batch uses seed + i."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported only when a generator is made
    import torch

SEED_LIMIT = 2**32


def pick_seed(seed: int | None) -> int:
    """``seed`` itself, or a fresh random 32-bit seed when it is None or -1."""
    if seed is None or seed == -1:
        return secrets.randbelow(SEED_LIMIT)
    return int(seed) % SEED_LIMIT


def batch_seeds(seed: int, count: int) -> list[int]:
    return [(seed + i) % SEED_LIMIT for i in range(count)]


def cpu_generator(seed: int) -> torch.Generator:
    """A CPU torch.Generator: the same noise for a seed on every device."""
    import torch

    return torch.Generator("cpu").manual_seed(seed)
