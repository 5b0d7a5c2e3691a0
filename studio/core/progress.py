"""Step timing for progress bars: rate and ETA from the steps seen so far."""

from __future__ import annotations

import time
from collections.abc import Callable


class ProgressClock:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.reset()

    def reset(self) -> None:
        self._start: float | None = None
        self._first_step: int = 0
        self.step = 0
        self.total = 0

    def update(self, step: int, total: int) -> None:
        now = self._clock()
        if self._start is None or step < self.step:
            self._start, self._first_step = now, step
        self.step, self.total = step, total
        self._now = now

    @property
    def seconds_per_step(self) -> float | None:
        if self._start is None or self.step <= self._first_step:
            return None
        return (self._now - self._start) / (self.step - self._first_step)

    @property
    def eta_seconds(self) -> float | None:
        rate = self.seconds_per_step
        if rate is None or self.total <= 0:
            return None
        return max(0.0, (self.total - self.step) * rate)

    def describe(self) -> str:
        if self.total <= 0:
            return f"step {self.step}"
        text = f"{self.step}/{self.total}"
        eta = self.eta_seconds
        if eta is not None:
            text += f" · ETA {format_duration(eta)}"
        return text


def format_duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f}s"
    seconds = int(round(seconds))
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}:{secs:02d}" if minutes else f"{secs}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
