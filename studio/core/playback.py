"""Audio playback without Qt: a sounddevice callback stream around a growable buffer.

The audio callback only copies samples out of a buffer (no allocation, no waiting beyond a
very short lock), so playback never blocks the UI and the UI never blocks playback.  The
buffer can grow while playing: previews from a running generation are appended and heard
as they arrive ("preview starts while the clip is still being generated").

The stream is made by an injectable ``stream_factory(samplerate, channels, blocksize,
callback)`` returning an object with ``start()``, ``stop()`` and ``close()``; tests inject a
fake and drive the callback themselves, so no sound card is needed.  Without PortAudio or
without an output device, :attr:`Player.status` says so in plain words and ``play`` does
nothing; everything else (loading, seeking, positions) still works.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
AudioCallback = Callable[[Any, int, Any, Any], None]  # (outdata, frames, time_info, status)
StreamFactory = Callable[[int, int, int, AudioCallback], Any]


def sounddevice_stream_factory(samplerate: int, channels: int, blocksize: int, callback: AudioCallback) -> Any:
    """The real thing.  Raises RuntimeError with a plain sentence when it cannot play."""
    try:
        import sounddevice as sd  # loads PortAudio
    except (OSError, ImportError) as exc:
        raise RuntimeError(f"PortAudio not available: {exc}") from None
    try:
        device = sd.query_devices(kind="output")
    except Exception as exc:  # noqa: BLE001 - sounddevice raises PortAudioError/ValueError
        raise RuntimeError(f"no output device ({exc})") from None
    if not device or int(device.get("max_output_channels", 0)) < 1:
        raise RuntimeError("no output device")
    try:
        return sd.OutputStream(samplerate=samplerate, channels=channels, dtype="float32", blocksize=blocksize,
                               callback=callback)
    except Exception as exc:  # noqa: BLE001 - PortAudio errors come in several types; one sentence
        raise RuntimeError(f"cannot open the output device: {exc}") from None


class Player:
    CHANNELS = 2

    def __init__(self, stream_factory: StreamFactory | None = None, blocksize: int = 1024):
        self._factory = stream_factory or sounddevice_stream_factory
        self.blocksize = blocksize
        self._lock = threading.Lock()
        self._buffer = np.zeros((0, self.CHANNELS), dtype=np.float32)
        self._length = 0
        self._position = 0  # next frame to play
        self.sample_rate = 32000
        self.volume = 1.0
        self.loop = False
        self.open_ended = False  # more audio is coming (streaming)
        self.playing = False
        self.underruns = 0
        self._stream: Any = None  # the factory's stream, opened on first play / probe
        self._stream_rate: int | None = None
        self.status = "ready"
        self.available = True
        self.on_finished: Callable[[], None] | None = None

    # -- the clip -------------------------------------------------------------------------
    def load(self, audio: Any, sample_rate: int, open_ended: bool = False) -> None:
        """Replace the clip (stops playback when the sample rate changes)."""
        data = self._as_stereo(audio)
        with self._lock:
            self._buffer = data.copy() if len(data) else np.zeros((4096, self.CHANNELS), np.float32)
            self._length = len(data)
            self._position = 0
            self.open_ended = open_ended
        if sample_rate != self.sample_rate:
            self.sample_rate = int(sample_rate)
            if self._stream is not None and self._stream_rate != self.sample_rate:
                self._close_stream()

    def begin_stream(self, sample_rate: int) -> None:
        """Start an empty, growing clip (previews will be appended)."""
        self.load(np.zeros((0, self.CHANNELS), np.float32), sample_rate, open_ended=True)

    def append(self, audio: Any) -> None:
        data = self._as_stereo(audio)
        if not len(data):
            return
        with self._lock:
            needed = self._length + len(data)
            if needed > len(self._buffer):
                grown = np.zeros((max(needed, 2 * len(self._buffer)), self.CHANNELS), np.float32)
                grown[:self._length] = self._buffer[:self._length]
                self._buffer = grown
            self._buffer[self._length:needed] = data
            self._length = needed

    def end_stream(self) -> None:
        with self._lock:
            self.open_ended = False

    @staticmethod
    def _as_stereo(audio: Any) -> np.ndarray:
        data = np.asarray(audio, dtype=np.float32)
        if data.ndim == 1:
            data = data[:, None]
        if data.shape[1] == 1:
            data = np.repeat(data, 2, axis=1)
        return np.ascontiguousarray(data[:, :2])

    @property
    def duration(self) -> float:
        return self._length / self.sample_rate

    @property
    def position(self) -> float:
        return self._position / self.sample_rate

    def seek(self, seconds: float) -> None:
        with self._lock:
            self._position = int(min(max(0.0, seconds) * self.sample_rate, self._length))

    def set_volume(self, volume: float) -> None:
        self.volume = float(min(max(volume, 0.0), 1.0))

    # -- transport ------------------------------------------------------------------------
    def play(self) -> bool:
        """Start (or resume) playing; False (and :attr:`status` says why) when it cannot."""
        if self._stream is None:
            try:
                self._stream = self._factory(self.sample_rate, self.CHANNELS, self.blocksize, self._callback)
                self._stream_rate = self.sample_rate
            except Exception as exc:  # noqa: BLE001 - any failure becomes a status line
                self.status = str(exc) if isinstance(exc, RuntimeError) else f"cannot play: {exc}"
                self.available = False
                self.playing = False
                log.info("playback unavailable: %s", self.status)
                return False
        with self._lock:
            if self._position >= self._length and not self.open_ended:
                self._position = 0
        self.playing = True
        self.available = True
        self.status = "playing"
        self._stream.start()
        return True

    def pause(self) -> None:
        self.playing = False
        if self._stream is not None:
            self._stream.stop()
        if self.available:
            self.status = "paused"

    def stop(self) -> None:
        self.pause()
        self.seek(0.0)
        if self.available:
            self.status = "stopped"

    def close(self) -> None:
        self.playing = False
        self._close_stream()

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
                stream.close()
            except Exception:
                log.exception("closing the audio stream failed")

    def probe(self) -> str:
        """Try to open the output once (without playing) so the panel can say at start-up
        whether sound will work."""
        if self._stream is None:
            try:
                self._stream = self._factory(self.sample_rate, self.CHANNELS, self.blocksize, self._callback)
                self._stream_rate = self.sample_rate
                self.available, self.status = True, "ready"
            except Exception as exc:  # noqa: BLE001 - no sound output is a status line, not a crash
                self.available, self.status = False, str(exc)
        return self.status

    # -- audio thread ---------------------------------------------------------------------
    def _callback(self, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        """Fill ``outdata`` (frames, 2).  Runs on PortAudio's thread: copy, nothing else."""
        finished = False
        with self._lock:
            written = 0
            if self.playing:
                while written < frames:
                    available = self._length - self._position
                    if available <= 0:
                        if self.loop and not self.open_ended and self._length:
                            self._position = 0
                            continue
                        if self.open_ended:
                            self.underruns += 1
                        else:
                            finished = True
                        break
                    take = min(available, frames - written)
                    outdata[written:written + take] = self._buffer[self._position:self._position + take] * self.volume
                    self._position += take
                    written += take
            outdata[written:] = 0.0
        if finished and self.playing:
            self.playing = False
            self.status = "stopped"
            if self.on_finished is not None:
                self.on_finished()
