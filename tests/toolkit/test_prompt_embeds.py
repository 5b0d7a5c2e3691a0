"""Weighted, chunked prompt embeddings on tiny SD 1.5 and SDXL pipelines (real architectures)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from studio.plugin_kit.diffusion import prompt_embeds
from tests.fixtures import tiny_diffusers


@pytest.fixture(scope="module")
def sd(tmp_path_factory):
    from diffusers import DiffusionPipeline

    return DiffusionPipeline.from_pretrained(tiny_diffusers.build_sd(tmp_path_factory.mktemp("sd") / "sd"))


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory):
    from diffusers import DiffusionPipeline

    return DiffusionPipeline.from_pretrained(tiny_diffusers.build_sdxl(tmp_path_factory.mktemp("xl") / "xl"))


def test_plain_prompt_matches_the_pipelines_own_encoding(sd, sdxl):
    ours = prompt_embeds.encode(sd, "a red circle", "blurry")
    theirs, negative = sd.encode_prompt("a red circle", "cpu", 1, True, "blurry")
    assert torch.equal(ours["prompt_embeds"], theirs) and torch.equal(ours["negative_prompt_embeds"], negative)
    ours = prompt_embeds.encode(sdxl, "a red circle", "blurry")
    pe, npe, pooled, npooled = sdxl.encode_prompt("a red circle", device="cpu", negative_prompt="blurry")
    assert torch.equal(ours["prompt_embeds"], pe) and torch.equal(ours["negative_prompt_embeds"], npe)
    assert torch.equal(ours["pooled_prompt_embeds"], pooled)
    assert torch.equal(ours["negative_pooled_prompt_embeds"], npooled)


@pytest.mark.parametrize("which", ["sd", "sdxl"])
def test_weight_changes_embeddings_and_weight_one_does_not(which, request):
    pipe = request.getfixturevalue(which)
    plain = prompt_embeds.encode(pipe, "a red circle", "")["prompt_embeds"]
    heavy = prompt_embeds.encode(pipe, "a (red:1.5) circle", "")["prompt_embeds"]
    one = prompt_embeds.encode(pipe, "a (red:1.0) circle", "")["prompt_embeds"]
    assert torch.equal(one, plain)
    assert heavy.shape == plain.shape and not torch.allclose(heavy, plain)
    # A1111 keeps the overall mean: the weighting moves tokens, not the whole tensor
    assert float(heavy.mean()) == pytest.approx(float(plain.mean()), rel=1e-4, abs=1e-6)


def test_long_prompts_chunk_and_break_starts_a_new_chunk(sd, sdxl):
    long = " ".join(["red"] * 40)  # 120 characters = 120 tokens on the tiny character tokenizer
    out = prompt_embeds.encode(sd, long, "")
    assert out["prompt_embeds"].shape[1] == 2 * 77
    assert out["negative_prompt_embeds"].shape == out["prompt_embeds"].shape  # negative padded to match
    assert prompt_embeds.token_chunks(sd, "a cat BREAK a dog") == 2
    assert prompt_embeds.encode(sdxl, "a cat BREAK a dog", "")["prompt_embeds"].shape[1] == 2 * 77
    # the tokens past the first window reach the conditioning (the pipeline alone would cut them)
    other = prompt_embeds.encode(sd, long[:-3] + "dog", "")["prompt_embeds"]
    assert torch.equal(other[:, :77], out["prompt_embeds"][:, :77])
    assert not torch.equal(other[:, 77:], out["prompt_embeds"][:, 77:])


def test_only_clip_families(sd):
    assert prompt_embeds.encoder_kind(sd) == "clip"

    class Other:
        tokenizer = sd.tokenizer
        text_encoder = sd.text_encoder

    assert prompt_embeds.encoder_kind(Other()) is None
