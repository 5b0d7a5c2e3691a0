"""The Image panel's X/Y/Z button: the dialog starts from the form's own values and its grid
shows the items the queue made (the tiny in-test painter keeps it fast)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from studio.core.metadata import read_png_parameters


def test_xyz_button_runs_a_grid_from_the_form(make_window, qtbot):
    window = make_window()
    panel = window.image_panel
    qtbot.keyClicks(panel.form.editor("prompt"), "a red circle")
    qtbot.mouseClick(panel.xyz_button, Qt.MouseButton.LeftButton)
    dialog = panel._xyz_dialog
    assert dialog.isVisible()
    offered = [dialog.param_boxes[0].itemData(i) for i in range(dialog.param_boxes[0].count())]
    assert {"prompt", "steps", "cfg_scale", "scheduler"} <= set(offered) and "init_image" not in offered
    dialog.set_axis(0, "steps", "2-4 [2]")
    dialog.set_axis(1, "prompt", "red, blue")
    assert dialog.plan_label.text().startswith("4 items (2 × 2)")
    qtbot.mouseClick(dialog.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.session.outcome is not None, timeout=60_000)
    QApplication.processEvents()
    assert dialog.session.outcome.ok, dialog.session.outcome.message
    assert dialog.items_bar.value() == 4 and not dialog.grid_view.pixmap().isNull()
    made = {(p["prompt"], p["steps"]) for p in (read_png_parameters(str(f)) for f in
                                                 dialog.session.runner.manifest_files())}
    assert made == {("a red circle", 2), ("a blue circle", 2), ("a red circle", 4), ("a blue circle", 4)}
