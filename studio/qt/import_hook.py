"""A lighter check in PySide6's import hook, for the big imports that follow start-up.

PySide6 replaces ``builtins.__import__`` (for ``from __feature__ import snake_case``) and, after
every first import of a module, asks whether that module's source mentions "PySide6":
``inspect.getsource(module)``, which reads, decodes and line-splits the whole file and keeps it
in ``linecache`` for the rest of the process.  For torch + diffusers + transformers that is
~3 000 files: 0.45 s more import time on 2 cores, tens of MB of cached source, and 30-60 ms
GIL-held stretches on the largest files (GUI stalls while the engine prewarms).

:func:`lighten_pyside_import_hook` swaps in the same question asked of the raw bytes of the
module's ``.py`` file (no decode, no line split, no cache); anything else (no file, not a
``.py``, unreadable) still goes to PySide's own check.  If PySide6 changes its internals the
function leaves everything as it is.
"""

from __future__ import annotations

import sys
from typing import Any

_MARK = "_studio_light"


def lighten_pyside_import_hook() -> bool:
    """Install the lighter check (idempotent).  Returns whether it is in place."""
    feature = sys.modules.get("shibokensupport.feature")
    original = getattr(feature, "_mod_uses_pyside", None)
    if feature is None or not callable(original):
        return False
    if getattr(original, _MARK, False):
        return True

    def _mod_uses_pyside(module: Any) -> bool:
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and path.endswith(".py"):
            try:
                with open(path, "rb") as handle:
                    return b"PySide6" in handle.read()
            except OSError:
                pass
        return original(module)

    setattr(_mod_uses_pyside, _MARK, True)
    feature._mod_uses_pyside = _mod_uses_pyside
    return True
