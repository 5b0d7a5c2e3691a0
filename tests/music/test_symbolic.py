"""The embedded symbolic path: prompt -> model -> MIDI -> synth -> WAV."""

from __future__ import annotations

import io
import json
import wave

import numpy as np
import pytest

from studio.core.audio_files import read_wav_info
from studio.core.jobs import JobSpec, JobState
from studio.core.runner import drive
from studio.plugin_api import Cancelled, CancelToken, ParamError, Preview, Progress, Result, validate_request
from studio.plugin_kit.midi import MidiNote, read_midi, write_midi
from studio_music import ChoralePlugin
from studio_music.clip import estimate_key, grid_to_midi, midi_to_grid
from studio_music.prompt import parse_prompt
from studio_music.representation import (
    HOLD,
    REST,
    NoteEvent,
    notes_to_tokens,
    pitch_class,
    scale_pitch_classes,
    token_for_pitch,
    tokens_to_notes,
)
from studio_music.synth import INSTRUMENTS, PEAK, Synth, SynthNote


def request(**values):
    return validate_request(ChoralePlugin().parameters(), values)


# -- representation, prompt, MIDI ------------------------------------------------------------


def test_grid_round_trip():
    notes = [NoteEvent(0, 4, 60, 0), NoteEvent(4, 2, 62, 0), NoteEvent(0, 8, 48, 3), NoteEvent(2, 3, 55, 2)]
    grid = notes_to_tokens(notes, 8)
    assert grid[0, 0] == token_for_pitch(60) and grid[1, 0] == HOLD and grid[0, 2] == REST
    back = {(n.start, n.duration, n.pitch, n.voice) for n in tokens_to_notes(grid)}
    assert back == {(n.start, n.duration, n.pitch, n.voice) for n in notes}


@pytest.mark.parametrize("text, expected", [
    ("a slow chorale in D minor, organ", {"key": "D", "scale": "minor", "tempo": 60.0, "instrument": "organ"}),
    ("Fast piece in F# major on piano", {"key": "F#", "scale": "major", "tempo": 132.0, "instrument": "piano"}),
    ("in Bb, strings, 90 bpm", {"key": "Bb", "tempo": 90.0, "instrument": "strings"}),
    ("E-flat major for choir, 20 seconds", {"key": "Eb", "scale": "major", "instrument": "choir", "seconds": 20.0}),
    ("in a slow tempo", {"tempo": 60.0}),
    ("something", {}),
])
def test_prompt_parsing(text, expected):
    assert parse_prompt(text).as_values() == expected


def test_midi_round_trip():
    notes = [MidiNote(0, 480, 60, 90, 0), MidiNote(480, 240, 64, 70, 1), MidiNote(240, 960, 40, 80, 3)]
    song = read_midi(write_midi(notes, 96.0, programs=[19, 19, 19]))
    assert abs(song.tempo_bpm - 96.0) < 0.01
    got = sorted((n.start, n.duration, n.pitch, n.velocity) for n in song.notes)
    assert got == sorted((n.start, n.duration, n.pitch, n.velocity) for n in notes)
    assert sorted({n.voice for n in song.notes}) == [0, 1, 2]  # tracks in order


def test_midi_rejects_garbage():
    from studio.plugin_kit.midi import MidiError

    with pytest.raises(MidiError):
        read_midi(b"not a midi file at all")


def test_key_estimate():
    # A D-minor scale with the tonic weighted.
    pitches = [62, 64, 65, 67, 69, 70, 73, 74, 62, 65, 69, 62]
    notes = [NoteEvent(i * 4, 4, p, 0) for i, p in enumerate(pitches)]
    assert estimate_key(notes) == (2, "minor")


# -- synth -----------------------------------------------------------------------------------


@pytest.mark.parametrize("instrument", INSTRUMENTS)
def test_synth_peak_and_no_clicks(instrument):
    sr = 32000
    # Dense four-voice writing, loud: the limiter must keep the peak under -1 dBFS.
    notes = [SynthNote(i * 0.125, 0.25 + (i % 3) * 0.125, 40 + (i * 7) % 36, i % 4, 1.0) for i in range(64)]
    synth = Synth(instrument, sr)
    audio = synth.render(notes)
    assert audio.dtype == np.float32 and audio.shape[1] == 2
    assert np.abs(audio).max() <= PEAK + 1e-6  # -1 dBFS
    # Starts and ends in silence.
    assert np.abs(audio[0]).max() < 1e-6 and np.abs(audio[-1]).max() < 1e-4
    # One isolated low note: the jump at its onset and release is tiny (no click), although
    # the steady part moves more per sample.
    single = Synth(instrument, sr).render([SynthNote(0.1, 0.5, 45, 0, 1.0)])
    onset, end = int(0.1 * sr), int(0.6 * sr)
    jumps = np.abs(np.diff(single[:, 0]))
    assert jumps[onset - 5:onset + 20].max() < 0.01
    assert jumps[onset:].max() < 0.1
    tail = jumps[end + int(synth.release * sr) - 5:]
    assert tail.max() < 0.01 if len(tail) else True


