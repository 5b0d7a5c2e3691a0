"""Standard MIDI files, read and written with ``mido``: notes, tempo, key, GM programs.

MIDI is a studio artifact type (``Artifact.midi``): symbolic plugins write it, the Music panel
reads it back for its piano roll, the CLI exports it.  One reader and one writer for all of
them, on a kept library instead of a hand-written codec.

* :func:`write_midi` writes a type-1 file: a conductor track (title, tempo, 4/4, key
  signature), then one track per voice on its own channel (never the drum channel), each with
  its name and GM program.
* :func:`read_midi` reads type 0 and type 1 files into a :class:`MidiSong`: notes in ticks
  (voices are the note-carrying tracks of a type-1 file, the channels of a type-0 file), the
  first tempo (``tempo_bpm``, the song's nominal tempo), every tempo change (``tempo_map``), the
  time signature and key signature.  :meth:`MidiSong.timed_notes` gives seconds through the whole
  tempo map, so a piece that slows down is drawn and played as it is written.

Anything that is not a MIDI file this can read raises :class:`MidiError` with a sentence.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: 0-based General MIDI programs for the instruments the studio names
GM_PROGRAMS = {"organ": 19, "piano": 0, "strings": 48, "choir": 52}
DRUM_CHANNEL = 9  # 0-based: GM channel 10
DEFAULT_BPM = 120.0  # the Standard MIDI File tempo until the first set_tempo
TEXT_CHARSET = "utf-8"  # titles and track names (mido's default, latin-1, cannot hold every prompt)


class MidiError(ValueError):
    """The file is not a MIDI file this can read; the message is for the user."""


@dataclass
class MidiNote:
    start: int  # ticks
    duration: int  # ticks
    pitch: int
    velocity: int = 80
    voice: int = 0  # track (type 1) or channel (type 0) index


@dataclass(frozen=True)
class TimedNote:
    start: float  # seconds
    duration: float  # seconds
    pitch: int
    voice: int


@dataclass
class MidiSong:
    notes: list[MidiNote] = field(default_factory=list)
    ticks_per_quarter: int = 480
    tempo_bpm: float = 120.0
    time_signature: tuple[int, int] = (4, 4)
    key: tuple[int, str] | None = None  # (tonic pitch class, "major" / "minor") from a key signature
    title: str = ""
    #: (tick, beats per minute) of every tempo change, by tick; empty = ``tempo_bpm`` throughout
    tempo_map: list[tuple[int, float]] = field(default_factory=list)

    @property
    def seconds_per_tick(self) -> float:
        """At the nominal (first) tempo."""
        return 60.0 / self.tempo_bpm / self.ticks_per_quarter

    def seconds_at(self, tick: int) -> float:
        """Seconds from the start to ``tick``, through every tempo change before it."""
        changes = self.tempo_map or [(0, self.tempo_bpm)]
        # before a file's first set_tempo, MIDI's default tempo (120 BPM) holds
        seconds, at, bpm = 0.0, 0, DEFAULT_BPM if changes[0][0] > 0 else changes[0][1]
        for change_tick, change_bpm in changes:
            if change_tick >= tick:
                break
            seconds += (change_tick - at) * 60.0 / bpm / self.ticks_per_quarter
            at, bpm = change_tick, change_bpm
        return seconds + (tick - at) * 60.0 / bpm / self.ticks_per_quarter

    def timed_notes(self) -> list[TimedNote]:
        """The notes in seconds through the tempo map (a piano roll's view)."""
        out = []
        for n in self.notes:
            start = self.seconds_at(n.start)
            out.append(TimedNote(start, self.seconds_at(n.start + n.duration) - start, n.pitch, n.voice))
        return out


# --------------------------------------------------------------------------- key signatures


def _fifths(tonic: int, scale: str) -> int:
    """Sharps (+) or flats (-) of the key signature, the smaller spelling (F# rather than Gb)."""
    major = (tonic + (3 if scale == "minor" else 0)) % 12
    sharps = (major * 7) % 12  # C=0, G=1, D=2 ...
    return sharps if sharps <= 6 else sharps - 12


# mido names key signatures ("C", "F#", "Bbm", ...); index = fifths + 7
_MAJOR_BY_FIFTHS = ("Cb", "Gb", "Db", "Ab", "Eb", "Bb", "F", "C", "G", "D", "A", "E", "B", "F#", "C#")
_MINOR_BY_FIFTHS = ("Abm", "Ebm", "Bbm", "Fm", "Cm", "Gm", "Dm", "Am", "Em", "Bm", "F#m", "C#m", "G#m", "D#m", "A#m")


def key_signature_name(tonic: int, scale: str) -> str:
    """mido's name for the key signature of (tonic pitch class, "major"/"minor")."""
    names = _MINOR_BY_FIFTHS if scale == "minor" else _MAJOR_BY_FIFTHS
    return names[_fifths(tonic, scale) + 7]


def _key_from_name(name: str) -> tuple[int, str] | None:
    for names, scale in ((_MAJOR_BY_FIFTHS, "major"), (_MINOR_BY_FIFTHS, "minor")):
        if name in names:
            fifths = names.index(name) - 7
            return ((fifths * 7) % 12 + (9 if scale == "minor" else 0)) % 12, scale
    return None


def _text(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` UTF-8 bytes without splitting a character."""
    return value.encode(TEXT_CHARSET)[:limit].decode(TEXT_CHARSET, errors="ignore")


# --------------------------------------------------------------------------- writing


def write_midi(notes: Sequence[MidiNote], tempo_bpm: float, ticks_per_quarter: int = 480,
               programs: Sequence[int] = (), names: Sequence[str] = (), title: str = "",
               key: tuple[int, str] | None = None) -> bytes:
    """A type-1 Standard MIDI file: a conductor track, then one track per voice on its own channel."""
    import mido

    song = mido.MidiFile(type=1, ticks_per_beat=ticks_per_quarter, charset=TEXT_CHARSET)
    conductor = mido.MidiTrack()
    if title:
        conductor.append(mido.MetaMessage("track_name", name=_text(title, 120), time=0))
    conductor.append(mido.MetaMessage("set_tempo", tempo=int(round(60_000_000 / max(1e-3, tempo_bpm))), time=0))
    conductor.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, clocks_per_click=24,
                                      notated_32nd_notes_per_beat=8, time=0))
    if key is not None:
        conductor.append(mido.MetaMessage("key_signature", key=key_signature_name(*key), time=0))
    conductor.append(mido.MetaMessage("end_of_track", time=0))
    song.tracks.append(conductor)
    for index, voice in enumerate(sorted({n.voice for n in notes}) or [0]):
        channel = voice % 16
        if channel == DRUM_CHANNEL:
            channel += 1  # keep off the drum channel
        track = mido.MidiTrack()
        if index < len(names) and names[index]:
            track.append(mido.MetaMessage("track_name", name=_text(names[index], 60), time=0))
        program = programs[index] if index < len(programs) else 0
        track.append(mido.Message("program_change", channel=channel, program=program & 0x7F, time=0))
        events = []  # (tick, order, message): note-offs before note-ons at the same tick
        for n in notes:
            if n.voice != voice:
                continue
            pitch = max(0, min(127, int(n.pitch)))
            velocity = max(1, min(127, int(n.velocity)))
            events.append((int(n.start), 1, mido.Message("note_on", channel=channel, note=pitch, velocity=velocity)))
            events.append((int(n.start + max(1, n.duration)), 0,
                           mido.Message("note_off", channel=channel, note=pitch, velocity=0)))
        events.sort(key=lambda e: (e[0], e[1]))
        now = 0
        for tick, _, message in events:
            track.append(message.copy(time=tick - now))
            now = tick
        track.append(mido.MetaMessage("end_of_track", time=0))
        song.tracks.append(track)
    out = io.BytesIO()
    song.save(file=out)
    return out.getvalue()


# --------------------------------------------------------------------------- reading


def read_midi(data: bytes) -> MidiSong:
    """Parse a Standard MIDI file (type 0 or 1) into a :class:`MidiSong`."""
    import mido

    if len(data) < 14 or data[:4] != b"MThd":
        raise MidiError("not a MIDI file (no MThd header)")
    if data[12] & 0x80:
        raise MidiError("SMPTE-timed MIDI files are not supported")
    try:
        midi = mido.MidiFile(file=io.BytesIO(data), charset=TEXT_CHARSET)
    except (OSError, EOFError, ValueError, IndexError, KeyError, TypeError, mido.KeySignatureError) as exc:
        raise MidiError(f"damaged MIDI file ({exc})") from None
    if midi.type == 2:
        raise MidiError("type-2 MIDI files (independent patterns) are not supported")
    song = MidiSong(ticks_per_quarter=midi.ticks_per_beat or 480)
    tempo_seen = False
    note_tracks = 0
    for index, track in enumerate(midi.tracks):
        tick = 0
        open_notes: dict[tuple[int, int], tuple[int, int]] = {}
        had_notes = False
        for message in track:
            tick += message.time
            if message.is_meta:
                if message.type == "set_tempo":
                    bpm = 60_000_000 / max(1, message.tempo)
                    song.tempo_map.append((tick, bpm))
                    if not tempo_seen:
                        song.tempo_bpm = bpm
                        tempo_seen = True
                elif message.type == "key_signature" and song.key is None:
                    song.key = _key_from_name(message.key)
                elif message.type == "time_signature":
                    song.time_signature = (message.numerator, message.denominator)
                elif message.type == "track_name" and index == 0 and not song.title:
                    song.title = message.name
                continue
            if message.type not in ("note_on", "note_off"):
                continue
            who = note_tracks if midi.type == 1 else message.channel
            if message.type == "note_on" and message.velocity > 0:
                open_notes[(message.channel, message.note)] = (tick, message.velocity)
            else:
                started = open_notes.pop((message.channel, message.note), None)
                if started is not None and tick > started[0]:
                    song.notes.append(MidiNote(started[0], tick - started[0], message.note, started[1], who))
                    had_notes = True
        if had_notes:
            note_tracks += 1
    song.notes.sort(key=lambda n: (n.start, n.voice, -n.pitch))
    # a type-1 file keeps its tempo changes in the conductor track, but any track may hold one
    song.tempo_map.sort(key=lambda change: change[0])
    return song


def read_midi_file(path: str | Path) -> MidiSong:
    """:func:`read_midi` on a file, with a sentence when it cannot be read."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise MidiError(f"cannot read {path}: {exc.strerror or exc}") from None
    return read_midi(data)


__all__ = ["GM_PROGRAMS", "MidiError", "MidiNote", "MidiSong", "TimedNote", "write_midi", "read_midi",
           "read_midi_file", "key_signature_name"]
