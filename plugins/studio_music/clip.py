"""Glue between grids, MIDI files, the synthesizer and keys (numpy only, no torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studio.plugin_kit.midi import GM_PROGRAMS, MidiError, MidiNote, MidiSong, read_midi, read_midi_file, write_midi
from studio_music.representation import (
    PITCH_MAX,
    PITCH_MIN,
    PITCH_NAMES,
    STEPS_PER_QUARTER,
    VOICES,
    NoteEvent,
    notes_to_tokens,
    tokens_to_notes,
)

# Krumhansl-Kessler key profiles.
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def estimate_key(notes: list[NoteEvent]) -> tuple[int, str] | None:
    """(tonic, mode) by duration-weighted pitch-class correlation, or None without notes."""
    if not notes:
        return None
    histogram = np.zeros(12)
    for n in notes:
        histogram[n.pitch % 12] += n.duration
    best, found = -2.0, None
    for tonic in range(12):
        for mode, profile in (("major", _MAJOR), ("minor", _MINOR)):
            score = np.corrcoef(histogram, np.roll(profile, tonic))[0, 1]
            if score > best:
                best, found = score, (tonic, mode)
    return found


def seconds_per_step(tempo: float) -> float:
    return 60.0 / float(tempo) / STEPS_PER_QUARTER


def grid_to_midi(tokens: np.ndarray, tempo: float, instrument: str = "organ", title: str = "",
                 key: tuple[int, str] | None = None) -> bytes:
    tpq = 480
    per_step = tpq // STEPS_PER_QUARTER
    notes = [MidiNote(e.start * per_step, e.duration * per_step, e.pitch, 80, e.voice)
             for e in tokens_to_notes(tokens)]
    program = GM_PROGRAMS.get(instrument, 19)
    return write_midi(notes, tempo, tpq, programs=[program] * 4, names=[v.capitalize() for v in VOICES],
                      title=title, key=key)


def midi_to_grid(data: bytes) -> tuple[np.ndarray, float]:
    """A MIDI file -> (grid (T, 4), tempo); see :func:`midi_to_clip` for the key too."""
    grid, tempo, _ = midi_to_clip(data)
    return grid, tempo


def midi_to_clip(data: bytes) -> tuple[np.ndarray, float, tuple[int, str] | None]:
    """A MIDI file -> (grid (T, 4), tempo, key signature or None).  Four or more tracks/channels map to the voices by
    mean pitch; fewer are split by pitch at each onset (highest = soprano)."""
    return song_to_clip(read_midi(data))


def song_to_clip(song: MidiSong) -> tuple[np.ndarray, float, tuple[int, str] | None]:
    """A read MIDI song -> (grid (T, 4), tempo, key signature or None); see :func:`midi_to_clip`."""
    if not song.notes:
        raise MidiError("the MIDI file has no notes")
    per_step = song.ticks_per_quarter / STEPS_PER_QUARTER
    voices = sorted({n.voice for n in song.notes})
    events: list[NoteEvent] = []
    if len(voices) >= 4:
        means = {v: np.mean([n.pitch for n in song.notes if n.voice == v]) for v in voices}
        order = sorted(voices, key=lambda v: -means[v])[:4]
        for n in song.notes:
            if n.voice in order:
                events.append(_event(n, per_step, order.index(n.voice)))
    else:
        by_onset: dict[int, list[MidiNote]] = {}
        for n in song.notes:
            by_onset.setdefault(int(round(n.start / per_step)), []).append(n)
        for onset in sorted(by_onset):
            chord = sorted(by_onset[onset], key=lambda n: -n.pitch)[:4]
            for index, n in enumerate(chord):
                voice = index if len(chord) > 1 else 0
                if len(chord) == 2 and index == 1:
                    voice = 3  # two parts: soprano and bass
                events.append(_event(n, per_step, voice))
    for e in events:
        while e.pitch < PITCH_MIN:
            e.pitch += 12
        while e.pitch > PITCH_MAX:
            e.pitch -= 12
    return notes_to_tokens(events), float(song.tempo_bpm), song.key


def _event(n: MidiNote, per_step: float, voice: int) -> NoteEvent:
    start = int(round(n.start / per_step))
    end = max(start + 1, int(round((n.start + n.duration) / per_step)))
    return NoteEvent(start, end - start, int(n.pitch), voice)


def load_midi_file(path: str | Path) -> tuple[np.ndarray, float, tuple[int, str] | None]:
    return song_to_clip(read_midi_file(path))


def describe_key(tonic: int, mode: str) -> str:
    return f"{PITCH_NAMES[tonic % 12]} {mode}"
