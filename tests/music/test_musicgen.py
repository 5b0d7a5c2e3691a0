"""MusicGen through the studio, on a tiny random-weight model built here (no hub, no mocks)."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.audio_files import wav_bytes
from studio.core.jobs import JobSpec, JobState
from studio.core.runner import drive
from studio.plugin_api import (
    Cancelled,
    CancelToken,
    LoadOptions,
    Log,
    ParamError,
    Preview,
    Progress,
    Result,
    validate_request,
)
from studio_musicgen import MusicGenPlugin


def request(**values):
    return validate_request(MusicGenPlugin().parameters(), values)


@pytest.fixture(scope="module")
def loaded(tiny_musicgen):
    return MusicGenPlugin().load(str(tiny_musicgen), LoadOptions(), lambda message: None)


def test_loads_through_the_plugin(loaded):
    assert loaded.sample_rate == 16000 and loaded.frame_rate == 50
    assert loaded.num_codebooks == 2 and loaded.window_frames == 253
    assert loaded.memory_bytes > 0


def test_audio_length_rate_and_ordered_streaming(loaded, monkeypatch):
    # a preview at every chance, whatever the load
    monkeypatch.setattr("studio_musicgen.loaded.PREVIEW_BUDGET", float("inf"))
    events = list(drive(loaded, request(prompt="a slow chorale", seconds=2, seed=1, preview_seconds=0.5),
                        CancelToken()))
    result = events[-1]
    assert isinstance(result, Result)
    artifact = result.artifacts[0]
    assert artifact.sample_rate == 16000
    hop = 16000 // 50
    assert artifact.audio.shape == (100 * hop, 1)  # 2 s = 100 frames
    previews = [e for e in events if isinstance(e, Preview)]
    assert len(previews) >= 3
    steps = [p.step for p in previews]
    assert steps == sorted(steps)
    # The chunks tile the clip: in order, no gap, no overlap.
    assert sum(len(p.audio) for p in previews) == len(artifact.audio)
    assert all(p.sample_rate == 16000 for p in previews)
    progress = [e.step for e in events if isinstance(e, Progress)]
    assert progress == sorted(progress) and progress[-1] == 100


def test_same_as_raw_generate(loaded):
    import torch

    result = list(drive(loaded, request(prompt="happy piano", seconds=1, seed=7, guidance=3.0, top_k=50),
                        CancelToken()))[-1]
    inputs = loaded.processor(text=["happy piano"], padding=True, return_tensors="pt")
    torch.manual_seed(7)
    raw = loaded.model.generate(**inputs, max_new_tokens=50 + 1, do_sample=True, guidance_scale=3.0, top_k=50)
    assert np.allclose(result.artifacts[0].audio[:, 0], raw[0, 0].numpy(), atol=1e-6)


def test_long_clip_is_extended_in_chunks(loaded):
    events = list(drive(loaded, request(prompt="music", seconds=9, seed=2, overlap_seconds=2,
                                        preview_seconds=1), CancelToken()))
    result = events[-1]
    assert result.artifacts[0].audio.shape[0] == 9 * 16000
    # Window 253 frames, overlap 100: 253 new frames, then 153 + 44 more.
    assert result.artifacts[0].parameters["chunks"] == 3
    assert any(isinstance(e, Log) and "chunks" in e.message for e in events)
    previews = [e for e in events if isinstance(e, Preview)]
    assert sum(len(p.audio) for p in previews) == 9 * 16000


def test_continuation_of_a_wav_clip(loaded, tmp_path):
    clip = tmp_path / "clip.wav"
    t = np.arange(16000) / 16000
    clip.write_bytes(wav_bytes(np.stack([np.sin(2 * np.pi * 220 * t)] * 2, axis=1) * 0.3, 16000))
    result = list(drive(loaded, request(prompt="", seconds=1, seed=3, continue_from=str(clip)),
                        CancelToken()))[-1]
    params = result.artifacts[0].parameters
    assert params["given_seconds"] == pytest.approx(1.0)
    assert result.artifacts[0].audio.shape[0] == 2 * 16000  # the given second + one new second


def test_continuation_streams_the_given_clip_then_tiles_the_rest(loaded, tmp_path, monkeypatch):
    monkeypatch.setattr("studio_musicgen.loaded.PREVIEW_BUDGET", float("inf"))
    clip = tmp_path / "clip.wav"
    t = np.arange(16000) / 16000
    clip.write_bytes(wav_bytes(np.sin(2 * np.pi * 220 * t)[:, None] * 0.3, 16000))
    events = list(drive(loaded, request(prompt="", seconds=2, seed=3, continue_from=str(clip), preview_seconds=0.5),
                        CancelToken()))
    previews = [e for e in events if isinstance(e, Preview)]
    audio = events[-1].artifacts[0].audio
    assert previews[0].step == 0 and len(previews[0].audio) == 16000  # the given second, first
    assert len(previews) >= 4 and sum(len(p.audio) for p in previews) == len(audio) == 3 * 16000


def test_preview_schedule():
    from studio_musicgen.loaded import FIRST_PREVIEW_WAIT, PLAYBACK_MARGIN, PREVIEW_BUDGET, PreviewSchedule

    every, rate = 50, 50.0
    schedule = PreviewSchedule(every, given=0, frame_rate=rate, started=0.0)
    # The first: half an interval whatever it costs, or up to two if generation is that fast.
    assert schedule.frames_due(24, FIRST_PREVIEW_WAIT) == 0
    assert schedule.frames_due(25, FIRST_PREVIEW_WAIT / 2) == 0
    assert schedule.frames_due(130, FIRST_PREVIEW_WAIT / 2) == 2 * every
    assert schedule.frames_due(25, FIRST_PREVIEW_WAIT) == 25
    schedule.record(25, 25, 0.005, 0.01)  # 0.5 s of audio out; a listener has it until 0.51 s
    assert schedule.frames_due(70, 0.02) == 0  # less than an interval new
    # Far over budget (0.005 s spent at 0.1 s), and the listener has plenty left: wait.
    assert schedule.frames_due(300, 0.1) == 0
    # Still over budget, but the listener is about to run out: keep it fed (two intervals at most).
    assert schedule.frames_due(300, 0.51 - PLAYBACK_MARGIN / 2) == 2 * every
    # Already ran dry (generation slower than playback): only the budget decides.
    assert schedule.frames_due(300, 0.6) == 0
    # Within budget: one interval when not behind, two when behind.
    later = (0.005 + schedule.per_frame * (2 * every + 8)) / PREVIEW_BUDGET
    assert schedule.frames_due(75, later) == every
    assert schedule.frames_due(300, later) == 2 * every
    assert PreviewSchedule(0, 0, rate, 0.0).frames_due(500, 100.0) == 0  # previews off


def test_bad_clip_is_a_param_error(loaded, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFFxxxxWAVEjunk")
    with pytest.raises(ParamError):
        list(drive(loaded, request(prompt="", seconds=1, continue_from=str(bad)), CancelToken()))


def test_cancel_within_one_step(loaded):
    cancel = CancelToken()
    progress = []
    with pytest.raises(Cancelled):
        for event in drive(loaded, request(prompt="x", seconds=4, seed=1, preview_seconds=0.2), cancel):
            if isinstance(event, Progress):
                progress.append(event.step)
                cancel.cancel()
    assert progress and progress[0] < 200


def test_missing_model_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        MusicGenPlugin().load(str(tmp_path / "nothing"), LoadOptions(), lambda m: None)
    with pytest.raises(OSError, match="allow downloads"):
        MusicGenPlugin().load("someone/not-here", LoadOptions(), lambda m: None)


def test_through_the_engine(music_context, tiny_musicgen):
    job = music_context.engine.submit(JobSpec("musicgen", str(tiny_musicgen),
                                              {"prompt": "a slow chorale", "seconds": 1, "seed": 5}))
    assert job.wait(120) and job.state is JobState.DONE, job.message
    assert job.saved[0].suffix == ".wav" and not job.saved[0].with_suffix(".mid").exists()


def test_contract_with_the_plugin_author_test_kit(tiny_musicgen):
    from studio.plugin_kit.testing import check_plugin

    report = check_plugin(MusicGenPlugin(), source=str(tiny_musicgen),
                          request={"prompt": "a slow chorale", "seconds": 0.5, "seed": 1})
    assert report.capabilities == [] and report.model_capabilities == ["ModelHints"]
    assert report.result is not None and report.result.artifacts[0].audio.shape[0] > 0
