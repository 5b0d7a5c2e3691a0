"""Keep freed native memory in the process while models run on worker threads (glibc only).

glibc's malloc tunes its mmap and trim thresholds dynamically, but in practice the tuning
settles only on the main thread's arena: worker-thread arenas kept handing large freed blocks
(tensors of a few MB) back to the system and faulting them in again on the next step.  Measured
on a 20 s EnCodec decode (MusicGen): 60-65 ms with 6-14 thousand page faults on a thread, against
45 ms and none on the main thread, where a script calling the library runs.  In the studio every
run is driven from the engine's worker thread, and plugins whose library call blocks (diffusers'
pipeline call, transformers' ``generate``, MusicGen) make that call on a helper thread of their
own (:class:`studio.plugin_kit.streaming.ThreadStream`).  ``mallopt``'s thresholds are
process-wide, so the engine fixes them once, at the values the dynamic tuning reaches on the
main thread (mmap 32 MB, trim 64 MB), before anything loads, and every one of those threads
keeps its freed memory.

Best-effort: on other C libraries (musl, macOS, Windows) it does nothing.
"""

from __future__ import annotations

import sys
import threading

MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 64 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers (glibc malloc.h)

_lock = threading.Lock()
_applied: bool | None = None  # None: not tried yet


def reuse_freed_memory_on_threads() -> bool:
    """Fix malloc's mmap and trim thresholds once per process; True where that took effect."""
    global _applied
    with _lock:
        if _applied is None:
            _applied = _set_thresholds()
        return _applied


def _set_thresholds() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no mallopt: not glibc
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    # The mmap threshold first: setting either one switches the dynamic tuning off.
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
