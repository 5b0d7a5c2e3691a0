"""Downloads off means offline: the Hugging Face hub library's offline mode, set per job.

``local_files_only=True`` is not enough: ``huggingface_hub`` (2.x) builds its request headers
by detecting "agent harnesses" from a registry it fetches from the hub, and it may ask the
hub about a repo before it looks in the cache.  Only its offline mode stops every request.

That mode is read in two places, and both must be set for it to take effect:

* the environment variable ``HF_HUB_OFFLINE``, read once when ``huggingface_hub`` is first
  imported (which, in the studio, happens inside the first model load);
* the runtime constant ``huggingface_hub.constants.HF_HUB_OFFLINE``, which ``is_offline_mode()``
  and the HTTP layer read on every request once the library is imported — and the copies that
  diffusers made with ``from huggingface_hub.constants import HF_HUB_OFFLINE`` at its import.

The core never imports these libraries: it sets the constants only in modules already
imported (``sys.modules``), and the environment variable for those imported later.  A user
who set ``HF_HUB_OFFLINE=1`` themselves stays offline whatever a job allows.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

ENV = "HF_HUB_OFFLINE"
_TRUE = {"1", "true", "yes", "on"}
#: modules that hold the mode as a module-level constant (read at call time)
_HOLDERS = ("huggingface_hub.constants", "diffusers.utils.hub_utils", "diffusers.loaders.lora_base",
            "diffusers.models.attention_dispatch")


def user_wants_offline() -> bool:
    """The user's own setting (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` at studio start)."""
    return _USER_OFFLINE


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


_USER_OFFLINE = _env_true(ENV) or _env_true("TRANSFORMERS_OFFLINE")


def set_hub_offline(offline: bool) -> None:
    """Put the hub library (imported or not yet) in offline mode, or take it out."""
    offline = offline or _USER_OFFLINE
    if offline:
        os.environ[ENV] = "1"
    else:
        os.environ.pop(ENV, None)
    for name in _HOLDERS:
        module = sys.modules.get(name)
        if module is not None and isinstance(getattr(module, ENV, None), bool):
            setattr(module, ENV, offline)


def hub_offline_now() -> bool:
    """Whether the hub library is in offline mode right now (as it will see it)."""
    module = sys.modules.get("huggingface_hub.constants")
    if module is not None:
        return bool(getattr(module, ENV, False))
    return _env_true(ENV)


@contextmanager
def hub_offline(offline: bool) -> Iterator[None]:
    """Offline mode for the ``with`` block (one job); afterwards, as it was before."""
    before_env = os.environ.get(ENV)
    before = hub_offline_now()
    set_hub_offline(offline)
    try:
        yield
    finally:
        set_hub_offline(before)
        if before_env is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before_env
