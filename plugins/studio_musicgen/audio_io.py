"""Reading a WAV clip for continuation (standard library + numpy) and resampling it."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np

from studio.plugin_api import ParamError


def _reason(exc: BaseException) -> str:
    """Why a WAV could not be read, in words (``EOFError()`` alone would print as "()")."""
    if isinstance(exc, EOFError):
        return "the file ends too early: it is truncated or not a WAV file"
    text = str(exc).strip()
    return text or type(exc).__name__


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """float32 (frames, channels) in [-1, 1] and the sample rate.  Raises ParamError (a
    ValueError) with a sentence for the user when the file cannot be read."""
    name = Path(path).name
    try:
        with wave.open(str(path), "rb") as reader:
            channels, width, rate = reader.getnchannels(), reader.getsampwidth(), reader.getframerate()
            raw = reader.readframes(reader.getnframes())
    except FileNotFoundError:
        raise ParamError(f"clip not found: {path}") from None
    except (wave.Error, EOFError, OSError, struct.error, ValueError) as exc:
        raise ParamError(f"cannot read {name} as a WAV file ({_reason(exc)})") from None
    if channels < 1 or rate < 1:
        raise ParamError(f"cannot read {name} as a WAV file (it declares {channels} channels at {rate} Hz)")
    usable = len(raw) - len(raw) % (width * channels) if width else 0
    raw = raw[:usable]  # a cut-off last frame is dropped, not an error
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
        raise ParamError(f"unsupported sample width {width} in {name}")
    if not len(data):
        raise ParamError(f"{name} has no audio")
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
