"""MIDI through mido (studio.plugin_kit.midi): round trips of notes, tempo, key, programs, names."""

from __future__ import annotations

import io

import mido
import pytest

from studio.plugin_kit.midi import (
    GM_PROGRAMS,
    MidiError,
    MidiNote,
    MidiSong,
    key_signature_name,
    read_midi,
    read_midi_file,
    write_midi,
)

NOTES = [MidiNote(0, 480, 60, 90, 0), MidiNote(480, 240, 64, 70, 1), MidiNote(240, 960, 40, 80, 3),
         MidiNote(960, 120, 72, 127, 0), MidiNote(960, 120, 76, 1, 1)]


def _key(n: MidiNote):
    return (n.start, n.duration, n.pitch, n.velocity)


def test_notes_tempo_and_voices_round_trip():
    song = read_midi(write_midi(NOTES, 96.0, programs=[19, 19, 19]))
    assert abs(song.tempo_bpm - 96.0) < 0.01 and song.ticks_per_quarter == 480
    assert sorted(map(_key, song.notes)) == sorted(map(_key, NOTES))
    # voices 0, 1, 3 are written as three tracks, read back as voices 0, 1, 2 in order
    assert {(n.pitch, n.voice) for n in song.notes} == {(60, 0), (72, 0), (64, 1), (76, 1), (40, 2)}
    assert song.time_signature == (4, 4)


@pytest.mark.parametrize("tonic", range(12))
@pytest.mark.parametrize("scale", ["major", "minor"])
def test_every_key_signature_round_trips(tonic, scale):
    song = read_midi(write_midi(NOTES[:1], 120.0, key=(tonic, scale)))
    assert song.key == (tonic, scale)


def test_key_signature_names_take_the_smaller_spelling():
    assert key_signature_name(6, "major") == "F#" and key_signature_name(1, "major") == "Db"
    assert key_signature_name(2, "minor") == "Dm" and key_signature_name(10, "minor") == "Bbm"


def test_programs_names_title_and_channels_as_mido_reads_them():
    data = write_midi(NOTES, 120.0, programs=[GM_PROGRAMS["strings"], GM_PROGRAMS["choir"], 0],
                      names=["Soprano", "Alto", "Bass"], title="a chorale in D minor — orgue", key=(2, "minor"))
    song = mido.MidiFile(file=io.BytesIO(data), charset="utf-8")
    assert song.type == 1 and len(song.tracks) == 4
    conductor = {m.type: m for m in song.tracks[0]}
    assert conductor["track_name"].name == "a chorale in D minor — orgue"
    assert conductor["key_signature"].key == "Dm" and conductor["set_tempo"].tempo == 500000
    programs = [next(m.program for m in t if m.type == "program_change") for t in song.tracks[1:]]
    channels = [next(m.channel for m in t if m.type == "program_change") for t in song.tracks[1:]]
    names = [next(m.name for m in t if m.type == "track_name") for t in song.tracks[1:]]
    assert programs == [48, 52, 0] and names == ["Soprano", "Alto", "Bass"] and channels == [0, 1, 3]
    assert read_midi(data).title == "a chorale in D minor — orgue"


def test_a_long_title_is_cut_on_a_character_boundary():
    data = write_midi(NOTES[:1], 120.0, title="é" * 100)  # 200 bytes of UTF-8
    assert read_midi(data).title == "é" * 60


def test_voice_nine_keeps_off_the_drum_channel():
    data = write_midi([MidiNote(0, 10, 60, 80, 9)], 120.0)
    song = mido.MidiFile(file=io.BytesIO(data))
    assert {m.channel for t in song.tracks for m in t if not m.is_meta} == {10}


