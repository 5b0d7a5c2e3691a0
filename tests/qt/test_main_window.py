"""The main window: tabs, status bar, menus, dialogs, crash recovery, run_gui."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from studio.core.jobs import JobState

TIMEOUT = 15000


def _run_one(qtbot, panel, prompt="a test"):
    panel.form.set_values({"prompt": prompt, "steps": 2})
    with qtbot.waitSignal(panel.imageSaved, timeout=TIMEOUT):
        qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    job = panel.last_job
    qtbot.waitUntil(lambda: job.done.is_set(), timeout=TIMEOUT)
    panel.bridge.flush()
    return job


def test_window_layout_tabs_and_menus(make_window):
    window = make_window()
    assert "Studio" in window.windowTitle()
    assert [window.tabs.tabText(i) for i in range(window.tabs.count())] == ["Image", "Text", "Music", "Latent"]
    assert window.tabs.widget(0) is window.image_panel
    assert [window.tabs.widget(i) for i in range(1, 4)] == [window.text_panel, window.music_panel,
                                                             window.latent_panel]
    menus = [action.text().replace("&", "") for action in window.menuBar().actions()]
    assert menus == ["File", "View", "Help"]
    file_items = [a.text().replace("&", "") for a in window.menuBar().actions()[0].menu().actions() if a.text()]
    assert file_items == ["Open image…", "Settings…", "Quit"]
    # controls on the left, the image takes most of the width
    panel = window.image_panel
    assert panel.image_view.width() > panel.form.width()
    assert panel.gallery.isVisible()


def test_status_bar_shows_device_model_and_queue(make_window, qtbot):
    window = make_window()
    assert window.device_label.text() == "Device: unknown"
    assert window.queue_label.text() == "Queue: 0"
    _run_one(qtbot, window.image_panel)
    assert window.device_label.text() == "Device: CPU"
    assert window.model_label.text() == "Model: tiny-default"
    qtbot.waitUntil(lambda: window.queue_label.text() == "Queue: 0", timeout=TIMEOUT)


def test_failing_plugin_is_listed_and_the_app_keeps_running(make_window, qtbot):
    def broken_factory():
        raise RuntimeError("no GPU driver found")

    window = make_window(extra=[("broken", broken_factory)])
    dialog = window.show_plugins()
    rows = dialog.row_texts()
    assert ("tiny", "image", "Tiny test painter", "ok") in rows
    broken = next(row for row in rows if row[0] == "broken")
    assert broken[3] == "failed: RuntimeError: no GPU driver found"
    assert "no GPU driver found" in dialog.detail.toPlainText()
    dialog.close()
    # still fully usable
    job = _run_one(qtbot, window.image_panel)
    assert job.state is JobState.DONE


def test_no_image_plugin_explains_why(make_window, qtbot):
    from studio.core.context import StudioContext
    from studio.core.registry import Registry
    from studio.core.settings import Settings
    from studio.qt.main_window import MainWindow

    def broken():
        raise ImportError("diffusers is not installed")

    registry = Registry()
    registry.add("diffusers", broken)
    context = StudioContext.create(Settings(), registry)
    window = MainWindow(context)
    qtbot.addWidget(window)
    try:
        panel = window.image_panel
        assert not panel.generate_button.isEnabled()
        assert "diffusers is not installed" in panel.message.text()
    finally:
        window.shutdown()


def test_settings_dialog_saves(make_window, studio_home, qtbot):
    window = make_window()
    dialog = window.open_settings()
    dialog.allow_download.setChecked(True)
    dialog.vae_tiling.setChecked(True)
    dialog.memory_budget.setValue(3.0)
    dialog.device.setCurrentText("cpu")
    dialog.output_dir.setText(str(studio_home / "my-outputs"))
    qtbot.mouseClick(dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Save),
                     Qt.MouseButton.LeftButton)
    saved = json.loads((studio_home / "settings.json").read_text())
    assert saved["allow_download"] is True and saved["vae_tiling"] is True
    assert saved["memory_budget_gb"] == 3.0 and saved["device"] == "cpu"
    context = window.context
    assert context.load_options().allow_download is True
    assert context.engine.residency.budget_bytes == 3 * 2**30
    assert context.store.root == studio_home / "my-outputs"
    job = _run_one(qtbot, window.image_panel)
    assert str(job.saved[0]).startswith(str(studio_home / "my-outputs"))


def test_unfinished_jobs_are_offered_and_run_again(make_window, qtbot):
    window = make_window()
    history = window.context.history
    history.add_job("old-job-1", "tiny", "image", "tiny-default",
                    {"mode": "txt2img", "request": {"prompt": "left over", "steps": 2}, "action": "run"})
    records = window.offer_unfinished()
    assert [r.id for r in records] == ["old-job-1"]
    assert window.info_bar.isVisible() and "left over" in window.info_bar.text()
    run_again, discard = window.info_bar.buttons()
    assert (run_again.text(), discard.text()) == ("Run again", "Discard")
    with qtbot.waitSignal(window.image_panel.imageSaved, timeout=TIMEOUT) as saved:
        qtbot.mouseClick(run_again, Qt.MouseButton.LeftButton)
    assert saved.args[1].artifact.parameters["prompt"] == "left over"
    assert history.job("old-job-1").state == "cancelled"
    assert not window.info_bar.isVisible()


def test_unfinished_jobs_can_be_discarded(make_window, qtbot):
    window = make_window()
    history = window.context.history
    history.add_job("old-job-2", "tiny", "image", "tiny-default",
                    {"mode": "txt2img", "request": {"prompt": "drop me"}, "action": "run"})
    window.offer_unfinished()
    qtbot.mouseClick(window.info_bar.buttons()[1], Qt.MouseButton.LeftButton)
    assert history.job("old-job-2").state == "cancelled"
    assert window.context.engine.queued() == [] and window.image_panel.gallery.count() == 0
    assert window.offer_unfinished() == []


def test_run_gui_opens_and_shuts_the_engine_down(qtbot, monkeypatch):
    import threading

    from studio.qt import app as app_module
    from studio.qt.main_window import MainWindow

    created = []
    original = MainWindow.__init__

    def spy(self, context, parent=None):
        original(self, context, parent)
        self.confirm_close = False
        created.append(self)

    monkeypatch.setattr(MainWindow, "__init__", spy)
    QTimer.singleShot(400, lambda: [w.close() for w in created])
    qapp = QApplication.instance()
    try:
        assert app_module.run_gui([]) == 0
    finally:
        qapp.setStyleSheet("")
    assert created and created[0].windowTitle() == "Studio"
    assert QApplication.applicationName() == "Studio"
    assert not [t for t in threading.enumerate() if t.name == "studio-engine" and t.is_alive()]


def test_text_panel_sends_a_prompt_to_the_image_panel(make_window):
    window = make_window()
    window.tabs.setCurrentWidget(window.text_panel)
    window.text_panel.use_as_image_prompt.emit("a small blue square top left, white background")
    assert window.tabs.currentWidget() is window.image_panel
    assert window.image_panel.form.values()["prompt"] == "a small blue square top left, white background"


def test_prewarm_waits_for_the_window_and_honours_the_setting(qtbot, make_window, monkeypatch):
    from studio.core.settings import Settings

    window = make_window()
    asked = []
    monkeypatch.setattr(window.context.engine, "prewarm", lambda plugin_id: asked.append(plugin_id) or True)
    window.prewarm_when_shown(delay_ms=0)
    qtbot.waitUntil(lambda: asked == [window.image_panel.session.plugin.id], timeout=TIMEOUT)

    off = make_window(settings=Settings(prewarm=False))
    asked_off = []
    monkeypatch.setattr(off.context.engine, "prewarm", lambda plugin_id: asked_off.append(plugin_id) or True)
    off.prewarm_when_shown(delay_ms=0)
    qtbot.wait(100)
    assert asked_off == []


def test_settings_dialog_has_the_prewarm_switch(make_window):
    window = make_window()
    dialog = window.open_settings()
    assert dialog.prewarm.isChecked() is True
    dialog.prewarm.setChecked(False)
    dialog.apply()
    assert dialog.settings.prewarm is False
    dialog.close()
