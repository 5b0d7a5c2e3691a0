"""The UNet as a function of (latents, timesteps) for a batch of text conditions (torch).

SD 1.x/2.x need only ``encoder_hidden_states``; SDXL also needs the pooled text embedding and
the six "time ids" (original size, crop, target size).  An optional h-space shift is added to
the UNet's bottleneck (``mid_block`` output) per condition: that is how discovered h-space
directions are applied (Asyrp / "diffusion models already have a semantic latent space").
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch


class Conditions:
    """Text conditions, one per batch row, embedded once and reused for every step.  Rows are
    prompts (``add``) or a prompt's embedding moved along a text-embedding direction
    (``add_moved``); equal prompts share a row."""

    def __init__(self, pipe: Any, size: tuple[int, int], xl: bool, texts: Sequence[str] = (),
                 cache: dict | None = None):
        self.pipe, self.size, self.xl = pipe, size, xl
        self.cache = cache if cache is not None else {}  # text -> (hidden, pooled), shared across calls
        self.labels: list[str] = []
        self._hidden: list[torch.Tensor] = []
        self._pooled: list[torch.Tensor] = []
        self._cat: tuple[torch.Tensor, dict[str, torch.Tensor] | None] | None = None
        for text in texts:
            self.add(text)

    def __len__(self) -> int:
        return len(self.labels)

    def add(self, text: str) -> int:
        if text in self.labels:
            return self.labels.index(text)
        if text not in self.cache:
            device = self.pipe._execution_device
            with torch.no_grad():
                if self.xl:
                    pe, _, ppe, _ = self.pipe.encode_prompt(prompt=text, device=device, num_images_per_prompt=1,
                                                            do_classifier_free_guidance=False)
                else:
                    (pe, _), ppe = self.pipe.encode_prompt(text, device, 1, False), None
            if len(self.cache) > 256:
                self.cache.clear()
            self.cache[text] = (pe, ppe)
        pe, ppe = self.cache[text]
        if self.xl:
            self._pooled.append(ppe)
        return self._append(text, pe)

    def add_moved(self, base: int, delta: torch.Tensor, label: str) -> int:
        """Row ``base``'s token embeddings plus ``delta`` (pooled embedding unchanged)."""
        if self.xl:
            self._pooled.append(self._pooled[base])
        moved = self._hidden[base] + delta.reshape(self._hidden[base].shape).to(self._hidden[base])
        return self._append(label, moved)

    def add_embedding(self, label: str, hidden: torch.Tensor, pooled: torch.Tensor | None = None) -> int:
        """A row from ready-made embeddings (e.g. a prompt's embedding moved along a direction)."""
        if self.xl:
            if pooled is None:
                raise ValueError("SDXL rows need the pooled text embedding too")
            self._pooled.append(pooled)
        return self._append(label, hidden)

    def hidden(self, row: int) -> torch.Tensor:
        return self._hidden[row]

    def pooled(self, row: int) -> torch.Tensor | None:
        return self._pooled[row] if self.xl else None

    def _append(self, label: str, hidden: torch.Tensor) -> int:
        self.labels.append(label)
        self._hidden.append(hidden)
        self._cat = None
        return len(self.labels) - 1

    def rows(self, idx: Sequence[int]) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
        if self._cat is None:
            added = None
            if self.xl:
                w, h = self.size
                ids = torch.tensor([[h, w, 0, 0, h, w]], dtype=self._hidden[0].dtype, device=self._hidden[0].device)
                added = {"text_embeds": torch.cat(self._pooled), "time_ids": ids.repeat(len(self.labels), 1)}
            self._cat = (torch.cat(self._hidden), added)
        hidden, added = self._cat
        pick = torch.tensor(list(idx), device=hidden.device)
        return hidden[pick], None if added is None else {k: v[pick] for k, v in added.items()}


class Denoiser:
    """``model(x, t)``: x [1,C,H,W] against every condition (one batch), or x [N,...] with
    timesteps [N] against condition ``only`` (the inversion)."""

    def __init__(self, unet: Any, conds: Conditions, shifts: torch.Tensor | None = None, only: int | None = None):
        self.unet, self.conds, self.shifts, self.only = unet, conds, shifts, only

    def __call__(self, x: torch.Tensor, t: torch.Tensor, reference: torch.Tensor | None = None,
                 keep: torch.Tensor | None = None) -> torch.Tensor:
        """With ``reference`` (the unedited latent at this step), every row attends with its
        self-attention maps where ``keep`` is 1 (:func:`shared_self_attention`): the edit keeps its layout."""
        if reference is not None and self.only is None:
            rows = [0, *range(len(self.conds))]
            hidden, added = self.conds.rows(rows)
            xs = torch.cat([reference.to(x), x.expand(len(rows) - 1, *x.shape[1:])])
            shift = None if self.shifts is None else self.shifts[rows]
            with mid_shift(self.unet, shift), shared_self_attention(self.unet, keep):
                out = self.unet(xs.to(self.unet.dtype), t.expand(len(rows)), encoder_hidden_states=hidden,
                                added_cond_kwargs=added).sample
            return out[1:].float()
        dtype = self.unet.dtype
        if self.only is not None:
            rows = [self.only] * x.shape[0]
            ts = t
        else:
            rows = list(range(len(self.conds)))
            x = x.expand(len(rows), *x.shape[1:])
            ts = t.expand(len(rows))
        hidden, added = self.conds.rows(rows)
        shift = None if self.shifts is None else self.shifts[rows]
        with mid_shift(self.unet, shift):
            out = self.unet(x.to(dtype), ts, encoder_hidden_states=hidden, added_cond_kwargs=added).sample
        return out.float()


