"""How one pipeline call is watched step by step: stop signals, the denoised-estimate recorder and
diffusers' rule for which timestep completes a user-visible step.

Kept apart from :mod:`model` so the loaded model's run loop reads as the run loop; nothing here
knows about requests or families.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch


class Abort(Exception):
    """Raised inside the step callback to stop a pipeline call at once (cancel, or consumer gone)."""


class KeepPartialError(Exception):
    """Raised from the scheduler hook (pipelines without a step callback) to stop and keep ``latents``."""

    def __init__(self, latents: Any) -> None:
        super().__init__("interrupted")
        self.latents = latents


@dataclass
class Outcome:
    images: list = field(default_factory=list)
    interrupted: bool = False
    steps_done: int = 0


class DenoisedRecorder:
    """Wraps a fresh scheduler's ``step`` to keep the latest denoised (x0) estimate, when the
    scheduler offers one; previews and partial results look much better from it than from x_t."""

    def __init__(self, scheduler: Any) -> None:
        self.latest: torch.Tensor | None = None
        self.after_step: Callable[[Any], None] | None = None  # the step hook, for pipelines without callbacks
        self._step = scheduler.step
        scheduler.step = self._wrapped
        self._scheduler = scheduler

    def _wrapped(self, *args: Any, **kwargs: Any) -> Any:
        out = self._step(*args, **kwargs)
        self._record(out)
        if self.after_step is not None:
            self.after_step(out[0] if isinstance(out, tuple) else out.prev_sample)
        return out

    def _record(self, out: Any) -> None:
        x0 = getattr(out, "pred_original_sample", None)
        if x0 is None and isinstance(out, tuple) and len(out) > 1 and isinstance(out[1], torch.Tensor):
            x0 = out[1]
        if x0 is None:  # multistep solvers in x0-prediction form keep it as their last model output
            outputs = getattr(self._scheduler, "model_outputs", None)
            config = self._scheduler.config
            if outputs and outputs[-1] is not None and (
                    config.get("algorithm_type", "") in ("dpmsolver++", "sde-dpmsolver++")
                    or config.get("predict_x0", False)):
                x0 = outputs[-1]
        self.latest = x0


def counted(i: int, n_timesteps: int, order: int, n_steps: int) -> bool:
    """Whether timestep index ``i`` completes a user-visible step (diffusers' progress-bar rule)."""
    warmup = n_timesteps - n_steps * order
    return i == n_timesteps - 1 or ((i + 1) > warmup and (i + 1) % order == 0)
