"""The piano roll's notes from a MIDI file: voices per track (type 1) or channel (type 0),
seconds that follow tempo changes, and one sentence for a file that is not MIDI."""

import io

import mido
import pytest

from studio.core.midi_notes import notes_in_midi


def _bytes(song: mido.MidiFile) -> bytes:
    out = io.BytesIO()
    song.save(file=out)
    return out.getvalue()


def test_type_1_tracks_are_voices_and_tempo_changes_count():
    song = mido.MidiFile(type=1, ticks_per_beat=480)
    conductor = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000, time=0),  # 120 bpm
                                mido.MetaMessage("set_tempo", tempo=1_000_000, time=960)])  # 60 bpm after 2 beats
    song.tracks.append(conductor)
    for voice, pitch in enumerate((72, 60)):
        song.tracks.append(mido.MidiTrack([
            mido.Message("note_on", note=pitch, velocity=80, channel=voice, time=0),
            mido.Message("note_off", note=pitch, velocity=0, channel=voice, time=960),  # 2 beats at 120 = 1 s
            mido.Message("note_on", note=pitch + 2, velocity=80, channel=voice, time=0),
            mido.Message("note_on", note=pitch + 2, velocity=0, channel=voice, time=480),  # 1 beat at 60 = 1 s
        ]))
    notes = notes_in_midi(_bytes(song))
    assert [(n.pitch, n.voice) for n in notes] == [(72, 0), (60, 1), (74, 0), (62, 1)]
    assert [n.start for n in notes] == pytest.approx([0.0, 0.0, 1.0, 1.0])
    assert [n.duration for n in notes] == pytest.approx([1.0, 1.0, 1.0, 1.0])


def test_type_0_channels_are_voices():
    track = mido.MidiTrack([mido.Message("note_on", note=64, velocity=90, channel=3, time=0),
                            mido.Message("note_on", note=67, velocity=90, channel=5, time=0),
                            mido.Message("note_off", note=64, channel=3, time=240),
                            mido.Message("note_off", note=67, channel=5, time=240)])
    song = mido.MidiFile(type=0, ticks_per_beat=480, tracks=[track])
    notes = notes_in_midi(_bytes(song))
    assert {(n.pitch, n.voice) for n in notes} == {(64, 3), (67, 5)}
    assert sorted(n.duration for n in notes) == pytest.approx([0.25, 0.5])


def test_not_midi_is_one_sentence():
    with pytest.raises(ValueError, match="not a readable MIDI file"):
        notes_in_midi(b"RIFF....WAVEfmt ")
