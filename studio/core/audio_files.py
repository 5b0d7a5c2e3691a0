"""WAV encoding with metadata (RIFF LIST/INFO: title = prompt, comment = parameters JSON)."""

from __future__ import annotations

import io
import json
import struct
import wave
from collections.abc import Mapping
from typing import Any


def _info_chunk(parameters: Mapping[str, Any]) -> bytes:
    entries = {
        b"INAM": str(parameters.get("prompt", ""))[:200],
        b"ISFT": "Studio",
        b"ICMT": json.dumps(dict(parameters), default=str, ensure_ascii=False),
    }
    body = b"INFO"
    for key, text in entries.items():
        data = text.encode("utf-8") + b"\0"
        if len(data) % 2:
            data += b"\0"
        body += key + struct.pack("<I", len(data)) + data
    return b"LIST" + struct.pack("<I", len(body)) + body


def wav_bytes(samples: Any, sample_rate: int, parameters: Mapping[str, Any] | None = None) -> bytes:
    """16-bit PCM WAV from float samples in [-1, 1], shape (frames,) or (frames, channels)."""
    import numpy as np

    audio = np.asarray(samples, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[:, None]
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(audio.shape[1])
        writer.setsampwidth(2)
        writer.setframerate(int(sample_rate))
        writer.writeframes(pcm.tobytes())
    data = buffer.getvalue()
    if parameters:
        data += _info_chunk(parameters)
        data = data[:4] + struct.pack("<I", len(data) - 8) + data[8:]
    return data


def read_wav_info(data: bytes) -> dict[str, str]:
    """The LIST/INFO entries of a WAV written by :func:`wav_bytes` (key -> text)."""
    found: dict[str, str] = {}
    position = 12
    while position + 8 <= len(data):
        chunk_id, size = data[position:position + 4], struct.unpack("<I", data[position + 4:position + 8])[0]
        body = data[position + 8:position + 8 + size]
        if chunk_id == b"LIST" and body[:4] == b"INFO":
            inner = 4
            while inner + 8 <= len(body):
                key, length = body[inner:inner + 4], struct.unpack("<I", body[inner + 4:inner + 8])[0]
                found[key.decode("ascii")] = body[inner + 8:inner + 8 + length].rstrip(b"\0").decode("utf-8")
                inner += 8 + length + (length % 2)
        position += 8 + size + (size % 2)
    return found


def read_wav(path: str) -> tuple[Any, int]:
    """A 16-bit PCM WAV (as written by :func:`wav_bytes`) -> float32 (frames, channels), rate."""
    import numpy as np

    with wave.open(str(path), "rb") as reader:
        channels, width, rate = reader.getnchannels(), reader.getsampwidth(), reader.getframerate()
        raw = reader.readframes(reader.getnframes())
    if width != 2:
        raise ValueError(f"{path}: only 16-bit PCM WAV is supported here (got {8 * width}-bit)")
    return (np.frombuffer(raw, "<i2").astype(np.float32) / 32767.0).reshape(-1, channels), rate
