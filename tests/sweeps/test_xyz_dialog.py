"""The X/Y/Z dialog and its session: axes from the form's parameters, typed values, a run on the
local engine through the job queue, progress, and the grid when done (3 steps, to stay quick)."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from studio.cli import main
from studio.core.context import StudioContext
from studio.core.sessions.sweep import SweepSession

from .conftest import SLOW

TIMEOUT = 800_000  # ms; see SLOW


@pytest.fixture
def context():
    context = StudioContext.create()
    yield context
    context.close()


def image_session(context) -> SweepSession:
    plugin = context.registry.get("diffusers")
    model = plugin.models()[0]
    values = {p.name: p.default for p in plugin.parameters()}
    values.update(prompt="a red circle on a black background", steps=3, seed=11, size=model.defaults["size"])
    return SweepSession(context, "diffusers", model.source, "txt2img", values)


def test_axes_are_the_forms_parameters_and_problems_are_one_sentence(context):
    session = image_session(context)
    names = [p.name for p in session.sweepable_parameters()]
    assert {"prompt", "cfg_scale", "steps", "scheduler", "seed", "size"} <= set(names)
    assert "init_image" not in names and "loras" not in names  # not in txt2img / not typeable
    session.set_axis(0, "cfg_scale", "1-9 [5]")
    assert session.plan is not None and [a.labels for a in session.plan.axes] == [("1", "3", "5", "7", "9")]
    session.set_axis(1, "steps", "2, many")
    assert session.plan is None
    assert session.problem == "axis Y (steps): value 'many': Steps must be a whole number (got 'many')."
    session.set_axis(1, "prompt", "red, blue, green")  # Prompt S/R: the first value is replaced
    assert session.plan is not None and len(session.plan.items) == 15
    assert session.plan.items[5].request["prompt"] == \
        "a blue circle on a black background"


@pytest.mark.timeout(SLOW)
def test_dialog_runs_through_the_queue_and_shows_the_grid(context, qtbot, capsys):
    from studio.qt.bridge import EngineBridge
    from studio.qt.dialogs.xyz import XYZDialog

    bridge = EngineBridge(context.engine)
    session = image_session(context)
    dialog = XYZDialog(session, bridge)
    qtbot.addWidget(dialog)
    dialog.set_axis(0, "cfg_scale", "3, 7")
    dialog.set_axis(1, "prompt", "red, blue")
    assert dialog.run_button.isEnabled(), dialog.plan_label.text()
    assert dialog.plan_label.text().startswith("4 items (2 × 2)")
    seen_progress = []
    session.changed.connect(lambda what: seen_progress.append(session.done) if what == "progress" else None)
    qtbot.mouseClick(dialog.run_button, Qt.MouseButton.LeftButton)
    assert session.running and not dialog.run_button.isEnabled()
    qtbot.waitUntil(lambda: session.outcome is not None, timeout=TIMEOUT)
    QApplication.processEvents()
    assert session.outcome.ok, session.outcome.message
    assert dialog.items_bar.value() == 4 and max(seen_progress) == 4
    assert [dialog.grid_choice.itemText(i) for i in range(dialog.grid_choice.count())] == ["grid-seed11.png"]
    assert not dialog.grid_view.pixmap().isNull()
    # The items are ordinary outputs: in the history (the gallery), through the store.
    assert len(context.history.outputs("image")) == 4
    # The sweep file written beside the grid is a real one: the CLI sees all 4 done.
    folder = session.runner.folder
    document = json.loads((folder / "sweep.json").read_text(encoding="utf-8"))
    assert document["axis"][1] == {"param": "prompt", "replace": "red", "values": ["red", "blue"]}
    bridge.close()
    capsys.readouterr()
    assert main(["sweep", str(folder / "sweep.json"), "--out", str(folder), "--dry-run"]) == 0
    assert "4 done, 0 to run" in capsys.readouterr().out
