"""The Text panel with qtbot: type -> Send -> text streams in -> Stop keeps the text."""

import json

import pytest

from studio.core.jobs import JobState
from studio.plugin_api import Partial
from studio.qt.bridge import EngineBridge
from studio.qt.panels.text import TextPanel


@pytest.fixture
def panel(qtbot, context, tiny_models):
    bridge = EngineBridge(context.engine)
    widget = TextPanel(context, bridge)
    bridge.feed(widget.session)  # as the main window wires it
    qtbot.addWidget(widget)
    widget.model_picker.set_source(str(tiny_models["qwen2"]))
    widget.form.editor("max_new_tokens").set_value(8)
    widget.form.editor("seed").set_value(5)
    assert widget.session.values["max_new_tokens"] == 8 and widget.session.values["seed"] == 5
    yield widget
    bridge.close()


def _finish(qtbot, panel, timeout=60000):
    """Until the view has shown the end of the last job and the model's token count."""
    qtbot.waitUntil(lambda: panel.session.last_job is not None and panel.session.last_job.state.finished
                    and not panel.session.busy and panel.send_button.isEnabled()
                    and not panel.context.engine.queued() and panel.context.engine.current is None, timeout=timeout)
    panel.bridge.flush()


def test_send_streams_and_shows_stats(qtbot, panel):
    qtbot.keyClicks(panel.input, "Hello there")
    qtbot.mouseClick(panel.send_button, qtbot_button())
    assert panel.input.toPlainText() == ""
    _finish(qtbot, panel)
    messages = panel.session.conversation.messages
    assert [m.role for m in messages] == ["user", "assistant"]
    text = panel.transcript.toPlainText()
    assert "Hello there" in text and messages[1].content.strip()[:3] in text
    assert "seed 5" in text and "tok/s" in panel.stats_label.text()
    assert "Seed 5" in panel.run_status.info.text()
    assert panel.meter.maximum() == 128 and panel.meter.value() > 0 and panel.session.context_exact
    assert not panel.meter.format().startswith("~")  # counted by the model, not estimated
    assert panel.conversation_list.count() == 1  # autosaved and listed


def test_stop_keeps_streamed_text(qtbot, panel, tiny_models):
    panel.model_picker.set_source(str(tiny_models["gpt2"]))  # no end-of-text: runs until stopped
    panel.form.editor("max_new_tokens").set_value(2000)
    panel.form.editor("temperature").set_value(1.0)
    streamed = []
    panel.bridge.partial.connect(lambda job, event: streamed.append(event.text))
    panel.input.setPlainText("Tell me a story")
    panel.send()
    assert panel.stop_button.isEnabled() and not panel.send_button.isEnabled()
    qtbot.waitUntil(lambda: len("".join(streamed)) > 10, timeout=60000)
    # The text appears in the transcript while it streams (painted every few milliseconds).
    qtbot.waitUntil(lambda: "".join(streamed)[:5] in panel.transcript.toPlainText(), timeout=5000)
    assert panel.session.busy
    qtbot.mouseClick(panel.stop_button, qtbot_button())
    _finish(qtbot, panel)
    reply = panel.session.conversation.messages[-1]
    assert panel.session.last_job.state is JobState.INTERRUPTED
    assert reply.content == "".join(streamed) and reply.stats["stop_reason"] == "stopped"
    assert reply.stats["tokens"] < 2000
    assert reply.content[:10].replace("\n", " ").strip()[:4] in panel.transcript.toPlainText().replace("\n", " ")


def test_edit_delete_regenerate_continue(qtbot, panel):
    panel.input.setPlainText("First")
    panel.send()
    _finish(qtbot, panel)
    first_reply = panel.session.conversation.messages[1].content
    qtbot.mouseClick(panel.regenerate_button, qtbot_button())
    _finish(qtbot, panel)
    assert panel.session.conversation.messages[1].content == first_reply  # seed 5 both times
    qtbot.mouseClick(panel.continue_button, qtbot_button())
    _finish(qtbot, panel)
    assert panel.session.conversation.messages[1].content.startswith(first_reply)
    panel.start_edit(0)
    assert panel.input.toPlainText() == "First" and not panel.edit_label.isHidden()
    panel.input.setPlainText("Edited")
    panel.send()
    _finish(qtbot, panel)
    assert panel.session.conversation.messages[0].content == "Edited"
    assert len(panel.session.conversation.messages) == 2
    from PySide6.QtCore import QUrl
    panel.transcript.anchorClicked.emit(QUrl("delete:1"))
    assert [m.role for m in panel.session.conversation.messages] == ["user"]