def test_synth_range_rendering_is_seamless():
    notes = [SynthNote(i * 0.2, 0.3, 50 + i, i % 4) for i in range(12)]
    synth = Synth("strings", 16000)
    whole = synth.render(notes)
    pieces = np.concatenate([synth.render_range(notes, a, min(a + 1234, len(whole)))
                             for a in range(0, len(whole), 1234)])
    assert np.array_equal(whole, pieces)


def test_voices_are_spread_in_stereo():
    synth = Synth("organ", 16000)
    soprano = synth.render([SynthNote(0, 0.5, 72, 0)])
    bass = synth.render([SynthNote(0, 0.5, 48, 3)])
    assert np.abs(soprano[:, 0]).sum() > 1.5 * np.abs(soprano[:, 1]).sum()
    assert np.abs(bass[:, 1]).sum() > 1.5 * np.abs(bass[:, 0]).sum()


# -- the model -------------------------------------------------------------------------------


def run_all(model, req, cancel=None):
    return list(drive(model, req, cancel or CancelToken()))


def test_generate_streams_previews_that_make_the_clip(chorale_model):
    events = run_all(chorale_model, request(prompt="a chorale in G major", seconds=6, seed=3))
    result = events[-1]
    assert isinstance(result, Result)
    artifact = result.artifacts[0]
    previews = [e for e in events if isinstance(e, Preview)]
    assert len(previews) >= 3  # first after one beat, then per bar
    assert np.array_equal(np.concatenate([p.audio for p in previews]), artifact.audio)
    assert artifact.sample_rate == 32000 and artifact.audio.shape[1] == 2
    assert np.abs(artifact.audio).max() <= PEAK + 1e-6
    assert artifact.midi.startswith(b"MThd")
    assert artifact.parameters["key"] == "G" and artifact.parameters["scale"] == "major"
    assert 6.0 <= len(artifact.audio) / 32000 <= 6.8  # 6 s + release tail
    # Same seed, same music.
    again = run_all(chorale_model, request(prompt="a chorale in G major", seconds=6, seed=3))[-1]
    assert np.array_equal(again.info["tokens"], result.info["tokens"])


@pytest.mark.parametrize("key, mode", [("D", "minor"), ("F#", "major"), ("Bb", "major")])
def test_key_conditioning_is_honoured(chorale_model, key, mode):
    result = run_all(chorale_model, request(prompt=f"chorale in {key} {mode}", seconds=16, seed=11, tempo=90))[-1]
    notes = tokens_to_notes(result.info["tokens"])
    scale = scale_pitch_classes(pitch_class(key), mode)
    assert sum(n.pitch % 12 in scale for n in notes) / len(notes) >= 0.9
    # ... and not merely "diatonic to something": a key a tritone away fits badly.
    far = scale_pitch_classes((pitch_class(key) + 6) % 12, mode)
    assert sum(n.pitch % 12 in far for n in notes) / len(notes) <= 0.7
    assert read_midi(result.artifacts[0].midi).key == (pitch_class(key), mode)


def test_explicit_controls_beat_the_prompt(chorale_model):
    result = run_all(chorale_model, request(prompt="in D minor, organ", key="E", scale="major",
                                            instrument="piano", seconds=2, seed=1))[-1]
    params = result.artifacts[0].parameters
    assert (params["key"], params["scale"], params["instrument"]) == ("E", "major", "piano")


def test_continuation_keeps_the_given_bars(chorale_model, tmp_path):
    first = run_all(chorale_model, request(prompt="in A minor", seconds=4, seed=5, tempo=120))[-1]
    given = tmp_path / "given.mid"
    given.write_bytes(first.artifacts[0].midi)
    prefix, tempo = midi_to_grid(given.read_bytes())
    assert tempo == pytest.approx(120, abs=0.01)
    result = run_all(chorale_model, request(prompt="", seconds=4, seed=6, continue_from=str(given)))[-1]
    grid = result.info["tokens"]
    assert len(grid) > len(prefix)
    assert np.array_equal(grid[:len(prefix)], prefix)
    params = result.artifacts[0].parameters
    assert params["prefix_steps"] == len(prefix)
    assert params["key"] == "A" and params["scale"] == "minor"  # estimated from the given bars
    assert params["tempo"] == pytest.approx(120, abs=0.01)  # taken from the file


