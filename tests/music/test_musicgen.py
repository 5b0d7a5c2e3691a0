"""MusicGen through the studio, on a tiny random-weight model built here (no hub, no mocks)."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.audio_files import wav_bytes
from studio.core.jobs import JobSpec, JobState
from studio.core.runner import drive
from studio.plugin_api import CancelToken, Cancelled, LoadOptions, Log, ParamError, Preview, Progress, Result, \
    validate_request
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
    monkeypatch.setattr("studio_musicgen.loaded.PREVIEW_BUDGET", float("inf"))  # a preview at every chance, whatever the load
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
