"""Standard MIDI files, written and read by hand (type 0/1, running status, tempo).

Only what the studio needs: notes with channel/track per voice, one tempo, a program
per voice.  Reading returns note events in seconds-independent ticks plus the tempo, so a
loaded file can be put on the model's 16th-note grid.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Sequence

GM_PROGRAMS = {"organ": 19, "piano": 0, "strings": 48, "choir": 52}  # 0-based GM numbers


class MidiError(ValueError):
    """The file is not a MIDI file we can read; the message is for the user."""


def _varlen(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))


@dataclass
class MidiNote:
    start: int  # ticks
    duration: int  # ticks
    pitch: int
    velocity: int = 80
    voice: int = 0  # track / channel index


@dataclass
class MidiSong:
    notes: list[MidiNote] = field(default_factory=list)
    ticks_per_quarter: int = 480
    tempo_bpm: float = 120.0
    time_signature: tuple[int, int] = (4, 4)
    key: tuple[int, str] | None = None  # (tonic pitch class, "major"/"minor") from a key signature


def _fifths(tonic: int, mode: str) -> int:
    """Sharps (+) or flats (-) of a key signature, choosing the smaller spelling."""
    major = (tonic + (3 if mode == "minor" else 0)) % 12
    sharps = (major * 7) % 12  # C=0, G=1, D=2 ...
    return sharps if sharps <= 6 else sharps - 12


def write_midi(notes: Sequence[MidiNote], tempo_bpm: float, ticks_per_quarter: int = 480,
               programs: Sequence[int] = (), names: Sequence[str] = (), title: str = "",
               key: tuple[int, str] | None = None) -> bytes:
    """A type-1 SMF: a conductor track, then one track per voice on its own channel."""
    voices = sorted({n.voice for n in notes}) or [0]
    tracks = []
    conductor = bytearray()
    if title:
        text = title.encode("utf-8")[:120]
        conductor += _varlen(0) + b"\xff\x03" + _varlen(len(text)) + text
    tempo = int(round(60_000_000 / max(1e-3, tempo_bpm)))
    conductor += _varlen(0) + b"\xff\x51\x03" + tempo.to_bytes(3, "big")
    conductor += _varlen(0) + b"\xff\x58\x04" + bytes([4, 2, 24, 8])
    if key is not None:
        conductor += _varlen(0) + b"\xff\x59\x02" + bytes([_fifths(*key) & 0xFF, 1 if key[1] == "minor" else 0])
    conductor += _varlen(0) + b"\xff\x2f\x00"
    tracks.append(bytes(conductor))
    for index, voice in enumerate(voices):
        channel = voice % 16
        if channel == 9:
            channel = 10  # keep off the drum channel
        events = []  # (tick, order, bytes): note-offs before note-ons at the same tick
        for n in notes:
            if n.voice != voice:
                continue
            pitch = max(0, min(127, int(n.pitch)))
            velocity = max(1, min(127, int(n.velocity)))
            events.append((int(n.start), 1, bytes([0x90 | channel, pitch, velocity])))
            events.append((int(n.start + max(1, n.duration)), 0, bytes([0x80 | channel, pitch, 0])))
        events.sort(key=lambda e: (e[0], e[1]))
        body = bytearray()
        if index < len(names) and names[index]:
            text = names[index].encode("utf-8")[:60]
            body += _varlen(0) + b"\xff\x03" + _varlen(len(text)) + text
        program = programs[index] if index < len(programs) else 0
        body += _varlen(0) + bytes([0xC0 | channel, program & 0x7F])
        now = 0
        for tick, _, data in events:
            body += _varlen(tick - now) + data
            now = tick
        body += _varlen(0) + b"\xff\x2f\x00"
        tracks.append(bytes(body))
    out = b"MThd" + struct.pack(">IHHH", 6, 1, len(tracks), ticks_per_quarter)
    for track in tracks:
        out += b"MTrk" + struct.pack(">I", len(track)) + track
    return out


def read_midi(data: bytes) -> MidiSong:
    """Parse an SMF (type 0 or 1).  Voices are tracks for type 1 (channels for type 0)."""
    if len(data) < 14 or data[:4] != b"MThd":
        raise MidiError("not a MIDI file (no MThd header)")
    length, fmt, ntracks, division = struct.unpack(">IHHH", data[4:14])
    if division & 0x8000:
        raise MidiError("SMPTE-timed MIDI files are not supported")
    song = MidiSong(ticks_per_quarter=division or 480)
    position = 8 + length
    tempo_set = False
    note_tracks = 0
    for track_index in range(ntracks):
        if data[position:position + 4] != b"MTrk":
            raise MidiError("damaged MIDI file (missing track header)")
        size = struct.unpack(">I", data[position + 4:position + 8])[0]
        track = data[position + 8:position + 8 + size]
        position += 8 + size
        had_notes = _read_track(track, song, note_tracks if fmt == 1 else None, tempo_set)
        tempo_set = tempo_set or getattr(song, "_tempo_seen", False)
        if had_notes:
            note_tracks += 1
    song.notes.sort(key=lambda n: (n.start, n.voice, -n.pitch))
    return song


def _read_track(track: bytes, song: MidiSong, voice: int | None, tempo_set: bool) -> bool:
    i = 0
    tick = 0
    status = 0
    open_notes: dict[tuple[int, int], tuple[int, int]] = {}
    had_notes = False

    def varlen() -> int:
        nonlocal i
        value = 0
        while True:
            if i >= len(track):
                raise MidiError("damaged MIDI file (truncated event)")
            byte = track[i]
            i += 1
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                return value

    while i < len(track):
        tick += varlen()
        if i >= len(track):
            break
        byte = track[i]
        if byte & 0x80:
            status = byte
            i += 1
        elif not status:
            raise MidiError("damaged MIDI file (data without status)")
        if status == 0xFF:
            kind = track[i]
            i += 1
            size = varlen()
            payload = track[i:i + size]
            i += size
            if kind == 0x51 and size == 3 and not getattr(song, "_tempo_seen", False):
                song.tempo_bpm = 60_000_000 / max(1, int.from_bytes(payload, "big"))
                song._tempo_seen = True  # type: ignore[attr-defined]
            elif kind == 0x59 and size == 2 and song.key is None:
                fifths = payload[0] - 256 if payload[0] > 127 else payload[0]
                minor = payload[1] == 1
                song.key = (((fifths * 7) % 12 + (9 if minor else 0)) % 12, "minor" if minor else "major")
            elif kind == 0x58 and size >= 2:
                song.time_signature = (payload[0], 2 ** payload[1])
            elif kind == 0x2F:
                break
            status = 0
            continue
        if status in (0xF0, 0xF7):
            size = varlen()
            i += size
            status = 0
            continue
        high = status & 0xF0
        channel = status & 0x0F
        if high in (0xC0, 0xD0):
            i += 1
            continue
        a, b = track[i], track[i + 1] if i + 1 < len(track) else 0
        i += 2
        who = voice if voice is not None else channel
        if high == 0x90 and b > 0:
            open_notes[(channel, a)] = (tick, b)
        elif high == 0x80 or (high == 0x90 and b == 0):
            started = open_notes.pop((channel, a), None)
            if started is not None and tick > started[0]:
                song.notes.append(MidiNote(started[0], tick - started[0], a, started[1], who))
                had_notes = True
    return had_notes