def test_unreadable_continuation_is_a_param_error(chorale_model, tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"nope")
    with pytest.raises(ParamError, match="Cannot continue"):
        run_all(chorale_model, request(prompt="x", continue_from=str(bad)))


def test_cancel_stops_within_a_step(chorale_model):
    cancel = CancelToken()
    seen = []
    with pytest.raises(Cancelled):
        for event in drive(chorale_model, request(prompt="x", seconds=60, seed=2), cancel):
            seen.append(event)
            if isinstance(event, Progress):
                cancel.cancel()
    assert sum(isinstance(e, Progress) for e in seen) == 1


def test_interrupt_keeps_a_partial_clip(chorale_model):
    cancel = CancelToken()
    events = []
    for event in drive(chorale_model, request(prompt="x", seconds=60, seed=2), cancel):
        events.append(event)
        if isinstance(event, Progress) and event.step > 16:
            cancel.interrupt()
    result = events[-1]
    assert isinstance(result, Result) and result.interrupted
    assert 0 < len(result.info["tokens"]) < 60 * 72 / 60 * 4


def test_bad_values_are_refused():
    with pytest.raises(ParamError):
        request(seconds=0)
    with pytest.raises(ParamError):
        request(seconds=1000)
    with pytest.raises(ParamError):
        request(key="H")


def test_engine_saves_wav_and_midi_with_metadata(music_context):
    job = music_context.engine.submit(JobSpec("chorale", ChoralePlugin().models()[0].source,
                                              {"prompt": "a slow chorale in D minor, organ", "seconds": 3,
                                               "seed": 42}))
    assert job.wait(60) and job.state is JobState.DONE, job.message
    wav = job.saved[0]
    assert wav.suffix == ".wav" and wav.with_suffix(".mid").exists()
    info = read_wav_info(wav.read_bytes())
    params = json.loads(info["ICMT"])
    assert info["INAM"] == "a slow chorale in D minor, organ"
    assert params["seed"] == 42 and params["model"] == "chorale" and params["key"] == "D"
    with wave.open(io.BytesIO(wav.read_bytes())) as reader:
        assert reader.getnchannels() == 2 and reader.getframerate() == 32000
    assert read_midi(wav.with_suffix(".mid").read_bytes()).notes
    assert grid_to_midi(np.zeros((0, 4), dtype=np.int64), 90).startswith(b"MThd")


# -- capabilities and the plugin-author test kit ---------------------------------------------


def test_chorale_contract_with_the_plugin_author_test_kit():
    from studio.plugin_kit.testing import check_plugin
    from studio_music import EMBEDDED

    report = check_plugin(ChoralePlugin(), source=str(EMBEDDED),
                          request={"prompt": "a slow chorale in D minor, organ", "seconds": 1.0, "seed": 3})
    assert report.capabilities == ["UnderstandsPrompts", "ContinuesMidi"]
    assert report.model_capabilities == ["ModelHints"]
    assert report.result is not None and report.result.artifacts[0].midi.startswith(b"MThd")


def test_chorale_understands_prompts_and_continues_midi():
    from studio.plugin_api import ContinuesMidi, UnderstandsPrompts

    plugin = ChoralePlugin()
    assert isinstance(plugin, UnderstandsPrompts) and isinstance(plugin, ContinuesMidi)
    values = plugin.understand_prompt("a slow chorale in D minor, organ, 12 seconds")
    assert values == {"key": "D", "scale": "minor", "tempo": 60.0, "instrument": "organ", "seconds": 12.0}
    assert plugin.describe_understood(values) == "key D minor, tempo 60, organ, 12 s"
    assert plugin.describe_understood({}) == "nothing (defaults used)"
    by_name = {p.name: p for p in plugin.parameters()}
    assert plugin.midi_parameter in by_name and "mode" not in by_name and "scale" in by_name


def test_scale_is_a_parameter_and_mode_is_the_reserved_request_key():
    clean = validate_request(ChoralePlugin().parameters(), {"scale": "minor"})
    assert clean["scale"] == "minor" and "mode" not in clean
    with pytest.raises(ParamError, match="must be one of"):
        validate_request(ChoralePlugin().parameters(), {"scale": "dorian"})
