"""A small wavetable synthesizer (numpy only): organ, piano-like, strings and choir.

* Every note has a raised-cosine attack and release (zero value and zero slope at both
  ends), so nothing clicks.
* Voices are panned across the stereo field (equal-power), soprano left to bass right.
* The mix goes through a fixed gain and a stateless soft limiter whose ceiling is -1 dBFS,
  so any stretch of time can be rendered on its own: rendering ``[a, b)`` then ``[b, c)``
  gives exactly the samples of rendering ``[a, c)``.  That is what lets the plugin stream
  audio bar by bar while the model is still writing, and still hand back one seamless clip.
  A note whose end is not known yet (``duration=None``) is rendered as still sounding.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

INSTRUMENTS = ("organ", "piano", "strings", "choir")
PEAK_DBFS = -1.0
PEAK = 10 ** (PEAK_DBFS / 20)  # 0.891
_TABLE = 2048


@dataclass(frozen=True)
class Timbre:
    harmonics: tuple[float, ...]  # amplitude of partials 1..n
    attack: float  # seconds
    release: float
    decay: float = 0.0  # seconds; > 0: the bright partials die away (piano-like)
    floor: float = 1.0  # level the decay settles at
    vibrato: float = 0.0  # depth in semitones (5.2 Hz)
    detune: float = 0.0  # cents between two copies (chorus)
    gain: float = 0.22  # per-note level before the limiter


TIMBRES = {
    "organ": Timbre((1.0, 0.55, 0.3, 0.22, 0.1, 0.08, 0.05, 0.04), attack=0.02, release=0.06, gain=0.26),
    "piano": Timbre((1.0, 0.45, 0.22, 0.12, 0.07, 0.04), attack=0.004, release=0.09, decay=0.8, floor=0.25,
                    gain=0.36),
    "strings": Timbre((1.0, 0.7, 0.5, 0.38, 0.3, 0.22, 0.17, 0.12, 0.09, 0.07), attack=0.09, release=0.2,
                      vibrato=0.1, detune=7.0, gain=0.21),
    "choir": Timbre((1.0, 0.3, 0.35, 0.12, 0.08), attack=0.08, release=0.16, vibrato=0.12, detune=9.0,
                    gain=0.3),
}

_tables: dict[tuple[str, int, int], np.ndarray] = {}


def midi_to_hz(pitch: float) -> float:
    return 440.0 * 2 ** ((pitch - 69) / 12)


def _table(instrument: str, pitch: int, sr: int, bright: bool = True) -> np.ndarray:
    """One cycle, band-limited for this pitch (partials above 0.45 sr left out)."""
    key = (instrument, int(pitch), sr * (1 if bright else -1))
    table = _tables.get(key)
    if table is None:
        timbre = TIMBRES[instrument]
        f0 = midi_to_hz(pitch)
        phase = np.arange(_TABLE + 1) / _TABLE * 2 * np.pi
        table = np.zeros(_TABLE + 1)
        harmonics = timbre.harmonics if bright else timbre.harmonics[:2]
        for n, amp in enumerate(harmonics, start=1):
            if f0 * n >= 0.45 * sr:
                break
            table += amp * np.sin(n * phase)
        table /= max(1e-9, np.max(np.abs(table)))
        _tables[key] = table
    return table


def _lookup(table: np.ndarray, cycles: np.ndarray) -> np.ndarray:
    position = (cycles % 1.0) * _TABLE
    index = position.astype(np.int64)
    frac = position - index
    return table[index] * (1 - frac) + table[index + 1] * frac


def _ramp_up(x: np.ndarray) -> np.ndarray:
    """0 -> 1 raised cosine over x in [0, 1]; 1 beyond."""
    x = np.clip(x, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * x)


def pan_gains(voice: int, voices: int = 4) -> tuple[float, float]:
    """Equal-power pan: soprano left ... bass right (spread ±60%)."""
    position = 0.0 if voices <= 1 else -0.6 + 1.2 * voice / (voices - 1)
    angle = (position + 1) * np.pi / 4
    return float(np.cos(angle)), float(np.sin(angle))


def soft_limit(x: np.ndarray, ceiling: float = PEAK * 0.995, knee: float = 0.6) -> np.ndarray:
    """Identity below ``knee``; above it, a smooth curve approaching ``ceiling`` (never above)."""
    out = np.array(x, dtype=np.float64, copy=True)
    magnitude = np.abs(out)
    over = magnitude > knee
    if np.any(over):
        room = ceiling - knee
        excess = magnitude[over] - knee
        out[over] = np.sign(out[over]) * (knee + room * np.tanh(excess / room))
    return out


@dataclass
class SynthNote:
    start: float  # seconds
    duration: float | None  # seconds; None = still sounding (streaming)
    pitch: int
    voice: int = 0
    velocity: float = 0.8


class Synth:
    def __init__(self, instrument: str = "organ", sample_rate: int = 32000, voices: int = 4):
        if instrument not in TIMBRES:
            raise ValueError(f"unknown instrument {instrument!r}; choose one of {', '.join(INSTRUMENTS)}")
        self.instrument = instrument
        self.timbre = TIMBRES[instrument]
        self.sample_rate = int(sample_rate)
        self.voices = voices

    @property
    def release(self) -> float:
        return self.timbre.release

    def end_time(self, notes: Sequence[SynthNote]) -> float:
        return max((n.start + (n.duration or 0.0) for n in notes), default=0.0) + self.timbre.release + 0.02

    def render_range(self, notes: Iterable[SynthNote], a: int, b: int) -> np.ndarray:
        """Samples ``[a, b)`` of the mix as float32 (frames, 2), limiter applied."""
        sr, timbre = self.sample_rate, self.timbre
        out = np.zeros((max(0, b - a), 2))
        if b <= a:
            return out.astype(np.float32)
        for note in notes:
            start = int(round(note.start * sr))
            length = None if note.duration is None else max(1, int(round(note.duration * sr)))
            stop = None if length is None else start + length + int(round(timbre.release * sr))
            lo, hi = max(a, start), b if stop is None else min(b, stop)
            if hi <= lo:
                continue
            t = (np.arange(lo, hi) - start) / sr
            f0 = midi_to_hz(note.pitch)
            cycles = f0 * t
            if timbre.vibrato:
                rate = 5.2
                depth = timbre.vibrato * np.log(2) / 12
                cycles = cycles + f0 * depth * (1 - np.cos(2 * np.pi * rate * t)) / (2 * np.pi * rate)
            bright = _table(self.instrument, note.pitch, sr, True)
            if timbre.detune:
                ratio = 2 ** (timbre.detune / 2400)
                wave = 0.5 * (_lookup(bright, cycles * ratio) + _lookup(bright, cycles / ratio + 0.37))
            else:
                wave = _lookup(bright, cycles)
            if timbre.decay:
                dull = _lookup(_table(self.instrument, note.pitch, sr, False), cycles)
                fade = np.exp(-t / timbre.decay)
                wave = dull + (wave - dull) * fade
                level = timbre.floor + (1 - timbre.floor) * fade
            else:
                level = 1.0
            env = _ramp_up(t / timbre.attack) * level
            if length is not None:
                env = env * (1.0 - _ramp_up((t - length / sr) / timbre.release))
            signal = wave * env * (timbre.gain * note.velocity)
            left, right = pan_gains(note.voice, self.voices)
            out[lo - a:hi - a, 0] += signal * left
            out[lo - a:hi - a, 1] += signal * right
        return soft_limit(out).astype(np.float32)

    def render(self, notes: Sequence[SynthNote]) -> np.ndarray:
        """The whole clip, release tails included."""
        return self.render_range(notes, 0, int(np.ceil(self.end_time(notes) * self.sample_rate)))


def render(notes: Sequence[SynthNote], instrument: str = "organ", sr: int = 32000, voices: int = 4) -> np.ndarray:
    return Synth(instrument, sr, voices).render(notes)


def notes_from_events(events: Iterable, seconds_per_step: float, velocity: float = 0.8) -> list[SynthNote]:
    """studio_music.representation.NoteEvent list -> SynthNote list in seconds."""
    return [SynthNote(e.start * seconds_per_step, e.duration * seconds_per_step, e.pitch, e.voice, velocity)
            for e in events]
