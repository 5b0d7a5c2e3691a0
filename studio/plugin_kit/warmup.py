"""Importing heavy libraries without freezing the window (standard library only).

Importing torch + diffusers on the engine's worker thread takes seconds; the GUI thread keeps
running as long as the importing thread lets go of the GIL often.  Two things stop it from
doing so (measured on 2 CPU cores with a probe timer on the GUI thread; bench_ui_stall.py):

* **The cyclic garbage collector.**  An import burst allocates over a million container
  objects, so every few hundred milliseconds the collector runs a full collection over all of
  them with the GIL held: 90, 130, 150, 190, 240 ms GUI stalls, growing with the heap.
  :func:`paused_gc` pauses it for the burst and then *freezes* what exists (``gc.freeze``):
  modules, classes and functions live for the whole process anyway, and later collections
  no longer walk them (when models are loaded it only ages them instead; see there).
* **Loading torch's native library.**  ``import torch`` dlopens ``libtorch_cpu.so`` (≈400 MB;
  relocations and static initialisers take ≈190 ms) inside the import, with the GIL held.
  ctypes' own ``CDLL`` holds the GIL too (CPython 3.11), but a call *through* ctypes to
  libc's ``dlopen`` releases it, so :func:`preload_torch_libraries` loads those files first,
  GIL-free; the later ``import torch`` finds them already mapped.

What remains are many short GIL-held stretches (module bodies, C calls such as torch's
operator look-ups), and each time the GUI thread wants the GIL back it waits up to the
interpreter's switch interval (5 ms) for a turn; a repaint that calls Python several times
waits several turns.  :func:`responsive_gil` shortens the interval to 1 ms while a burst of
imports or a model load runs on the worker thread (gaps over 12 ms during the prewarm: 7-22
per run before, 0-5 after), and puts it back afterwards.

All of this is best-effort: anything unexpected and it does nothing, and the import that
follows simply takes its usual course.
"""

from __future__ import annotations

import gc
import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


@contextmanager
def paused_gc(freeze: bool = True) -> Iterator[None]:
    """Run a burst of imports with the cyclic GC paused; afterwards move what exists out of
    the young generations, so no collection has to walk the burst's million objects at once.

    ``freeze=True`` moves everything that exists to the permanent generation (``gc.freeze``):
    right for imports at start-up, as modules, classes and functions live as long as the
    process, but anything frozen that later becomes cyclic garbage is never collected, so
    pass ``freeze=False`` while models are loaded (their memory must come back on unload):
    the objects then go to the oldest generation, which the collector still visits, rarely.
    Never wrap a model load itself in this."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if not freeze:
            gc.unfreeze()
        if was_enabled:
            gc.enable()


@contextmanager
def responsive_gil(interval: float = 0.001) -> Iterator[None]:
    """Hand the GIL to other threads (the GUI) at least every ``interval`` seconds meanwhile."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, interval))
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def _libc_dlopen() -> Callable[[bytes, int], int | None] | None:
    if sys.platform == "win32":
        return None
    import ctypes

    dlopen = ctypes.CDLL(None).dlopen  # a plain ctypes foreign call: the GIL is released around it
    dlopen.restype = ctypes.c_void_p
    dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return dlopen


def dlopen_without_gil(path: Path, global_symbols: bool = False) -> bool:
    """Map a shared library (and run its static initialisers) without holding the GIL.

    The handle is kept for the life of the process, as the importer would keep it.  Returns
    whether the library is loaded; False (and nothing changed) on any failure."""
    try:
        dlopen = _libc_dlopen()
        if dlopen is None:
            return False
        flags = os.RTLD_NOW | (os.RTLD_GLOBAL if global_symbols else os.RTLD_LOCAL)
        return bool(dlopen(os.fsencode(str(path)), flags))
    except Exception:  # an optimisation only
        log.debug("could not preload %s", path, exc_info=True)
        return False


def _package_folder(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)  # finds the package without importing it
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent


def preload_torch_libraries() -> list[str]:
    """Load torch's CPU libraries GIL-free, in the order ``import torch`` itself loads them
    (``libtorch_global_deps`` with global symbols, then ``libc10`` and ``libtorch_cpu``).

    Does nothing once torch is imported, on Windows, or when the files are not where a wheel
    puts them.  A failed load (say, a CUDA wheel whose runtime libraries torch must locate
    itself) stops the preload there, leaving the rest to ``import torch`` as usual.  Returns
    the names of the libraries it loaded."""
    if "torch" in sys.modules or sys.platform == "win32" or os.environ.get("TORCH_USE_RTLD_GLOBAL"):
        return []  # (with TORCH_USE_RTLD_GLOBAL torch loads its libraries its own, global way)
    folder = _package_folder("torch")
    if folder is None:
        return []
    suffix = ".dylib" if sys.platform == "darwin" else ".so"
    loaded = []
    for name, global_symbols in (("libtorch_global_deps", True), ("libc10", False), ("libtorch_cpu", False)):
        path = folder / "lib" / f"{name}{suffix}"
        if not path.is_file():
            continue
        if not dlopen_without_gil(path, global_symbols):
            break  # keep torch's own order: never load a later library without the earlier one
        loaded.append(path.name)
    return loaded
