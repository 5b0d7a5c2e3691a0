"""The Qt-free player, driven through an injected output stream (no sound card)."""

from __future__ import annotations

import numpy as np

from studio.core.playback import Player, sounddevice_stream_factory
from tests.music.conftest import no_portaudio


def ramp(frames, channels=2):
    return np.tile(np.linspace(0, 0.5, frames, dtype=np.float32)[:, None], (1, channels))


def test_plays_the_buffer_with_volume(fake_audio):
    player = Player(fake_audio, blocksize=64)
    player.load(ramp(100), 8000)
    player.set_volume(0.5)
    assert player.play()
    stream = fake_audio.streams[0]
    assert stream.started and stream.samplerate == 8000 and stream.channels == 2
    first = stream.pull()
    assert np.allclose(first, ramp(100)[:64] * 0.5)
    second = stream.pull()
    assert np.allclose(second[:36], ramp(100)[64:] * 0.5) and np.all(second[36:] == 0)
    assert not player.playing and player.status == "stopped"  # reached the end
    assert player.position == 100 / 8000


def test_mono_is_duplicated_and_silence_when_paused(fake_audio):
    player = Player(fake_audio, blocksize=16)
    player.load(np.ones(50, dtype=np.float32) * 0.25, 8000)
    player.play()
    block = fake_audio.streams[0].pull()
    assert np.allclose(block, 0.25)
    player.pause()
    player.playing = True  # the stream may still call once after stop(); paused means silence
    player.playing = False
    assert np.all(fake_audio.streams[0].pull() == 0)


def test_loop_and_seek(fake_audio):
    player = Player(fake_audio, blocksize=30)
    player.load(ramp(40), 8000)
    player.loop = True
    player.play()
    stream = fake_audio.streams[0]
    stream.pull()
    block = stream.pull()  # 10 frames left, then wraps to the start
    assert np.allclose(block[:10], ramp(40)[30:]) and np.allclose(block[10:], ramp(40)[:20])
    assert player.playing
    player.seek(35 / 8000)
    assert player.position == 35 / 8000
    assert np.allclose(stream.pull()[:5], ramp(40)[35:])
    player.seek(99)  # clamped to the end
    assert player.position == player.duration


def test_streaming_append_while_playing(fake_audio):
    player = Player(fake_audio, blocksize=32)
    player.begin_stream(8000)
    player.append(ramp(20))
    player.play()
    stream = fake_audio.streams[0]
    block = stream.pull()
    assert np.allclose(block[:20], ramp(20)) and np.all(block[20:] == 0)
    assert player.playing and player.underruns == 1  # waiting for more, not finished
    player.append(np.full((40, 2), 0.1, np.float32))
    assert np.allclose(stream.pull(), 0.1)
    player.end_stream()
    stream.pull()
    assert not player.playing and player.duration == 60 / 8000


def test_no_portaudio_is_a_plain_status():
    player = Player(no_portaudio)
    player.load(ramp(10), 8000)
    assert player.play() is False
    assert not player.available and player.status.startswith("PortAudio not available")
    player.seek(0.001)  # everything else still works
    assert player.position == 0.001


def test_real_factory_reports_why_it_cannot_play():
    """On this machine PortAudio is missing (or there is no device): a sentence, no crash."""
    player = Player(sounddevice_stream_factory)
    status = player.probe()
    if not player.available:
        assert status.startswith(("PortAudio not available", "no output device", "cannot open"))
    player.close()


def test_sample_rate_change_reopens_the_stream(fake_audio):
    player = Player(fake_audio)
    player.load(ramp(10), 8000)
    player.play()
    player.load(ramp(10), 16000)
    player.play()
    assert [s.samplerate for s in fake_audio.streams] == [8000, 16000]
    assert fake_audio.streams[0].closed
