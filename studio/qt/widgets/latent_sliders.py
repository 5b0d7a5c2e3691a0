"""Direction sliders for the Latent panel: one row per direction, grouped (named, PCA, files).

Each row: a "keep fixed" check box (conditional editing), the name, a slider over the
direction's range in its own units, the value, and the measured edit-quality badge.  The
unadjusted directions (each also drags related attributes along) are folded under "Advanced".
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QGridLayout, QLabel, QSlider, QToolButton, QVBoxLayout, QWidget

from studio.core.sessions.latent_state import ADVANCED_GROUP

TICKS = 200  # slider positions over a direction's range


def _fmt(value: float) -> str:
    return f"{value:+.3g}" if value else "0"


class DirectionRow:
    def __init__(self, view, grid: QGridLayout, row: int, parent: QWidget):
        self.view = view
        self.keep = QCheckBox(parent)
        self.keep.setToolTip(f"Keep {view.label} fixed: other edits are made orthogonal to this direction")
        self.keep.setObjectName(f"keep_{view.name}")
        self.label = QLabel(view.label, parent)
        tip = f"{view.name} ({view.kind})"
        if view.units:
            tip += f" - slider units: {view.units}"
        if view.notes:
            tip += f"\n{view.notes}"
        self.label.setToolTip(tip)
        self.slider = QSlider(Qt.Orientation.Horizontal, parent)
        self.slider.setObjectName(f"slider_{view.name}")
        self.slider.setRange(0, TICKS)
        self.slider.setValue(self.position(0.0))
        self.slider.setMinimumWidth(120)
        self.value = QLabel("0", parent)
        self.value.setMinimumWidth(48)
        self.badge = QLabel("", parent)
        self.badge.setObjectName("qualityBadge")
        self.badge.setMinimumWidth(64)
        for col, w in enumerate((self.keep, self.label, self.slider, self.value, self.badge)):
            grid.addWidget(w, row, col)

    def amount(self, position: int | None = None) -> float:
        lo, hi = self.view.range
        pos = self.slider.value() if position is None else position
        value = lo + (hi - lo) * pos / TICKS
        return 0.0 if abs(value) < 1e-9 * max(1.0, hi - lo) else value

    def position(self, amount: float) -> int:
        lo, hi = self.view.range
        return int(round((min(max(amount, lo), hi) - lo) / (hi - lo) * TICKS))


class DirectionSliders(QWidget):
    #: (name, amount)
    amountChanged = Signal(str, float)
    #: (name, kept)
    keepChanged = Signal(str, bool)
    #: the user let go of a slider
    released = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.rows: dict[str, DirectionRow] = {}
        self.advanced_toggle: QToolButton | None = None
        self._advanced: list[QWidget] = []
        self._column = QVBoxLayout(self)
        self._column.setContentsMargins(0, 0, 0, 0)
        self._body: QWidget | None = None
        self._quiet = False
        self.empty = QLabel("No directions yet: load a model.", self)
        self.empty.setObjectName("hint")
        self.empty.setWordWrap(True)  # a long hint must not widen the column past the window
        self._column.addWidget(self.empty)

    def set_directions(self, views, amounts=None, keep=()) -> None:
        if self._body is not None:
            self._body.deleteLater()
        self.rows = {}
        self._body = QWidget(self)
        grid = QGridLayout(self._body)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(2)
        row = 0
        groups: dict[str, list] = {}
        for v in views:
            groups.setdefault(v.group, []).append(v)
        order = ["Named", "Unsupervised (PCA)", "From files", ADVANCED_GROUP]
        self.advanced_toggle, self._advanced = None, []
        for group in sorted(groups, key=lambda g: order.index(g) if g in order else 99):
            advanced = group == ADVANCED_GROUP
            if advanced:
                title = self._fold_button(len(groups[group]))
            else:
                title = QLabel(group, self._body)
                title.setObjectName("sectionLabel")
            grid.addWidget(title, row, 0, 1, 5)
            row += 1
            for v in groups[group]:
                r = DirectionRow(v, grid, row, self._body)
                self.rows[v.name] = r
                if advanced:
                    for w in (r.keep, r.label, r.slider, r.value, r.badge):
                        w.setVisible(False)
                        self._advanced.append(w)
                r.slider.valueChanged.connect(lambda pos, name=v.name: self._moved(name, pos))
                r.slider.sliderReleased.connect(lambda name=v.name: self.released.emit(name))
                r.keep.toggled.connect(lambda on, name=v.name: self.keepChanged.emit(name, on))
                row += 1
        self._column.addWidget(self._body)
        self.empty.setVisible(not self.rows)
        self._quiet = True
        try:
            for name, amount in (amounts or {}).items():
                self.set_amount(name, amount)
            for name in keep:
                if name in self.rows:
                    self.rows[name].keep.setChecked(True)
        finally:
            self._quiet = False

    def _fold_button(self, count: int) -> QToolButton:
        button = QToolButton(self._body)
        button.setObjectName("foldButton")
        button.setText(f"Advanced: {count} unadjusted direction{'s' if count != 1 else ''}")
        button.setToolTip("The plain direction of each attribute. It also moves related attributes; the "
                          "sliders above correct for that, so start there.")
        button.setCheckable(True)
        button.setAutoRaise(True)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        button.setArrowType(Qt.ArrowType.RightArrow)
        button.toggled.connect(self.show_advanced)
        self.advanced_toggle = button
        return button

    def show_advanced(self, shown: bool = True) -> None:
        if self.advanced_toggle is not None:
            self.advanced_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
            if self.advanced_toggle.isChecked() != shown:
                self.advanced_toggle.setChecked(shown)
        for widget in self._advanced:
            widget.setVisible(shown)

    def _moved(self, name: str, pos: int) -> None:
        row = self.rows[name]
        amount = row.amount(pos)
        row.value.setText(_fmt(amount))
        if not self._quiet:
            self.amountChanged.emit(name, amount)

    def set_amount(self, name: str, amount: float, emit: bool = False) -> None:
        row = self.rows[name]
        quiet, self._quiet = self._quiet, not emit
        try:
            row.slider.setValue(row.position(amount))
            row.value.setText(_fmt(row.amount()))
        finally:
            self._quiet = quiet

    def reset(self) -> None:
        for name in self.rows:
            self.set_amount(name, 0.0)

    def set_quality(self, quality: dict) -> None:
        colours = {"clean": "#2e7d32", "fair": "#b26a00", "entangled": "#c62828"}
        for name, row in self.rows.items():
            q = quality.get(name)
            if not q:
                row.badge.setText("")
                continue
            mono = q.get("monotonicity")
            row.badge.setText(q.get("grade", ""))
            row.badge.setStyleSheet(f"color: {colours.get(q.get('grade'), '#555')}; font-weight: 600")
            row.badge.setToolTip(f"moves {q.get('target')}: selectivity {q.get('selectivity', 0):.2f}, "
                                 f"monotonicity {'n/a' if mono is None else f'{mono:.2f}'}"
                                 f" ({q.get('failed', 0)}/{q.get('n', 0)} sweeps unreadable)")
