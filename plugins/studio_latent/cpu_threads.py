"""One CPU thread for small denoisers, shared by the UNet (DDPM) and transformer (FlowEdit) models."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

#: denoisers smaller than this run on one CPU thread: their layers are too small to split, and extra
#: threads on a busy CPU spin (measured on the tiny test pipeline, loaded 2-core machine: 1.1 s
#: per 20-step frame on 1 thread vs 12.5 s on 2).
SMALL_DENOISER_PARAMS = 20_000_000


def is_small(module: torch.nn.Module | None) -> bool:
    return module is not None and sum(p.numel() for p in module.parameters()) < SMALL_DENOISER_PARAMS


@contextmanager
def one_thread_if_small(small: bool, device: str) -> Iterator[None]:
    """torch on one thread for the block when a small denoiser runs on the CPU; restored after."""
    previous = torch.get_num_threads()
    if small and device == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
