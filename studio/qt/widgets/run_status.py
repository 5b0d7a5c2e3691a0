"""The run status every panel shares: a progress bar with step, ETA and the run's status line,
Interrupt (stop, keep the partial result) and/or Cancel (stop, drop it), and the seeds used.

Binding: ``status.bind(session)`` makes it a view of a
:class:`~studio.core.sessions.base.PanelSession`:

* ``session.changed("job" | "progress" | "status")`` redraws the bar from ``session.active_job``
  (queued / loading / running), ``session.clock`` (step, total, ETA), ``session.status`` (the
  plugin's loading messages, "Stopping…") and, once it ended, ``session.last_job`` and
  ``session.elapsed`` ("Done in 2.1s", "Interrupted after 3s · partial result kept");
* ``session.changed("seeds")`` shows ``session.seeds_used`` ("Seed 7", "Seeds 7–10");
* the Interrupt button calls ``session.interrupt()``, Cancel calls ``session.cancel()``; each is
  enabled only while the active job can be stopped that way.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from studio.core.jobs import JobState
from studio.core.progress import format_duration
from studio.qt.icons import icon
from studio.qt.widgets.binding import connect_while_alive

_FINISHED_TEXT = {
    JobState.DONE: "Done in {elapsed}",
    JobState.INTERRUPTED: "Interrupted after {elapsed} · partial result kept",
    JobState.CANCELLED: "Cancelled",
    JobState.FAILED: "Failed",
}


class RunStatus(QWidget):
    def __init__(self, parent: QWidget | None = None, *, interrupt: bool = True, cancel: bool = False,
                 buttons_beside: QHBoxLayout | None = None):
        """``buttons_beside``: put the buttons into that row (e.g. next to Generate) instead of
        a row of their own above the bar."""
        super().__init__(parent)
        self.session: Any = None
        self.detail = ""
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(6)
        row = buttons_beside if buttons_beside is not None else QHBoxLayout()
        self.interrupt_button = QPushButton("Interrupt", self)
        self.interrupt_button.setObjectName("interruptButton")
        self.interrupt_button.setIcon(icon("stop"))
        self.interrupt_button.setMinimumHeight(38)
        self.interrupt_button.setToolTip("Stop the running job and keep what it has so far")
        self.interrupt_button.setEnabled(False)
        self.interrupt_button.setVisible(interrupt)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setObjectName("cancelButton")
        self.cancel_button.setToolTip("Stop the job and drop it")
        self.cancel_button.setEnabled(False)
        self.cancel_button.setVisible(cancel)
        row.addWidget(self.interrupt_button)
        row.addWidget(self.cancel_button)
        if buttons_beside is None and (interrupt or cancel):
            column.addLayout(row)
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("Ready")
        column.addWidget(self.progress)
        self.info = QLabel(self)
        self.info.setObjectName("hint")
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.info.hide()
        column.addWidget(self.info)
        self.interrupt_button.clicked.connect(self._interrupt)
        self.cancel_button.clicked.connect(self._cancel)

    def bind(self, session: Any) -> None:
        self.session = session
        connect_while_alive(self, session.changed, self._session_changed)
        self.redraw()

    def _session_changed(self, what: str) -> None:
        if what in ("job", "progress", "status"):
            self.redraw()
        elif what == "seeds":
            self.show_info()

    def _interrupt(self) -> None:
        if self.session is not None:
            self.session.interrupt()
            self.interrupt_button.setEnabled(False)

    def _cancel(self) -> None:
        if self.session is not None:
            self.session.cancel()
            self.cancel_button.setEnabled(False)

    def set_detail(self, text: str) -> None:
        """A panel's own fact about the last result (e.g. "64×64"), shown after the seeds."""
        self.detail = text
        self.show_info()

    def show_info(self) -> None:
        seeds = list(self.session.seeds_used) if self.session is not None else []
        parts = []
        if len(seeds) == 1:
            parts.append(f"Seed {seeds[0]}")
        elif seeds:
            parts.append(f"Seeds {seeds[0]}–{seeds[-1]}")
        if self.detail:
            parts.append(self.detail)
        self.info.setText(" · ".join(parts))
        self.info.setVisible(bool(parts))

    def redraw(self) -> None:
        session = self.session
        if session is None:
            return
        job = session.active_job
        bar = self.progress
        # A queued job can be stopped too (the engine then just takes it off the queue): the
        # button must work from the moment the user clicked Generate / Send, not from when the
        # worker happens to pick the job up.
        stoppable = job is not None and not job.state.finished
        self.cancel_button.setEnabled(job is not None and not job.state.finished)
        if job is not None and job.cancel_token.is_set:
            stoppable = False
        self.interrupt_button.setEnabled(stoppable)
        if job is None:
            last = session.last_job
            if last is None or not last.state.finished:
                bar.setRange(0, 1)
                bar.setValue(0)
                bar.setFormat("Ready")
                return
            bar.setRange(0, 1)
            bar.setValue(1 if last.state in (JobState.DONE, JobState.INTERRUPTED) else 0)
            bar.setFormat(_FINISHED_TEXT.get(last.state, last.state.value).format(
                elapsed=format_duration(session.elapsed)))
            return
        if job.state is JobState.QUEUED:
            bar.setRange(0, 1)
            bar.setValue(0)
            bar.setFormat("Waiting in the queue…")
        elif job.state is JobState.LOADING:
            bar.setRange(0, 0)  # busy: a load has no steps
            bar.setFormat((session.status or "Loading model…")[:80])
        else:
            clock = session.clock
            if clock.total > 0:
                bar.setRange(0, clock.total)
                bar.setValue(min(clock.step, clock.total))
                text = clock.describe()
                bar.setFormat(f"{text} · {session.status}" if session.status else text)
            else:
                bar.setRange(0, 1)
                bar.setValue(0)
                bar.setFormat(session.status or "Starting…")
