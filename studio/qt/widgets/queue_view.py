"""The jobs waiting in the engine's queue, each with a remove button."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from studio.core.jobs import Job
from studio.qt.icons import icon


def describe_job(job: Job) -> str:
    request = job.request or job.spec.request
    prompt = str(request.get("prompt", "")).strip().replace("\n", " ")
    what = prompt[:36].rstrip() + ("…" if len(prompt) > 36 else "") if prompt else (job.spec.mode or job.kind.value)
    if job.spec.action == "load":
        what = f"load {job.spec.model}"
    elif job.spec.utility:
        what = job.spec.label or job.spec.action
    return f"#{job.number} · {what}"


class _JobRow(QWidget):
    def __init__(self, job: Job, on_remove: Callable[[Job], None], parent=None):
        super().__init__(parent)
        self.job = job
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 2, 2)
        layout.setSpacing(4)
        label = QLabel(describe_job(job), self)
        label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        prompt = str((job.request or job.spec.request).get("prompt", ""))
        label.setToolTip("\n".join(t for t in (prompt[:300], f"{job.spec.mode or ''} · {job.spec.model}") if t))
        layout.addWidget(label, 1)
        self.remove_button = QToolButton(self)
        self.remove_button.setIcon(icon("close"))
        self.remove_button.setAutoRaise(True)
        self.remove_button.setToolTip("Remove from the queue")
        self.remove_button.clicked.connect(lambda: on_remove(job))
        layout.addWidget(self.remove_button)


class QueueView(QWidget):
    """Shows ``jobs``; hides itself when the queue is empty."""

    removeRequested = Signal(object)  # Job

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.title = QLabel("Queue", self)
        self.title.setObjectName("sectionLabel")
        layout.addWidget(self.title)
        self._rows_layout = QVBoxLayout()
        self._rows_layout.setSpacing(1)
        layout.addLayout(self._rows_layout)
        self.rows: list[_JobRow] = []
        self.hide()

    def set_jobs(self, jobs: Sequence[Job]) -> None:
        if [row.job.id for row in self.rows] == [job.id for job in jobs]:
            return
        for row in self.rows:
            self._rows_layout.removeWidget(row)
            row.hide()  # deleteLater only runs once control is back in the event loop
            row.deleteLater()
        self.rows = [_JobRow(job, self.removeRequested.emit, self) for job in jobs]
        for row in self.rows:
            self._rows_layout.addWidget(row)
        self.title.setText(f"Queue · {len(jobs)} waiting")
        self.setVisible(bool(jobs))

    def jobs(self) -> list[Job]:
        return [row.job for row in self.rows]
