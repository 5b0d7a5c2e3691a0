"""Image → X/Y/Z plot: up to three of the form's parameters, values typed as lists or ranges.

A thin view over :class:`studio.core.sessions.sweep.SweepSession`: the axes go in, the plan's
size (or the one sentence saying what is wrong) comes out as you type; Run queues the items on
the local engine, the bars show items done and the running item's steps, and the grid is shown
when the last item is saved.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from studio.core.progress import format_duration
from studio.core.sessions.sweep import SweepSession
from studio.core.sweeps.spec import AXIS_NAMES
from studio.qt.bridge import EngineBridge

RANGE_HINT = "3, 5, 7   or   1-9 [5]   or   1-9 (+2)"
REPLACE_HINT = "red, blue, green   (the first is the text replaced in the prompt)"


class XYZDialog(QDialog):
    def __init__(self, session: SweepSession, bridge: EngineBridge, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("X/Y/Z plot")
        self.session = session
        self.bridge = bridge
        self.params = session.sweepable_parameters()
        layout = QVBoxLayout(self)

        grid = QGridLayout()
        self.param_boxes: list[QComboBox] = []
        self.value_edits: list[QLineEdit] = []
        for row, name in enumerate(AXIS_NAMES):
            grid.addWidget(QLabel(f"{name}:", self), row, 0)
            box = QComboBox(self)
            box.addItem("—", "")
            for param in self.params:
                box.addItem(param.label, param.name)
            edit = QLineEdit(self)
            edit.setPlaceholderText(RANGE_HINT)
            box.currentIndexChanged.connect(lambda _=0, r=row: self._axis_edited(r))
            edit.textChanged.connect(lambda _="", r=row: self._axis_edited(r))
            grid.addWidget(box, row, 1)
            grid.addWidget(edit, row, 2)
            self.param_boxes.append(box)
            self.value_edits.append(edit)
        grid.setColumnStretch(2, 1)
        layout.addLayout(grid)

        self.plan_label = QLabel(self)
        self.plan_label.setWordWrap(True)
        layout.addWidget(self.plan_label)

        self.items_bar = QProgressBar(self)
        self.items_bar.setFormat("%v / %m items")
        self.step_bar = QProgressBar(self)
        self.step_bar.setFormat("item: step %v / %m")
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        for widget in (self.items_bar, self.step_bar, self.status):
            layout.addWidget(widget)

        self.grid_view = QLabel(self)
        self.grid_view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.grid_choice = QComboBox(self)
        self.grid_choice.currentIndexChanged.connect(self._show_grid)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.grid_view)
        scroll.setMinimumHeight(260)
        layout.addWidget(self.grid_choice)
        layout.addWidget(scroll, 1)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.run_button = QPushButton("Run", self)
        self.run_button.clicked.connect(self.run)
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.clicked.connect(session.stop)
        close = QPushButton("Close", self)
        close.clicked.connect(self.close)
        for button in (self.run_button, self.stop_button, close):
            buttons.addWidget(button)
        layout.addLayout(buttons)

        session.changed.connect(self._on_changed)
        session.message.connect(self._on_message)
        bridge.event.connect(session.handle)
        self.resize(640, 620)
        session.refresh_plan()
        self._refresh_state()

    # -- binding ------------------------------------------------------------------------------
    def _axis_edited(self, row: int) -> None:
        name = self.param_boxes[row].currentData() or ""
        param = next((p for p in self.params if p.name == name), None)
        self.value_edits[row].setPlaceholderText(
            REPLACE_HINT if param is not None and self.session.is_search_replace(param) else RANGE_HINT)
        self.session.set_axis(row, name, self.value_edits[row].text())

    def set_axis(self, row: int, param: str, values: str) -> None:
        """Fill an axis as a user would (tests, presets)."""
        index = self.param_boxes[row].findData(param)
        self.param_boxes[row].setCurrentIndex(max(0, index))
        self.value_edits[row].setText(values)

    def run(self) -> None:
        self.session.start()

    def _on_changed(self, what: str) -> None:
        if what == "plan":
            plan = self.session.plan
            if plan is None:
                self.plan_label.setText(self.session.problem)
                self.plan_label.setStyleSheet("color: #b03030;")
            else:
                shape = " × ".join(str(len(a.values)) for a in plan.axes)
                self.plan_label.setText(f"{len(plan.items)} items ({shape}), seed "
                                        f"{', '.join(str(s) for s in plan.seeds)}; "
                                        + "; ".join(plan.notes[:2]))
                self.plan_label.setStyleSheet("")
            self._refresh_state()
        elif what in ("state", "progress"):
            self._refresh_state()
        elif what == "grids":
            self.grid_choice.clear()
            for path in self.session.grids:
                self.grid_choice.addItem(path.name, str(path))
            self._show_grid()

    def _on_message(self, level: str, text: str) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #b03030;" if level == "error" else "")

    def _refresh_state(self) -> None:
        session = self.session
        running = session.running
        self.run_button.setEnabled(not running and session.plan is not None)
        self.stop_button.setEnabled(running)
        for widget in (*self.param_boxes, *self.value_edits):
            widget.setEnabled(not running)
        self.items_bar.setMaximum(max(1, session.total))
        self.items_bar.setValue(session.done)
        step, total = session.step
        self.step_bar.setMaximum(max(1, total))
        self.step_bar.setValue(step)
        eta = session.item_clock.eta_seconds
        if running and eta is not None:
            self.status.setText(f"{session.done} of {session.total} items · about {format_duration(eta)} left")

    def _show_grid(self, *_: Any) -> None:
        path = self.grid_choice.currentData()
        if not path:
            return
        pixmap = QPixmap(path)
        self.grid_view.setPixmap(pixmap)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        if self.session.running:  # the sweep goes on in the queue; reopening shows this dialog again
            event.ignore()
            self.hide()
            return
        try:
            self.bridge.event.disconnect(self.session.handle)
        except (RuntimeError, TypeError):  # already disconnected
            pass
        super().closeEvent(event)
