"""Shared fixtures for the music tests: a context with the music plugins, a fake audio
stream (no sound card needed), the embedded chorale model and a tiny MusicGen."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from studio.core.context import StudioContext
from studio.core.registry import Registry
from studio.core.settings import Settings


class FakeStream:
    """Stands in for sounddevice.OutputStream: the test pulls blocks with ``pull``."""

    def __init__(self, samplerate, channels, blocksize, callback):
        self.samplerate, self.channels, self.blocksize, self.callback = samplerate, channels, blocksize, callback
        self.started = False
        self.closed = False

    def start(self):
        self.started = True

    def stop(self):
        self.started = False

    def close(self):
        self.closed = True

    def pull(self, frames=None):
        frames = frames or self.blocksize
        out = np.full((frames, self.channels), np.nan, dtype=np.float32)
        self.callback(out, frames, None, None)
        return out


class FakeAudio:
    def __init__(self):
        self.streams: list[FakeStream] = []

    def __call__(self, samplerate, channels, blocksize, callback):
        stream = FakeStream(samplerate, channels, blocksize, callback)
        self.streams.append(stream)
        return stream


@pytest.fixture
def fake_audio():
    return FakeAudio()


def no_portaudio(samplerate, channels, blocksize, callback):
    raise RuntimeError("PortAudio not available: PortAudio library not found")


@pytest.fixture
def music_context(tmp_path):
    from studio_music import ChoralePlugin
    from studio_musicgen import MusicGenPlugin

    registry = Registry()
    registry.add("chorale", ChoralePlugin)
    registry.add("musicgen", MusicGenPlugin)
    context = StudioContext.create(Settings(output_dir=str(tmp_path / "out")), registry)
    yield context
    context.close()


@pytest.fixture(scope="session")
def chorale_model():
    import torch

    from studio.plugin_api import LoadOptions
    from studio_music import EMBEDDED
    from studio_music.chorale import load_chorale

    torch.set_num_threads(1)
    return load_chorale(str(EMBEDDED), LoadOptions(), lambda message: None)


_tiny_lock = threading.Lock()


@pytest.fixture(scope="session")
def tiny_musicgen(tmp_path_factory):
    import torch

    from tests.music.tiny_musicgen import build_tiny_musicgen

    torch.set_num_threads(1)
    with _tiny_lock:
        return build_tiny_musicgen(tmp_path_factory.mktemp("tiny-musicgen") / "model", max_positions=256)
