"""The Music view-model without Qt: streaming into the player, history, restore, export."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.jobs import Saved
from studio.core.playback import Player
from studio.core.sessions.music import MusicSession
from studio.plugin_api import ParamError


def run_job(session, timeout=60):
    saved = []
    unsubscribe = session.context.engine.subscribe(
        lambda job, event: saved.append((job, event)) if isinstance(event, Saved) else None)
    job = session.generate()
    assert job.wait(timeout), "job did not finish"
    unsubscribe()
    for j, event in saved:
        session.handle(j, event)
    return job


def test_every_chunk_reaches_the_player(music_context, fake_audio):
    session = MusicSession(music_context, player=Player(fake_audio))
    assert session.plugin.id == "chorale"  # the embedded model is the default
    session.set_prompt("a chorale in F major, piano")
    session.set_value("seconds", 5.0)
    session.set_value("seed", 8)
    job = run_job(session)
    artifact = job.result.artifacts[0]
    # The whole clip was streamed into the player, sample for sample, and playback started.
    assert session.player.duration == pytest.approx(len(artifact.audio) / artifact.sample_rate)
    assert np.allclose(session.player._buffer[:session.player._length], artifact.audio)
    assert fake_audio.streams and fake_audio.streams[0].started
    chunks = session.take_new_audio()
    assert sum(len(a) for a, _ in chunks) == len(artifact.audio)
    assert session.current is not None and session.current.symbolic and session.notes
    assert {n.voice for n in session.notes} == {0, 1, 2, 3}


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
    fresh.open_clip(clips[0])
    assert fresh.player.duration > 2.0 and fresh.notes
    assert fresh.export_wav(clips[0], tmp_path / "a").suffix == ".wav"
    assert fresh.export_midi(clips[0], tmp_path / "a.midi").exists()


def test_musicgen_clip_has_no_midi(music_context, fake_audio, tiny_musicgen, tmp_path):
    session = MusicSession(music_context, "musicgen", player=Player(fake_audio))
    session.set_model(str(tiny_musicgen))
    session.set_prompt("happy piano")
    assert session.understood.summary == ""  # MusicGen reads the prompt itself
    session.set_value("seconds", 1.0)
    run_job(session, timeout=120)
    clip = session.clips()[0]
    assert not clip.symbolic and session.player.duration == pytest.approx(1.0)
    with pytest.raises(ParamError):
        session.export_midi(clip, tmp_path / "x.mid")
