"""Running an unfinished job again without redoing what it already saved.

A batch saves each image as it is done (``ArtifactReady``), so a job killed at image 3 of 4
left images 1 and 2 on disk.  Running it again asks only for images 3 and 4, with the seeds
they would have had: the studio's batch convention is that image *i* of a batch uses
``seed + i`` (the built-in image plugin, like the A1111 tools, does this), and the first
saved output carries the batch's actual seed even when the request asked for a random one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SEED_LIMIT = 2**32


def remaining_request(request: dict[str, Any], saved_seeds: Sequence[int | None]) -> dict[str, Any] | None:
    """The request that makes the outputs still missing, or None when nothing is missing."""
    if not saved_seeds:
        return dict(request)
    if "batch_count" not in request:
        return None  # a one-output job whose output was saved: it had finished its work
    try:
        count = int(request.get("batch_count") or 1)
    except (TypeError, ValueError):
        return dict(request)
    remaining = count - len(saved_seeds)
    if remaining <= 0:
        return None
    first = saved_seeds[0]
    if first is None:  # no seed recorded: cannot tell which images are missing; redo all
        return dict(request)
    return {**request, "batch_count": remaining, "seed": (int(first) + len(saved_seeds)) % SEED_LIMIT}
