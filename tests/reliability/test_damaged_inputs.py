"""Damaged files a user hands in get a real reason: a cut WAV, a truncated .safetensors UNet."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from studio.core.resume import remaining_request
from studio.plugin_api import LoadOptions, ParamError


def _wav(path, frames=800):
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes((np.sin(np.arange(frames)) * 9000).astype("<i2").tobytes())


@pytest.mark.parametrize("cut", [12, 30, 44])
def test_a_cut_wav_says_why_not_empty_parentheses(tmp_path, cut):
    from studio_musicgen.audio_io import read_wav

    clip = tmp_path / "clip.wav"
    _wav(clip)
    clip.write_bytes(clip.read_bytes()[:cut])
    with pytest.raises(ParamError) as caught:
        read_wav(clip)
    message = str(caught.value)
    assert "()" not in message and "clip.wav" in message
    if "(" in message:
        assert message.split("(", 1)[1].strip(")").strip()  # a reason inside the parentheses
    else:
        assert "has no audio" in message  # a header and nothing after it


def test_a_wav_cut_mid_frame_still_reads(tmp_path):
    from studio_musicgen.audio_io import read_wav

    clip = tmp_path / "clip.wav"
    _wav(clip, frames=100)
    clip.write_bytes(clip.read_bytes()[:-1])  # half a sample short
    audio, rate = read_wav(clip)
    assert rate == 8000 and audio.shape == (99, 1)


def test_a_truncated_safetensors_unet_is_called_truncated_not_pickle(tmp_path):
    from studio_diffusers import DiffusersPlugin
    from tests.fixtures.tiny_diffusers import build_sd

    folder = build_sd(tmp_path / "sd")
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(Exception) as caught:
        DiffusersPlugin().load(str(folder), LoadOptions(), lambda message: None)
    message = str(caught.value)
    assert "truncated or corrupt" in message and "unet/diffusion_pytorch_model.safetensors" in message
    assert "pickle" not in message


@pytest.mark.parametrize("request_, saved, expected", [
    ({"prompt": "p", "seed": -1, "batch_count": 4}, [7, 8], {"prompt": "p", "seed": 9, "batch_count": 2}),
    ({"prompt": "p", "seed": 5, "batch_count": 4}, [], {"prompt": "p", "seed": 5, "batch_count": 4}),
    ({"prompt": "p", "seed": 5, "batch_count": 2}, [5, 6], None),
    ({"prompt": "p", "seed": 5}, [5], None),
    ({"prompt": "p", "seed": 1, "batch_count": 3}, [2**32 - 1], {"prompt": "p", "seed": 0, "batch_count": 2}),
])
def test_run_again_asks_only_for_what_is_missing(request_, saved, expected):
    assert remaining_request(request_, saved) == expected
