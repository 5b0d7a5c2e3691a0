"""What a job is and what it says: the engine's data types, plain and immutable where they can be.

:class:`JobSpec` is what a panel, the CLI or a sweep asks for; :class:`Job` is the engine's record
of one request; the frozen event classes are what listeners receive besides the plugin's own
``Progress``/``Preview``/``Partial``/``Log``/``Result``.  They live apart from
:mod:`studio.core.jobs` (the engine itself) so that a reader of either finds one idea per module;
``studio.core.jobs`` re-exports them, so ``from studio.core.jobs import JobSpec`` keeps working.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from studio.plugin_api import (
    Artifact,
    CancelToken,
    Kind,
    LoadedModel,
    LoadOptions,
    ModelHints,
    Plugin,
    ReportsLoadMemory,
    ReportsUnsupported,
    Result,
)


class JobState(str, Enum):
    QUEUED = "queued"
    LOADING = "loading"
    RUNNING = "running"
    DONE = "done"
    INTERRUPTED = "interrupted"  # stopped early; the partial result was kept
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.INTERRUPTED, JobState.CANCELLED, JobState.FAILED)


@dataclass(frozen=True)
class JobSpec:
    plugin_id: str
    model: str
    request: dict[str, Any] = field(default_factory=dict)
    mode: str | None = None
    options: LoadOptions = LoadOptions()
    save: bool = True  # write artifacts to the output store
    #: run | load (load the model only) | call (run ``call`` on the loaded model, see
    #: Engine.call) | unload (free every loaded copy of ``model``, see Engine.unload)
    action: str = "run"
    # Interactive work (a slider preview) goes ahead of queued jobs; it still waits for the
    # running one, since there is one lane.  A newer interactive job from the same ``lane_key``
    # replaces a queued older one: only the newest slider value matters.
    interactive: bool = False
    lane_key: str = ""
    #: action "call": the function run on the worker thread against the loaded model
    call: Callable[[LoadedModel], Any] | None = None
    #: a short description for queue views ("count tokens"); utility jobs only
    label: str = ""

    @property
    def utility(self) -> bool:
        """A call or unload: short bookkeeping on a model, not a generation (kept out of the history)."""
        return self.action in ("call", "unload")
    # Files the user named (``--out picture.png``): the i-th saved artifact is written exactly
    # there (never replacing a file); artifacts beyond these get the store's numbered names.
    targets: tuple[str, ...] = ()


# Engine events (besides the plugin's own Progress/Preview/Partial/Log/Result) -----------


@dataclass(frozen=True)
class StateChanged:
    state: JobState
    message: str = ""


@dataclass(frozen=True)
class Saved:
    artifact: Artifact
    path: Path
    output_id: int


@dataclass(frozen=True)
class ModelLoaded:
    """The job's model is loaded (or was already): what views show about it, as plain data."""

    source: str
    device: str
    defaults: dict[str, Any] = field(default_factory=dict)
    choices: dict[str, list[Any]] = field(default_factory=dict)
    modes: list[str] = field(default_factory=list)  # the run modes this model supports
    unsupported: dict[str, str] = field(default_factory=dict)  # parameter -> why it has no effect here
    memory: dict[str, Any] = field(default_factory=dict)  # what the load cost (ReportsLoadMemory)

    @classmethod
    def of(cls, plugin: Plugin, source: str, model: LoadedModel) -> ModelLoaded:
        """What ``model`` says about itself (:class:`ModelHints`); a model without hints
        supports every mode of its plugin.  API 1.0 documented ``defaults`` and ``choices``
        as optional attributes of a loaded model, so those are still read on their own."""
        hints: Any = model if isinstance(model, ModelHints) else None
        defaults = getattr(model, "defaults", None) if hints is None else hints.defaults
        choices = getattr(model, "choices", None) if hints is None else hints.choices
        modes = list(hints.modes) if hints is not None else list(plugin.modes())
        return cls(source=source, device=str(getattr(model, "device", "") or ""), defaults=dict(defaults or {}),
                   choices={k: list(v) for k, v in dict(choices or {}).items()}, modes=modes,
                   unsupported=dict(model.unsupported) if isinstance(model, ReportsUnsupported) else {},
                   memory=dict(model.load_memory) if isinstance(model, ReportsLoadMemory) else {})


@dataclass(frozen=True)
class Answered:
    """A call job's answer.  ``loaded`` is False when the model was not loaded, in which case
    nothing ran and ``value`` is None (a call never loads a model)."""

    value: Any
    loaded: bool = True


@dataclass(frozen=True)
class Unloaded:
    """An unload job freed ``count`` loaded copies of ``source`` (0: it was not loaded)."""

    source: str
    count: int


@dataclass(frozen=True)
class Failed:
    message: str  # one sentence for the user
    stage: str  # validate | load | run | call
    detail: str = ""  # traceback, for the log


@dataclass
class Job:
    id: str
    number: int
    spec: JobSpec
    kind: Kind
    request: dict[str, Any]
    state: JobState = JobState.QUEUED
    message: str = ""
    created: float = field(default_factory=time.time)
    cancel_token: CancelToken = field(default_factory=CancelToken)
    saved: list[Path] = field(default_factory=list)
    saved_ids: set[int] = field(default_factory=set)  # id() of artifacts already written
    result: Result | None = None
    answer: Any = None  # a call job's value (also sent as an Answered event)
    failure: Failed | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)


Listener = Callable[[Job, object], None]
