"""The one form engine: a panel's parameter form, built from the plugin's :class:`Param` specs.

Every panel builds its form here (one editor per type: see :mod:`param_editors`); parameters
outside the current mode are hidden, ``advanced`` ones are folded under "Advanced", ``help``
becomes the tooltip, and a ParamError is shown in a message bar next to the form with the
field it names outlined — never in a dialog.

Binding (:meth:`ParamForm.bind`) makes the form a view of a
:class:`~studio.core.sessions.base.PanelSession`:

* an edit in a widget calls ``session.set_value(name, value)``;
* ``session.changed("values")`` writes the session's values back into the widgets (only those
  that differ, so typing is never disturbed);
* ``session.changed("mode")`` shows the fields of the new mode;
* ``session.changed("hints" | "model" | "plugin")`` narrows CHOICE fields to what the loaded
  model supports (``session.choices``, from the model's ``ModelHints``) or restores them, and
  hides the parameters the loaded model ignores (``session.unsupported``, with why in a note
  under the form);
* ``session.changed("seeds")`` offers the last seed used on the seed field's reuse button.

The session stays the one source of truth: a value crosses the form → session boundary once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFormLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from studio.core.sessions.base import PanelSession
from studio.plugin_api import Param, ParamError, ParamType
from studio.qt.widgets.binding import connect_while_alive
from studio.qt.widgets.message_bar import MessageBar
from studio.qt.widgets.param_editors import (
    AUTO_TEXT,
    ChoiceEditor,
    FloatEditor,
    IntEditor,
    PathEditor,
    SeedEditor,
    SizeEditor,
    ValueHolder,
    make_editor,
)

__all__ = ["AUTO_TEXT", "ParamForm", "PathEditor", "SeedEditor", "SizeEditor", "FloatEditor", "IntEditor"]


def _repolish(widget: QWidget) -> None:
    widget.style().unpolish(widget)
    widget.style().polish(widget)


class _Row:
    def __init__(self, param: Param, editor: Any, label: QLabel | None, container: QWidget | None,
                 layout: QFormLayout):
        # ``editor``: a QWidget with value() / set_value() / changed (see param_editors)
        self.param, self.editor, self.label, self.container, self.layout = param, editor, label, container, layout

    @property
    def field(self) -> QWidget:
        return self.container or self.editor

    def set_visible(self, visible: bool) -> None:
        self.layout.setRowVisible(self.field, visible)


class ParamForm(QWidget):
    """Editors for ``params``.

    ``include`` (ordered names) keeps only those parameters, in that order; ``exclude`` leaves
    names out (the owner supplies their values); ``custom`` maps a name to a ready editor widget
    (with ``value``/``set_value``/``changed``) used instead of the generic one; ``labels``
    overrides a parameter's label; ``file_filters`` maps a FILE_PATH name to its browser filter.
    """

    changed = Signal()

    def __init__(self, params: Iterable[Param], parent: QWidget | None = None, *,
                 custom: Mapping[str, QWidget] | None = None, exclude: Iterable[str] = (),
                 include: Sequence[str] | None = None, labels: Mapping[str, str] | None = None,
                 file_filters: Mapping[str, str] | None = None, message_bar: MessageBar | None = None):
        super().__init__(parent)
        excluded = set(exclude)
        params = [p for p in params if p.name not in excluded]
        if include is not None:
            by_name = {p.name: p for p in params}
            params = [by_name[name] for name in include if name in by_name]
        self.params = params
        self.mode: str | None = None
        self.session: PanelSession | None = None
        self._syncing = False
        self._rows: dict[str, _Row] = {}
        custom = dict(custom or {})
        labels = dict(labels or {})
        filters = dict(file_filters or {})

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(6)
        self.basic_layout = self._new_form_layout()
        outer.addLayout(self.basic_layout)

        self.advanced_toggle = QToolButton(self)
        self.advanced_toggle.setText("Advanced")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_toggle.setAutoRaise(True)
        self.advanced_toggle.setObjectName("foldButton")
        self.advanced_toggle.toggled.connect(self._toggle_advanced)
        outer.addWidget(self.advanced_toggle)
        self.advanced_box = QWidget(self)
        self.advanced_layout = self._new_form_layout(self.advanced_box)
        self.advanced_box.hide()
        outer.addWidget(self.advanced_box)
        # Which settings the loaded model does not use (hidden above), so a missing field is explained.
        self.unsupported_note = QLabel(self)
        self.unsupported_note.setObjectName("hint")
        self.unsupported_note.setWordWrap(True)
        self.unsupported_note.hide()
        outer.addWidget(self.unsupported_note)

        for param in self.params:
            editor = custom.pop(param.name, None) or make_editor(param, filters.get(param.name, ""))
            layout = self.advanced_layout if param.advanced else self.basic_layout
            self._add_row(param, editor, layout, labels.get(param.name, param.label))

        self._align_labels()
        self.message = message_bar
        if self.message is None:
            self.message = MessageBar(self)
            outer.addWidget(self.message)
        self.set_defaults()
        self.set_mode(None)

    def _align_labels(self) -> None:
        """Basic and advanced rows live in two form layouts; give their labels one width."""
        labels = [row.label for row in self._rows.values()
                  if row.label is not None and row.container is None]
        if labels:
            width = max(label.sizeHint().width() for label in labels)
            for label in labels:
                label.setMinimumWidth(width)
                label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    @staticmethod
    def _new_form_layout(parent: QWidget | None = None) -> QFormLayout:
        layout = QFormLayout(parent) if parent else QFormLayout()
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        layout.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        layout.setHorizontalSpacing(10)
        layout.setVerticalSpacing(7)
        return layout

    def _add_row(self, param: Param, editor: Any, layout: QFormLayout, text: str) -> None:
        editor.setObjectName(f"param_{param.name}")
        tip = param.help or ""
        if param.type is ParamType.SIZE and param.multiple_of > 1:
            tip = (tip + " " if tip else "") + f"Multiples of {param.multiple_of}."
        if param.optional and param.type in (ParamType.INT, ParamType.FLOAT):
            tip = (tip + " " if tip else "") + f"“{AUTO_TEXT}” (the lowest entry) lets the model decide."
        if tip:
            editor.setToolTip(tip)
        label: QLabel | None = QLabel(text, self)
        assert label is not None
        if tip:
            label.setToolTip(tip)
        container = None
        if isinstance(editor, ValueHolder):
            label.deleteLater()
            label = None
            layout.addRow(editor)
            editor.hide()
        elif param.type is ParamType.TEXT or getattr(editor, "full_width", False):
            # Prompts (and wide custom editors) get the whole width, the label above.
            container = QWidget(self)
            box = QVBoxLayout(container)
            box.setContentsMargins(0, 0, 0, 0)
            box.setSpacing(3)
            label.setObjectName("sectionLabel")
            box.addWidget(label)
            box.addWidget(editor)
            layout.addRow(container)
        elif param.type is ParamType.BOOL:
            editor.setText(text)
            label.deleteLater()
            label = None
            layout.addRow("", editor)
        else:
            label.setBuddy(editor)
            layout.addRow(label, editor)
        self._rows[param.name] = _Row(param, editor, label, container, layout)
        editor.changed.connect(lambda name=param.name: self._on_changed(name))

    # -- binding to a session ------------------------------------------------------------------
    def bind(self, session: PanelSession) -> None:
        """Make this form a view of ``session`` (see the module docstring for what flows where).

        The session's current values, mode and choices are shown at once."""
        self.session = session
        connect_while_alive(self, session.changed, self._session_changed)
        self._show_choices()
        self.set_mode(session.mode)
        self._pull_values()
        self._show_last_seed()

    def _session_changed(self, what: str) -> None:
        if what == "values":
            self._pull_values()
        elif what == "mode":
            self.set_mode(self.session.mode if self.session else None)
        elif what in ("hints", "model", "plugin"):
            self._show_choices()
            self.set_mode(self.session.mode if self.session else None)
            self._pull_values()
        elif what == "seeds":
            self._show_last_seed()
        elif what == "values" and self.unsupported_note.isVisible():
            self._show_unused()

    def _pull_values(self) -> None:
        if self.session is None:
            return
        self._syncing = True
        try:
            for name, row in self._rows.items():
                if name not in self.session.values:
                    continue
                wanted = self.session.values[name]
                if _same(row.editor.value(), wanted):
                    continue
                try:
                    row.editor.set_value(wanted)
                except (TypeError, ValueError):
                    pass  # e.g. a choice the narrowed list lacks; the session's message says so
        finally:
            self._syncing = False

    def _show_choices(self) -> None:
        if self.session is None:
            return
        self._syncing = True
        try:
            for name, row in self._rows.items():
                if isinstance(row.editor, ChoiceEditor):
                    offered = self.session.choices.get(name)
                    row.editor.set_choices([str(c) for c in offered] if offered else None)
        finally:
            self._syncing = False

    def _show_last_seed(self) -> None:
        seeds = self.session.seeds_used if self.session else []
        for row in self._rows.values():
            if isinstance(row.editor, SeedEditor) and seeds:
                row.editor.set_last_seed(seeds[-1])

    # -- mode and folding -------------------------------------------------------------------
    def set_mode(self, mode: str | None) -> None:
        self.mode = mode
        any_advanced = False
        for row in self._rows.values():
            visible = self.applies(row.param) and self.honoured(row.param.name)
            if isinstance(row.editor, ValueHolder):
                visible = False
            row.set_visible(visible)
            any_advanced |= visible and row.param.advanced
        self.advanced_toggle.setVisible(any_advanced)
        self._show_unused()

    def applies(self, param: Param) -> bool:
        return not param.modes or self.mode in param.modes

    def honoured(self, name: str) -> bool:
        """Whether the loaded model uses ``name`` (always, until a model has said otherwise)."""
        return self.session is None or self.session.honoured(name)

    def _show_unused(self) -> None:
        """The note under the form: which settings of this mode the loaded model does not use."""
        unused = [row.param for row in self._rows.values()
                  if self.applies(row.param) and not self.honoured(row.param.name)]
        if not unused or self.session is None:
            self.unsupported_note.hide()
            return
        session = self.session
        # A value the user set stays (another model may use it), so the runs will say it was ignored.
        kept = [p for p in unused if p.name in session.touched and session.values.get(p.name) not in (None, "", ())]
        text = "Not used by this model: " + ", ".join(p.label for p in unused) + "."
        if kept:
            names = ", ".join(p.label for p in kept)
            text += f" What you set for {names} is kept for models that use it; each run here says it is ignored."
        self.unsupported_note.setText(text)
        self.unsupported_note.setToolTip("\n".join(f"{p.label}: {self.session.unsupported[p.name]}"
                                                    for p in unused))
        self.unsupported_note.show()

    def _toggle_advanced(self, open_: bool) -> None:
        self.advanced_box.setVisible(open_)
        self.advanced_toggle.setArrowType(Qt.ArrowType.DownArrow if open_ else Qt.ArrowType.RightArrow)

    def show_advanced(self, open_: bool = True) -> None:
        self.advanced_toggle.setChecked(open_)

    # -- values ----------------------------------------------------------------------------------
    def editor(self, name: str) -> Any:
        return self._rows[name].editor

    def has(self, name: str) -> bool:
        return name in self._rows

    def is_shown(self, name: str) -> bool:
        """Whether ``name`` applies in the current mode and the loaded model uses it (folded
        advanced rows count as shown)."""
        row = self._rows.get(name)
        return (row is not None and self.applies(row.param) and self.honoured(name)
                and not isinstance(row.editor, ValueHolder))

    def values(self) -> dict[str, Any]:
        """Every parameter's current value (also those hidden by the mode)."""
        return {name: row.editor.value() for name, row in self._rows.items()}

    def set_defaults(self) -> None:
        for row in self._rows.values():
            if row.param.default is not None or row.param.type in (ParamType.SEED, ParamType.IMAGE_PATH,
                                                                    ParamType.FILE_PATH) or row.param.optional:
                try:
                    row.editor.set_value(row.param.default)
                except (TypeError, ValueError):
                    pass

    def set_values(self, values: Mapping[str, Any]) -> list[str]:
        """Set what the form has editors for (as if typed; a bound session hears it); returns
        notes on what was not applied as given."""
        notes = []
        for name, value in values.items():
            row = self._rows.get(name)
            if row is None:
                notes.append(f"{name} (not a setting of this model)")
                continue
            try:
                row.editor.set_value(value)
            except (TypeError, ValueError) as exc:
                notes.append(f"{row.param.label} {value!r} ({exc})" if str(exc) else f"{row.param.label} {value!r}")
                continue
            actual = row.editor.value()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and isinstance(actual, (int, float)) \
                    and row.param.type in (ParamType.INT, ParamType.FLOAT) and abs(actual - value) > 1e-9:
                notes.append(f"{row.param.label} {value:g} is out of range; set to {actual:g}")
        return notes

    def set_choices(self, name: str, choices: Sequence[str] | None) -> None:
        row = self._rows.get(name)
        if row is not None and isinstance(row.editor, ChoiceEditor):
            row.editor.set_choices(choices)

    # -- errors -------------------------------------------------------------------------------
    def show_error(self, error: ParamError | str) -> None:
        """Show ``error`` in the message bar and outline the field it is about."""
        text = str(error)
        self.clear_error()
        assert self.message is not None
        self.message.show_message(text, "error")
        for row in sorted(self._rows.values(), key=lambda r: -len(r.param.label)):
            if text.startswith(row.param.label) or text.startswith(row.param.name):
                self._mark(row, True)
                if row.param.advanced:
                    self.show_advanced(True)
                break

    def invalid_fields(self) -> list[str]:
        return [name for name, row in self._rows.items() if row.editor.property("invalid")]

    @staticmethod
    def _mark(row: _Row, invalid: bool) -> None:
        for widget in (row.editor, row.label):
            if widget is not None and bool(widget.property("invalid")) != invalid:
                widget.setProperty("invalid", invalid)
                _repolish(widget)

    def clear_error(self) -> None:
        for row in self._rows.values():
            self._mark(row, False)
        if self.message is not None and self.message.kind == "error":
            self.message.dismiss()

    def _on_changed(self, name: str) -> None:
        self._mark(self._rows[name], False)
        if self.session is not None and not self._syncing:
            self.session.set_value(name, self._rows[name].editor.value())
        self.changed.emit()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return list(a) == list(b)
    if isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return abs(a - b) < 1e-9
    return bool(a == b)

