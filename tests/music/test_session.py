"""The Music view-model without Qt, on real jobs: the prompt fills the controls (the pre-filled
one too), streaming into the player, history, restore, export."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.playback import Player
from studio.core.sessions.inbox import EventInbox
from studio.core.sessions.music import MusicSession
from studio.plugin_api import ContinuesMidi, ParamError, UnderstandsPrompts


def run_job(session, timeout=60):
    """Generate and feed every event to the session on this thread, as the bridge does."""
    inbox = EventInbox(session.context.engine, session)
    try:
        job = session.generate()
        assert inbox.run_until(job, timeout), "job did not finish"
    finally:
        inbox.close()
    return job


def test_every_chunk_reaches_the_player(music_context, fake_audio):
    session = MusicSession(music_context, player=Player(fake_audio))
    assert isinstance(session.plugin, ContinuesMidi)  # the embedded symbolic model is the default
    session.set_prompt("a chorale in F major, piano")
    session.set_value("seconds", 5.0)
    session.set_value("seed", 8)
    clips = []
    session.results_changed.connect(lambda: clips.append(session.current))
    job = run_job(session)
    artifact = job.result.artifacts[0]
    # The whole clip was streamed into the player, sample for sample, and playback started.
    assert session.player.duration == pytest.approx(len(artifact.audio) / artifact.sample_rate)
    assert np.allclose(session.player._buffer[:session.player._length], artifact.audio)
    assert fake_audio.streams and fake_audio.streams[0].started
    chunks = session.take_new_audio()
    assert len(chunks) > 1 and sum(len(a) for a, _ in chunks) == len(artifact.audio)
    assert session.current is not None and session.current.symbolic and session.notes
    assert clips == [session.current], "the clip list heard about the new clip"
    assert {n.voice for n in session.notes} == {0, 1, 2, 3}
    assert max(n.start + n.duration for n in session.notes) == pytest.approx(session.player.duration, abs=1.0)


def test_the_prefilled_prompt_is_understood(music_context, fake_audio):
    """#14: the controls show what the pre-filled prompt says before anyone edits it."""
    session = MusicSession(music_context, player=Player(fake_audio))
    assert isinstance(session.plugin, UnderstandsPrompts)
    prompt = session.values["prompt"]
    assert prompt.strip(), "the chorale plugin pre-fills a prompt"
    said = session.plugin.understand_prompt(prompt)
    assert said, "the pre-filled prompt says something (key, instrument)"
    for name, value in said.items():
        assert session.values[name] == value
    assert session.understood.values == said and session.understood.summary
    # A prompt set from code is read the same way, and what it no longer says goes back.
    session.set_values({"prompt": "a slow chorale in D minor"})
    assert session.values["key"] == "D" and session.values["tempo"] == 60
    assert session.values["instrument"] == "auto"


def test_history_restore_and_exports(music_context, fake_audio, tmp_path):
    session = MusicSession(music_context, player=Player(fake_audio))
    session.set_prompt("in B minor, strings, 100 bpm")
    session.set_value("seconds", 2.0)
    run_job(session)
    clips = session.clips()
    assert len(clips) == 1 and clips[0].parameters["key"] == "B"
    fresh = MusicSession(music_context, player=Player(fake_audio))
    fresh.restore(clips[0])
    assert fresh.values["prompt"] == "in B minor, strings, 100 bpm" and fresh.values["seed"] == clips[0].seed
    assert "B" in fresh.understood.summary
    fresh.open_clip(clips[0])
    assert fresh.player.duration > 2.0 and fresh.notes
    assert fresh.export_wav(clips[0], tmp_path / "a").suffix == ".wav"
    assert fresh.export_midi(clips[0], tmp_path / "a.midi").exists()


def test_musicgen_clip_has_no_midi(music_context, fake_audio, tiny_musicgen, tmp_path):
    session = MusicSession(music_context, "musicgen", player=Player(fake_audio))
    assert not isinstance(session.plugin, ContinuesMidi) and not session.symbolic
    session.set_model(str(tiny_musicgen))
    session.set_prompt("happy piano")
    assert session.understood.summary == ""  # MusicGen reads the prompt itself
    session.set_value("seconds", 1.0)
    run_job(session, timeout=120)
    clip = session.clips()[0]
    assert not clip.symbolic and session.player.duration == pytest.approx(1.0)
    with pytest.raises(ParamError):
        session.export_midi(clip, tmp_path / "x.mid")


def test_switching_generator_keeps_the_prompt(music_context, fake_audio):
    session = MusicSession(music_context, player=Player(fake_audio))
    session.set_prompt("a happy tune in A major")
    seen = []
    session.changed.connect(seen.append)
    session.set_plugin("musicgen")
    assert session.values["prompt"] == "a happy tune in A major" and "key" not in session.values
    assert "plugin" in seen and session.understood.summary == ""
    with pytest.raises(ParamError):
        session.set_plugin("nope")


def test_a_second_generation_queued_while_the_first_streams(music_context, fake_audio):
    session = MusicSession(music_context, player=Player(fake_audio))
    session.set_values({"seconds": 2.0, "seed": 1})
    inbox = EventInbox(session.context.engine, session)
    try:
        first = session.generate()
        session.set_value("seed", 2)
        second = session.generate()  # queued behind the first: one lane
        assert inbox.run_until(first, 60) and inbox.run_until(second, 60)
    finally:
        inbox.close()
    assert len(session.clips()) == 2 and session.current.seed == 2
    audio = second.result.artifacts[0].audio
    # The player holds the second clip exactly: its chunks replaced the first clip's.
    assert session.player._length == len(audio)
    assert np.allclose(session.player._buffer[:session.player._length], audio)
