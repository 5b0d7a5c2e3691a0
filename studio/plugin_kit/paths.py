"""Where the user's Studio data lives (outputs, settings, wildcards ...); stdlib only.

``STUDIO_HOME`` overrides it (tests point it at a temp dir); otherwise the platform's usual place.
Core's settings and plugins ask this one function, so they always agree.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def studio_home() -> Path:
    override = os.environ.get("STUDIO_HOME")
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA", Path.home()))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "studio"


def wildcards_folder() -> Path:
    """``<studio home>/wildcards``: ``name.txt`` files for ``__name__`` in prompts."""
    return studio_home() / "wildcards"


__all__ = ["studio_home", "wildcards_folder"]
