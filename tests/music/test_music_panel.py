"""The Music tab with qtbot: prompt -> controls, generate with streamed preview, history
across restarts, views, export; and what it says without a sound card."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import json

import numpy as np
import pytest

from studio.core.audio_files import read_wav_info
from studio.core.context import StudioContext
from studio.core.playback import Player
from studio.core.registry import Registry
from studio.core.settings import Settings
from studio.plugin_api import Preview
from tests.music.conftest import no_portaudio


@pytest.fixture
def make_panel(qtbot, tmp_path):
    from studio.qt.bridge import EngineBridge
    from studio.qt.panels.music import MusicPanel
    from studio_music import ChoralePlugin
    from studio_musicgen import MusicGenPlugin

    made = []

    def make(factory):
        registry = Registry()
        registry.add("chorale", ChoralePlugin)
        registry.add("musicgen", MusicGenPlugin)
        context = StudioContext.create(Settings(output_dir=str(tmp_path / "out")), registry)
        bridge = EngineBridge(context.engine)
        panel = MusicPanel(context, bridge, player=Player(factory))
        bridge.feed(panel.session)  # as the main window wires it
        qtbot.addWidget(panel)
        made.append((context, bridge, panel))
        return panel

    yield make
    for context, bridge, panel in made:
        panel.close()
        bridge.close()
        context.close()


def generate_and_wait(qtbot, panel, timeout=60000):
    previews = []
    panel.bridge.preview.connect(lambda job, event: previews.append(event))
    with qtbot.waitSignal(panel.bridge.saved, timeout=timeout):
        panel.generate_button.click()
    qtbot.waitUntil(lambda: panel.session.last_job.state.finished, timeout=timeout)
    return previews


def test_the_prefilled_prompt_shows_in_the_controls(make_panel, fake_audio):
    """#14: "a chorale in G major, organ" fills key, scale and instrument before any edit."""
    panel = make_panel(fake_audio)
    prompt = panel.prompt.toPlainText()
    assert prompt == panel.session.values["prompt"] and prompt.strip()
    said = panel.session.plugin.understand_prompt(prompt)
    assert said
    for name, value in said.items():
        assert panel.form.editor(name).value() == value, name
    assert panel.understood.text().startswith("Understood:")


def test_prompt_fills_the_controls(make_panel, fake_audio):
    panel = make_panel(fake_audio)
    panel.prompt.setPlainText("a slow chorale in D minor, organ")
    assert panel.form.editor("key").value() == "D"
    assert panel.form.editor("scale").value() == "minor"
    assert panel.form.editor("tempo").value() == 60.0
    assert panel.form.editor("instrument").value() == "organ"
    assert "D minor" in panel.understood.text() and "tempo 60" in panel.understood.text()
    assert panel.session.values["key"] == "D"


def test_generate_preview_history_export(make_panel, fake_audio, qtbot, tmp_path):
    panel = make_panel(fake_audio)
    panel.prompt.setPlainText("a chorale in G major, strings")
    panel.form.editor("seconds").set_value(4.0)
    panel.form.editor("seed").set_value(12)
    previews = generate_and_wait(qtbot, panel)
    assert previews and all(isinstance(p, Preview) for p in previews)
    # Playback started from the first streamed chunk, through the (fake) output stream.
    stream = fake_audio.streams[0]
    assert stream.started and panel.player.playing
    block = stream.pull(512)
    assert np.isfinite(block).all()
    assert panel.history.count() == 1 and panel.session.current is not None
    assert panel.waveform.frames > 0 and panel.piano_roll.notes
    assert panel.export_midi_button.isEnabled()
    wav = panel.export_wav(str(tmp_path / "exported.wav"))
    params = json.loads(read_wav_info(wav.read_bytes())["ICMT"])
    assert params["prompt"] == "a chorale in G major, strings" and params["seed"] == 12
    assert params["instrument"] == "strings" and params["model"] == "chorale"
    midi = panel.export_midi(str(tmp_path / "exported"))
    assert midi.suffix == ".mid" and midi.read_bytes().startswith(b"MThd")
    # Seek through the waveform.
    panel.waveform.seekRequested.emit(1.0)
    assert panel.player.position == pytest.approx(1.0, abs=1e-3)
    panel.loop_box.setChecked(True)
    assert panel.player.loop


def test_history_survives_a_restart(make_panel, fake_audio, qtbot):
    panel = make_panel(fake_audio)
    panel.prompt.setPlainText("in E minor")
    panel.form.editor("seconds").set_value(2.0)
    generate_and_wait(qtbot, panel)
    panel.close()
    again = make_panel(fake_audio)
    assert again.history.count() == 1
    again.history.setCurrentRow(0)
    assert again.waveform.frames > 0 and again.piano_roll.notes
    again.restore_selected()
    assert again.session.values["key"] == "E" and again.form.editor("scale").value() == "minor"


def test_without_portaudio_the_panel_says_so_and_still_works(make_panel, qtbot, tmp_path):
    panel = make_panel(no_portaudio)
    assert "PortAudio not available" in panel.audio_status.text()
    assert "export still work" in panel.audio_status.text()
    panel.prompt.setPlainText("in C major")
    panel.form.editor("seconds").set_value(2.0)
    generate_and_wait(qtbot, panel)
    assert panel.history.count() == 1 and panel.waveform.frames > 0
    panel.toggle_play()  # does nothing harmful
    assert not panel.player.playing
    assert panel.export_wav(str(tmp_path / "x.wav")).exists()


def test_cancel_button(make_panel, fake_audio, qtbot):
    panel = make_panel(fake_audio)
    panel.prompt.setPlainText("in C major")
    panel.form.editor("seconds").set_value(180.0)
    with qtbot.waitSignal(panel.bridge.progress, timeout=30000):
        panel.generate_button.click()
    assert panel.cancel_button.isEnabled()
    panel.cancel_button.click()
    qtbot.waitUntil(lambda: panel.session.last_job.state.finished, timeout=10000)
    assert panel.session.last_job.state.value == "cancelled" and panel.history.count() == 0
    assert not panel.cancel_button.isEnabled()


def test_switching_to_musicgen_rebuilds_the_form(make_panel, fake_audio):
    panel = make_panel(fake_audio)
    index = panel.plugin_box.findData("musicgen")
    panel.plugin_box.setCurrentIndex(index)
    assert panel.form.has("guidance") and not panel.form.has("key")


def test_prompt_edits_keep_only_what_is_said_and_the_users_choices(make_panel, fake_audio):
    panel = make_panel(fake_audio)
    panel.prompt.setPlainText("a slow chorale in D minor, organ")
    panel.form.editor("instrument").set_value("piano")  # the user's own choice
    panel.prompt.setPlainText("a chorale in G")
    assert panel.form.editor("key").value() == "G"
    assert panel.form.editor("scale").value() == "auto"  # no longer said: back to auto
    assert panel.form.editor("tempo").value() is None
    assert panel.form.editor("instrument").value() == "piano"  # kept
