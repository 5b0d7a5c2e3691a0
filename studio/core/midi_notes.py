"""The notes of a MIDI file in seconds, for the piano roll: (start, duration, pitch, voice).

Read with ``mido`` (imported on first use).  Voices are the note-carrying tracks of a type-1
file (a chorale writes one track per voice), channels in a type-0 file.  Tempo changes are
honoured (mido's merged timeline converts ticks to seconds with them).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Note:
    start: float  # seconds
    duration: float
    pitch: int
    voice: int


def notes_in_midi(data: bytes) -> list[Note]:
    """Every note of ``data`` (a Standard MIDI File), sorted by start; ValueError when unreadable."""
    import mido

    try:
        song = mido.MidiFile(file=io.BytesIO(data))
    except (OSError, EOFError, ValueError, KeyError, IndexError) as exc:
        raise ValueError(f"not a readable MIDI file ({exc})") from None
    tracks = [list(_absolute(track)) for track in song.tracks]
    seconds = _tempo_map([event for track in tracks for event in track], song.ticks_per_beat)
    note_tracks = [i for i, track in enumerate(tracks) if any(m.type == "note_on" for _, m in track)]
    by_channel = song.type == 0 or len(note_tracks) <= 1  # a type-0 file keeps its voices on channels
    notes: list[Note] = []
    for voice_index, index in enumerate(note_tracks):
        open_notes: dict[tuple[int, int], int] = {}  # (channel, pitch) -> start tick
        for tick, msg in tracks[index]:
            if msg.type not in ("note_on", "note_off"):
                continue
            key = (msg.channel, msg.note)
            if msg.type == "note_on" and msg.velocity > 0:
                open_notes.setdefault(key, tick)
            elif key in open_notes:
                start = seconds(open_notes.pop(key))
                voice = msg.channel if by_channel else voice_index
                notes.append(Note(start, max(0.0, seconds(tick) - start), msg.note, voice))
    notes.sort(key=lambda n: (n.start, n.voice, -n.pitch))
    return notes


def _absolute(track: Any) -> Iterator[tuple[int, Any]]:
    tick = 0
    for msg in track:
        tick += msg.time
        yield tick, msg


def _tempo_map(events: list[tuple[int, Any]], ticks_per_beat: int) -> Callable[[int], float]:
    """tick -> seconds, with every tempo change of the file (120 bpm until the first)."""
    import mido

    changes = sorted((tick, msg.tempo) for tick, msg in events if msg.type == "set_tempo")
    marks: list[tuple[int, float, int]] = [(0, 0.0, 500_000)]  # (tick, seconds at tick, tempo from there)
    for tick, tempo in changes:
        last_tick, last_seconds, last_tempo = marks[-1]
        marks.append((tick, last_seconds + mido.tick2second(tick - last_tick, ticks_per_beat, last_tempo), tempo))

    def seconds(tick: int) -> float:
        mark = next(m for m in reversed(marks) if m[0] <= tick)
        return float(mark[1] + mido.tick2second(tick - mark[0], ticks_per_beat, mark[2]))

    return seconds