def test_notebook_mode(qtbot, panel):
    panel.mode_box.setCurrentIndex(panel.mode_box.findData("notebook"))
    assert panel.views.currentWidget() is panel.document and panel.input.isHidden()
    panel.document.setPlainText("Once upon a time")
    qtbot.mouseClick(panel.send_button, qtbot_button())
    _finish(qtbot, panel)
    doc = panel.document.toPlainText()
    assert doc.startswith("Once upon a time") and doc == panel.session.conversation.document
    assert len(doc) > len("Once upon a time")


def test_use_as_image_prompt_sends_selection_or_last_reply(qtbot, panel):
    panel.input.setPlainText("Describe a picture")
    panel.send()
    _finish(qtbot, panel)
    with qtbot.waitSignal(panel.use_as_image_prompt) as blocker:
        qtbot.mouseClick(panel.image_prompt_button, qtbot_button())
    assert blocker.args == [panel.session.conversation.messages[-1].content.strip()]
    cursor = panel.transcript.textCursor()
    cursor.setPosition(0)
    cursor.setPosition(3, cursor.MoveMode.KeepAnchor)
    panel.transcript.setTextCursor(cursor)
    with qtbot.waitSignal(panel.use_as_image_prompt) as blocker:
        panel._use_as_image_prompt()
    assert blocker.args == ["You"]


def test_presets_export_and_reopen(qtbot, panel, tmp_path, studio_home):
    panel.preset_box.setCurrentText("Deterministic")
    panel._apply_preset(panel.preset_box.findText("Deterministic"))
    assert panel.form.editor("temperature").value() == 0.0
    panel.form.editor("top_k").set_value(9)
    panel.save_preset("Mine")
    assert panel.preset_box.findText("Mine") > 0
    assert json.loads((studio_home / "text_presets.json").read_text())["Mine"]["top_k"] == 9
    panel.input.setPlainText("Export me")
    panel.send()
    _finish(qtbot, panel)
    md = panel.export(tmp_path / "c.md", "md").read_text()
    assert "Export me" in md
    data = json.loads(panel.export(tmp_path / "c.json", "json").read_text())
    assert data["messages"][0]["content"] == "Export me"
    conv_id = panel.session.conversation.id
    panel._new_conversation()
    assert panel.session.conversation.messages == [] and panel.transcript.toPlainText().strip() == ""
    item = panel.conversation_list.item(0)
    panel._open_item(item)
    assert panel.session.conversation.id == conv_id
    assert "Export me" in panel.transcript.toPlainText()


def test_bad_value_shows_notice_not_dialog(qtbot, panel, tmp_path):
    panel.model_picker.set_source(str(tmp_path / "missing-model"))
    panel.input.setPlainText("Hi")
    panel.send()
    _finish(qtbot, panel)
    assert not panel.message.isHidden() and "not found" in panel.message.text().lower()


def qtbot_button():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


def test_load_unload_and_the_meter(qtbot, panel):
    """Load and Unload are engine jobs; the meter counts with the loaded model, else estimates."""
    assert panel.model_status.text() == "Not loaded" and not panel.unload_button.isEnabled()
    qtbot.mouseClick(panel.load_button, qtbot_button())
    _finish(qtbot, panel)
    assert panel.model_status.text() == "Loaded" and panel.unload_button.isEnabled()
    assert panel.meter.maximum() == 128
    qtbot.mouseClick(panel.unload_button, qtbot_button())
    _finish(qtbot, panel)
    assert panel.context.engine.residency.loaded() == []
    assert panel.model_status.text() == "Not loaded" and not panel.unload_button.isEnabled()
    assert panel.meter.format().startswith("~")  # an estimate again


def test_partial_events_append_only(qtbot, panel):
    got = []
    panel.bridge.partial.connect(lambda job, event: got.append(event))
    panel.input.setPlainText("Hi")
    panel.send()
    _finish(qtbot, panel)
    assert all(isinstance(e, Partial) for e in got)
    assert "".join(e.text for e in got) == panel.session.conversation.messages[-1].content