def test_type0_file_with_running_status_reads_channels_as_voices():
    # Written by hand: one track, running status, note-on velocity 0 as note-off, two channels.
    track = bytes([0x00, 0xFF, 0x51, 0x03, 0x07, 0xA1, 0x20,  # tempo 500000 us = 120 bpm
                   0x00, 0x90, 60, 100,  # ch 0 note on
                   0x00, 64, 90,  # running status: another note on
                   0x00, 0x92, 48, 70,  # ch 2 note on
                   0x83, 0x60, 0x90, 60, 0,  # 480 ticks later: ch 0 note 60 off (vel 0)
                   0x00, 64, 0,  # running status off
                   0x00, 0x82, 48, 0,  # ch 2 note off
                   0x00, 0xFF, 0x2F, 0x00])
    data = b"MThd" + (6).to_bytes(4, "big") + bytes([0, 0, 0, 1, 0x01, 0xE0]) + b"MTrk" + \
        len(track).to_bytes(4, "big") + track
    song = read_midi(data)
    assert song.tempo_bpm == pytest.approx(120.0)
    assert sorted((n.pitch, n.start, n.duration, n.velocity, n.voice) for n in song.notes) == \
        [(48, 0, 480, 70, 2), (60, 0, 480, 100, 0), (64, 0, 480, 90, 0)]
    timed = {n.pitch: n for n in song.timed_notes()}
    assert timed[60].duration == pytest.approx(0.5) and timed[60].start == 0.0


@pytest.mark.parametrize("data, words", [
    (b"not a midi file at all", "not a MIDI file"),
    (b"MThd" + (6).to_bytes(4, "big") + bytes([0, 1, 0, 1, 0xE7, 0x28]), "SMPTE"),
    (b"MThd" + (6).to_bytes(4, "big") + bytes([0, 1, 0, 1, 0x01, 0xE0]) + b"MTrk" + (50).to_bytes(4, "big")
     + bytes([0x00, 0x90]), "damaged"),
])
def test_garbage_is_a_sentence(data, words):
    with pytest.raises(MidiError, match=words):
        read_midi(data)


def test_missing_file_is_a_sentence(tmp_path):
    with pytest.raises(MidiError, match="cannot read"):
        read_midi_file(tmp_path / "missing.mid")


def test_the_chorale_plugin_writes_through_the_kit():
    import numpy as np

    from studio_music.clip import grid_to_midi, midi_to_clip
    from studio_music.representation import NoteEvent, notes_to_tokens

    grid = notes_to_tokens([NoteEvent(0, 4, 72, 0), NoteEvent(0, 4, 67, 1), NoteEvent(0, 4, 64, 2),
                            NoteEvent(0, 8, 48, 3)], 8)
    data = grid_to_midi(grid, 80.0, "piano", title="t", key=(0, "major"))
    back, tempo, key = midi_to_clip(data)
    assert np.array_equal(back, grid) and tempo == pytest.approx(80.0) and key == (0, "major")
    assert {m.program for t in mido.MidiFile(file=io.BytesIO(data)).tracks for m in t
            if m.type == "program_change"} == {GM_PROGRAMS["piano"]}


def test_timed_notes_follow_every_tempo_change():
    """A piece that halves its tempo at bar 2 plays its later notes at the slower tempo."""
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    conductor = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000, time=0),  # 120 BPM
                                mido.MetaMessage("set_tempo", tempo=1_000_000, time=960)])  # 60 BPM at beat 2
    notes = mido.MidiTrack([mido.Message("note_on", note=60, velocity=90, time=0),
                            mido.Message("note_off", note=60, velocity=0, time=480),
                            mido.Message("note_on", note=62, velocity=90, time=480),  # tick 960
                            mido.Message("note_off", note=62, velocity=0, time=480)])
    midi.tracks.extend([conductor, notes])
    buffer = io.BytesIO()
    midi.save(file=buffer)
    song = read_midi(buffer.getvalue())
    assert song.tempo_bpm == pytest.approx(120.0)
    assert song.tempo_map == [(0, pytest.approx(120.0)), (960, pytest.approx(60.0))]
    timed = {n.pitch: n for n in song.timed_notes()}
    assert timed[60].start == pytest.approx(0.0) and timed[60].duration == pytest.approx(0.5)
    assert timed[62].start == pytest.approx(1.0) and timed[62].duration == pytest.approx(1.0)
    # a note that spans the change: half a beat at 120 then half a beat at 60
    assert song.seconds_at(1200) - song.seconds_at(720) == pytest.approx(0.25 + 0.5)


def test_timed_notes_before_the_first_tempo_use_the_midi_default():
    song = MidiSong(ticks_per_quarter=480, tempo_bpm=60.0, tempo_map=[(480, 60.0)])
    assert song.seconds_at(480) == pytest.approx(0.5)  # 120 BPM until the file sets one
    assert song.seconds_at(960) == pytest.approx(1.5)