@contextmanager
def mid_shift(unet: Any, shift: torch.Tensor | None) -> Iterator[None]:
    """Add ``shift`` ([B, C, h, w], or broadcastable) to the UNet's bottleneck output."""
    if shift is None or not bool(shift.abs().sum() > 0):
        yield
        return

    def hook(module, args, output):
        return output + shift.to(output.dtype)

    handle = unet.mid_block.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def mid_capture(unet: Any, store: list) -> Iterator[None]:
    """Record the UNet's bottleneck output of every call (for h-space PCA)."""
    def hook(module, args, output):
        store.append(output.detach().float().cpu())

    handle = unet.mid_block.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def cross_attention_capture(unet: Any, store: list) -> Iterator[None]:
    """Record every cross-attention layer's attention probabilities, averaged over heads, as
    [B, pixels, tokens] -- recomputed from the layer's own projections in a pre-hook, so it works
    whatever attention processor the pipeline uses."""
    def hook(module, args, kwargs):
        hs = args[0] if args else kwargs.get("hidden_states")
        ehs = kwargs.get("encoder_hidden_states")
        if ehs is None and len(args) > 1:
            ehs = args[1]
        if ehs is None or hs is None or hs.ndim != 3:
            return None
        if getattr(module, "norm_cross", None):
            ehs = module.norm_encoder_hidden_states(ehs)
        q, k = module.to_q(hs), module.to_k(ehs)
        b, n, _ = q.shape
        heads = module.heads
        q = q.reshape(b, n, heads, -1).transpose(1, 2)
        k = k.reshape(b, k.shape[1], heads, -1).transpose(1, 2)
        probs = torch.softmax((q @ k.transpose(-1, -2)).float() * module.scale, dim=-1)
        store.append(probs.mean(dim=1).detach().cpu())
        return None

    handles = [m.register_forward_pre_hook(hook, with_kwargs=True) for name, m in unet.named_modules()
               if name.endswith("attn2")]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def token_positions(tokenizer: Any, prompt: str, word: str) -> list[int]:
    """Where ``word``'s tokens sit in the tokenised ``prompt`` (empty if it is not there)."""
    ids = tokenizer(prompt).input_ids
    sub = tokenizer(word, add_special_tokens=False).input_ids
    for i in range(len(ids) - len(sub) + 1):
        if sub and ids[i:i + len(sub)] == sub:
            return list(range(i, i + len(sub)))
    return []


#: self-attention layers with more query pixels than this keep their own maps (an N x N map per head
#: and row would not fit at the highest resolutions of a large model; structure lives lower down too)
SHARE_MAX_PIXELS = 1024


class _SharedSelfAttention:
    """Self-attention where every row but the first attends with the *first* row's attention map
    (its own values): the first row is the unedited picture, so the edited rows keep its layout --
    which pixel belongs with which -- while what the pixels look like may change (plug-and-play
    feature injection).  ``keep`` ([1,1,h,w], 0..1 at latent size) says where (1: shared)."""

    def __init__(self, fallback: Any, keep: torch.Tensor | None):
        self.fallback, self.keep = fallback, keep

    def __call__(self, attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 *args: Any, **kwargs: Any) -> torch.Tensor:
        plain = (encoder_hidden_states is not None or attention_mask is not None or hidden_states.ndim != 3
                 or attn.spatial_norm is not None or attn.group_norm is not None
                 or hidden_states.shape[1] > SHARE_MAX_PIXELS or hidden_states.shape[0] < 2)
        if plain:
            return self.fallback(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        b, n, _ = hidden_states.shape
        q, k, v = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        heads = attn.heads
        q, k, v = (y.reshape(b, n, heads, -1).transpose(1, 2) for y in (q, k, v))
        if attn.norm_q is not None:
            q = attn.norm_q(q)
        if attn.norm_k is not None:
            k = attn.norm_k(k)
        probs = torch.softmax((q @ k.transpose(-1, -2)).float() * attn.scale, dim=-1)
        shared = probs[:1].expand_as(probs[1:])
        if self.keep is not None:
            w = self._weights(n).to(probs)
            shared = w * shared + (1.0 - w) * probs[1:]
        probs = torch.cat([probs[:1], shared]).to(v.dtype)
        out = (probs @ v).transpose(1, 2).reshape(b, n, -1)
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor

    def _weights(self, pixels: int) -> torch.Tensor:
        """``keep`` at this layer's grid, as [1,1,pixels,1] (query pixels)."""
        assert self.keep is not None
        h, w = self.keep.shape[-2:]
        f = max(1, int(round((h * w / pixels) ** 0.5)))
        grid = torch.nn.functional.adaptive_avg_pool2d(self.keep.float(), (max(1, h // f), max(1, w // f)))
        if grid.numel() != pixels:
            return torch.zeros((1, 1, pixels, 1))
        return grid.reshape(1, 1, pixels, 1)


@contextmanager
def shared_self_attention(unet: Any, keep: torch.Tensor | None) -> Iterator[None]:
    """Within the block, the UNet's self-attention layers (``attn1``) share the batch's first row's
    attention maps with the other rows (:class:`_SharedSelfAttention`)."""
    original = dict(unet.attn_processors)
    unet.set_attn_processor({name: _SharedSelfAttention(proc, keep) if name.endswith("attn1.processor") else proc
                             for name, proc in original.items()})
    try:
        yield
    finally:
        unet.set_attn_processor(original)
