"""Atomic file writes for the core: the implementation is the plugin kit's (plugins write files too).

Kept so ``studio.core.atomic`` stays the import the core's own modules use; see
:mod:`studio.plugin_kit.atomic`.
"""

from __future__ import annotations

from studio.plugin_kit.atomic import (
    Staged,
    atomic_output,
    publish_new,
    remove_stale_temp_files,
    stage,
    write_bytes_atomic,
    write_text_atomic,
)

__all__ = ["Staged", "atomic_output", "publish_new", "remove_stale_temp_files", "stage", "write_bytes_atomic",
           "write_text_atomic"]
