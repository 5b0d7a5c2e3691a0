"""Weighted prompt embeddings the way AUTOMATIC1111 makes them, for CLIP-conditioned pipelines.

Imports torch; call only from a loaded model.  Supported: Stable Diffusion 1.x / 2.x (one CLIP
text encoder) and SDXL (two; the pooled embedding comes from the second).  Anything else gets
``None`` from :func:`encoder_kind` and the caller tells the user the weights were ignored.

The algorithm (A1111's, re-written here): the prompt is parsed into (text, weight) fragments
(:mod:`studio.plugin_kit.prompts.attention`); the fragments' tokens are laid into chunks of
``model_max_length - 2`` tokens (75 for real CLIP), a BREAK closing a chunk early; each chunk is
encoded on its own as ``[BOS] tokens [EOS] [PAD]...`` exactly as the pipeline itself would encode
a short prompt, the hidden states of every token are multiplied by its weight, and the whole is
rescaled so its mean is the unweighted mean.  The chunks are concatenated along the sequence axis
(the UNet's cross-attention takes any length); the negative prompt is padded with empty chunks to
the same length.  A prompt without syntax and within one chunk gives the pipeline's own embedding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from studio.plugin_kit.prompts import attention


@dataclass
class Chunks:
    ids: list[list[int]]
    weights: list[list[float]]


def encoder_kind(pipe: Any) -> str | None:
    """"sdxl", "clip" (SD 1.x/2.x) or None (this pipeline's text encoders are not handled)."""
    name = type(pipe).__name__
    tok, enc = getattr(pipe, "tokenizer", None), getattr(pipe, "text_encoder", None)
    tok2, enc2 = getattr(pipe, "tokenizer_2", None), getattr(pipe, "text_encoder_2", None)
    if "XL" in name and tok is not None and enc is not None and tok2 is not None and enc2 is not None:
        return "sdxl"
    if (name.startswith("StableDiffusion") and "XL" not in name and "3" not in name and tok is not None
            and type(enc).__name__ == "CLIPTextModel" and tok2 is None):
        return "clip"
    return None


def chunk(tokenizer: Any, fragments: list[attention.Fragment]) -> Chunks:
    """Token ids and weights per chunk (without BOS/EOS/padding)."""
    size = int(tokenizer.model_max_length) - 2
    ids: list[list[int]] = [[]]
    weights: list[list[float]] = [[]]
    for fragment in fragments:
        if fragment.is_break:
            ids.append([])
            weights.append([])
            continue
        tokens = tokenizer(fragment.text, add_special_tokens=False, truncation=False).input_ids
        for token in tokens:
            if len(ids[-1]) == size:
                ids.append([])
                weights.append([])
            ids[-1].append(int(token))
            weights[-1].append(fragment.weight)
    return Chunks(ids, weights)


def _framed(tokenizer: Any, ids: list[int], weights: list[float]) -> tuple[list[int], list[float]]:
    length = int(tokenizer.model_max_length)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    full = [tokenizer.bos_token_id, *ids, tokenizer.eos_token_id]
    full += [pad] * (length - len(full))
    return full, [1.0, *weights, *([1.0] * (length - 1 - len(weights)))]


def _encode_chunks(encoders: list[tuple[Any, Any]], chunks: list[Chunks], sdxl: bool,
                   count: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(1, count*L, D) weighted hidden states, and the pooled embedding of the first chunk (SDXL)."""
    pieces: list[torch.Tensor] = []
    pooled = None
    for index in range(count):
        hidden_parts = []
        weight_row: list[float] = []
        for (tokenizer, encoder), chunked in zip(encoders, chunks, strict=True):
            ids = chunked.ids[index] if index < len(chunked.ids) else []
            weights = chunked.weights[index] if index < len(chunked.weights) else []
            full, full_weights = _framed(tokenizer, ids, weights)
            tensor = torch.tensor([full], device=encoder.device)
            if sdxl:
                out = encoder(tensor, output_hidden_states=True)
                hidden_parts.append(out.hidden_states[-2])
                if index == 0 and encoder is encoders[-1][1]:
                    pooled = out[0]
            else:
                hidden_parts.append(encoder(tensor)[0])
            weight_row = full_weights
        hidden = torch.cat(hidden_parts, dim=-1)
        if any(w != 1.0 for w in weight_row):
            original_mean = hidden.mean()
            scale = torch.tensor(weight_row, dtype=hidden.dtype, device=hidden.device).view(1, -1, 1)
            hidden = hidden * scale
            hidden = hidden * (original_mean / hidden.mean())
        pieces.append(hidden)
    return torch.cat(pieces, dim=1), pooled


def encode(pipe: Any, prompt: str, negative: str) -> dict[str, Any]:
    """The pipeline keyword arguments (``prompt_embeds`` ...) for ``prompt`` and ``negative``."""
    kind = encoder_kind(pipe)
    if kind is None:
        raise ValueError(f"{type(pipe).__name__}: prompt weights are not supported for its text encoders")
    sdxl = kind == "sdxl"
    encoders = [(pipe.tokenizer, pipe.text_encoder)]
    if sdxl:
        encoders.append((pipe.tokenizer_2, pipe.text_encoder_2))
    parsed = [attention.parse(prompt), attention.parse(negative)]
    # SDXL's tokenizers share CLIP's vocabulary, so both split the text into the same chunks
    chunked = [[chunk(tokenizer, fragments) for tokenizer, _ in encoders] for fragments in parsed]
    count = max(len(chunked[0][0].ids), len(chunked[1][0].ids))
    with torch.no_grad():
        positive, pooled = _encode_chunks(encoders, chunked[0], sdxl, count)
        negative_embeds, negative_pooled = _encode_chunks(encoders, chunked[1], sdxl, count)
    dtype = encoders[-1][1].dtype
    out: dict[str, Any] = {"prompt_embeds": positive.to(dtype), "negative_prompt_embeds": negative_embeds.to(dtype)}
    if sdxl:
        out["pooled_prompt_embeds"] = pooled
        out["negative_pooled_prompt_embeds"] = negative_pooled
    return out


def token_chunks(pipe: Any, prompt: str) -> int:
    """How many chunks ``prompt`` fills (1 = within the encoder's window)."""
    return len(chunk(pipe.tokenizer, attention.parse(prompt)).ids)


__all__ = ["chunk", "encode", "encoder_kind", "token_chunks"]
