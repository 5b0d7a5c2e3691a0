"""Reading a WAV clip for continuation (standard library + numpy) and resampling it."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """float32 (frames, channels) in [-1, 1] and the sample rate.  Raises ValueError with a
    sentence for the user when the file cannot be read."""
    try:
        with wave.open(str(path), "rb") as reader:
            channels, width, rate = reader.getnchannels(), reader.getsampwidth(), reader.getframerate()
            raw = reader.readframes(reader.getnframes())
    except FileNotFoundError:
        raise ValueError(f"clip not found: {path}") from None
    except (wave.Error, EOFError, OSError) as exc:
        raise ValueError(f"cannot read {Path(path).name} as a WAV file ({exc})") from None
    if width == 1:
        data = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) / 128
    elif width == 2:
        data = np.frombuffer(raw, "<i2").astype(np.float32) / 32768
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        value = np.where(value & 0x800000, value - (1 << 24), value)
        data = value.astype(np.float32) / (1 << 23)
    elif width == 4:
        data = np.frombuffer(raw, "<i4").astype(np.float32) / 2**31
    else:
        raise ValueError(f"unsupported sample width {width} in {Path(path).name}")
    if not len(data):
        raise ValueError(f"{Path(path).name} has no audio")
    return data.reshape(-1, channels), rate


def resample(audio: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Linear-interpolation resampling, (frames, channels) -> (frames', channels)."""
    if source_rate == target_rate:
        return audio.astype(np.float32)
    frames = max(1, int(round(len(audio) * target_rate / source_rate)))
    positions = np.arange(frames) * (source_rate / target_rate)
    base = np.arange(len(audio))
    return np.stack([np.interp(positions, base, audio[:, c]) for c in range(audio.shape[1])], axis=1) \
        .astype(np.float32)
