"""The chorale network (torch): a GRU over 16th-note steps with a per-voice head chain.

At each step the GRU reads the previous step (token and sounding pitch of each voice), the
position in the bar and the requested key; the heads then pick soprano, alto, tenor and
bass in turn, each seeing the voices already chosen for this step.  Imported only when the
plugin loads a model, so importing the plugin never pulls in torch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from studio_music.representation import (
    HOLD,
    PITCH_MIN,
    REST,
    STEPS_PER_BAR,
    VOCAB,
    VOICE_RANGES,
    VOICES,
    pitch_for_token,
    scale_pitch_classes,
)

N_PITCH = 1 + 128  # sounding pitch 0..127, 128 = silent


@dataclass
class ChoraleConfig:
    vocab: int = VOCAB
    embed: int = 48
    hidden: int = 256
    layers: int = 2
    head: int = 192
    steps_per_bar: int = STEPS_PER_BAR
    version: int = 1

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps({"model_type": "studio-chorale-gru", **asdict(self)}, indent=2))

    @classmethod
    def load(cls, path: Path) -> ChoraleConfig:
        data = json.loads(Path(path).read_text())
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


class ChoraleNet(nn.Module):
    def __init__(self, config: ChoraleConfig):
        super().__init__()
        self.config = config
        e, v = config.embed, config.vocab
        self.token_emb = nn.ModuleList(nn.Embedding(v, e) for _ in range(4))
        self.pitch_emb = nn.ModuleList(nn.Embedding(N_PITCH, e) for _ in range(4))
        self.metric_emb = nn.Embedding(config.steps_per_bar, 32)
        self.key_emb = nn.Embedding(24, 32)  # tonic + 12 * minor
        self.rnn = nn.GRU(4 * e + 64, config.hidden, num_layers=config.layers, batch_first=True)
        self.cur_emb = nn.ModuleList(nn.Embedding(v, e) for _ in range(3))
        self.cur_pitch_emb = nn.ModuleList(nn.Embedding(N_PITCH, e) for _ in range(3))
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(config.hidden + 32 + 3 * e, config.head), nn.GELU(), nn.Linear(config.head, v))
            for _ in range(4))

    # -- shared pieces ----------------------------------------------------------------------
    def step_input(self, prev_tokens, prev_pitch, metric, key):
        """prev_tokens/prev_pitch (B, T, 4); metric/key (B, T) -> (B, T, input)."""
        parts = [self.token_emb[i](prev_tokens[..., i]) + self.pitch_emb[i](prev_pitch[..., i]) for i in range(4)]
        parts.append(self.metric_emb(metric))
        parts.append(self.key_emb(key))
        return torch.cat(parts, dim=-1)

    def head_logits(self, voice: int, hidden, metric_vec, chosen: list):
        """chosen: embeddings for voices < voice (each (..., e)); missing slots are zeros."""
        e = self.config.embed
        slots = list(chosen) + [hidden.new_zeros(*hidden.shape[:-1], e)] * (3 - len(chosen))
        return self.heads[voice](torch.cat([hidden, metric_vec, *slots], dim=-1))

    def chosen_embedding(self, voice: int, token, pitch):
        return self.cur_emb[voice](token) + self.cur_pitch_emb[voice](pitch)

    # -- training -------------------------------------------------------------------------
    def forward(self, tokens, pitch, metric, key):
        """Teacher forcing.  tokens/pitch (B, T+1, 4) where step 0 is the 'previous' of step 1;
        metric/key (B, T+1).  Returns logits (B, T, 4, V) for steps 1..T."""
        x = self.step_input(tokens[:, :-1], pitch[:, :-1], metric[:, 1:], key[:, 1:])
        hidden, _ = self.rnn(x)
        metric_vec = self.metric_emb(metric[:, 1:])
        chosen, logits = [], []
        for voice in range(4):
            logits.append(self.head_logits(voice, hidden, metric_vec, chosen))
            if voice < 3:
                chosen.append(self.chosen_embedding(voice, tokens[:, 1:, voice], pitch[:, 1:, voice]))
        return torch.stack(logits, dim=2)


def sounding_pitch(tokens: np.ndarray) -> np.ndarray:
    """Grid (T, 4) of tokens -> the MIDI pitch sounding at each step (128 = silence)."""
    out = np.full(tokens.shape, 128, dtype=np.int64)
    current = np.full(tokens.shape[1], 128, dtype=np.int64)
    for t in range(tokens.shape[0]):
        row = tokens[t]
        onset = row >= 2
        current = np.where(onset, row - 2 + PITCH_MIN, np.where(row == REST, 128, current))
        out[t] = current
    return out


def key_index(tonic: int, mode: str) -> int:
    return tonic % 12 + (12 if mode == "minor" else 0)


class Sampler:
    """Autoregressive sampling with key, range and (optionally) cancel checks."""

    def __init__(self, net: ChoraleNet):
        self.net = net.eval()
        v = net.config.vocab
        masks = []
        for name in VOICES:
            low, high = VOICE_RANGES[name]
            mask = torch.full((v,), float("-inf"))
            mask[HOLD] = 0.0
            for p in range(low, high + 1):
                mask[2 + p - PITCH_MIN] = 0.0
            masks.append(mask)
        self.range_masks = masks
        self.pitches = torch.tensor([pitch_for_token(t) if t >= 2 else -1 for t in range(v)])

    def generate(self, steps: int, tonic: int, mode: str, temperature: float = 1.0, seed: int = 0,
                 prefix: np.ndarray | None = None, key_strength: float = 2.0, start_metric: int = 0,
                 avoid_parallels: bool = True) -> np.ndarray:
        """Return a token grid (len(prefix) + steps, 4)."""
        prefix_rows = [] if prefix is None else list(np.asarray(prefix, dtype=np.int64))
        rows = prefix_rows + list(self.rows(steps, tonic, mode, temperature, seed, prefix, key_strength,
                                            start_metric, avoid_parallels))
        return np.array(rows, dtype=np.int64).reshape(-1, 4)

    def rows(self, steps: int, tonic: int, mode: str, temperature: float = 1.0, seed: int = 0,
             prefix: np.ndarray | None = None, key_strength: float = 2.0, start_metric: int = 0,
             avoid_parallels: bool = True):
        """Yield one new row (4 tokens) per 16th step, after ``prefix``.

        ``avoid_parallels`` forbids a note that would move in parallel perfect fifths or
        octaves with a voice already chosen for this step (a voice-leading rule applied while
        sampling, like the range limits)."""
        with torch.inference_mode():
            yield from self._rows(steps, tonic, mode, temperature, seed, prefix, key_strength, start_metric,
                                  avoid_parallels)

    def _parallel_mask(self, voice: int, prev_pitch, new_pitch) -> torch.Tensor | None:
        cand = self.pitches  # (V,), -1 for HOLD/REST
        bad = torch.zeros_like(cand, dtype=torch.bool)
        pv0 = int(prev_pitch[voice])
        if pv0 == 128:
            return None
        moved_v = (cand >= 0) & (cand != pv0)
        for u in range(voice):
            pu0, pu1 = int(prev_pitch[u]), int(new_pitch[u])
            if 128 in (pu0, pu1) or pu1 == pu0:
                continue
            interval = (pu0 - pv0) % 12
            if interval not in (0, 7):
                continue
            same = ((pu1 - cand) % 12 == interval) & moved_v
            direction = torch.sign(cand - pv0) == (1 if pu1 > pu0 else -1)
            bad |= same & direction
        return bad if bool(bad.any()) else None

    def _rows(self, steps, tonic, mode, temperature, seed, prefix, key_strength, start_metric, avoid_parallels):
        net = self.net
        gen = torch.Generator().manual_seed(int(seed))
        key = torch.tensor([[key_index(tonic, mode)]])
        in_key = scale_pitch_classes(tonic, mode)
        key_bias = torch.zeros(net.config.vocab)
        for tok in range(2, net.config.vocab):
            if pitch_for_token(tok) % 12 not in in_key:
                key_bias[tok] = -float(key_strength)
        bias = [m + key_bias for m in self.range_masks]
        prefix = np.zeros((0, 4), dtype=np.int64) if prefix is None else np.asarray(prefix, dtype=np.int64)
        sounding = sounding_pitch(prefix) if len(prefix) else np.zeros((0, 4), dtype=np.int64)
        state = None
        prev_tok = torch.full((1, 1, 4), REST, dtype=torch.long)
        prev_pitch = torch.full((1, 1, 4), 128, dtype=torch.long)
        # Warm the GRU on the prefix (one batched call).
        if len(prefix):
            toks = torch.as_tensor(np.concatenate([np.full((1, 4), REST), prefix[:-1]]), dtype=torch.long)[None]
            pits = torch.as_tensor(np.concatenate([np.full((1, 4), 128), sounding[:-1]]), dtype=torch.long)[None]
            metric = torch.as_tensor((np.arange(len(prefix)) + start_metric) % net.config.steps_per_bar)[None]
            x = net.step_input(toks, pits, metric, key.expand(1, len(prefix)))
            _, state = net.rnn(x)
            prev_tok = torch.as_tensor(prefix[-1], dtype=torch.long).view(1, 1, 4)
            prev_pitch = torch.as_tensor(sounding[-1], dtype=torch.long).view(1, 1, 4)
        temperature = max(float(temperature), 1e-3)
        offset = len(prefix)
        for i in range(steps):
            t = offset + i
            metric = torch.tensor([[(t + start_metric) % net.config.steps_per_bar]])
            x = net.step_input(prev_tok, prev_pitch, metric, key)
            hidden, state = net.rnn(x, state)
            hidden = hidden[0, 0]
            metric_vec = net.metric_emb(metric)[0, 0]
            chosen = []
            new_tok = torch.empty(4, dtype=torch.long)
            new_pitch = torch.empty(4, dtype=torch.long)
            for voice in range(4):
                logits = net.head_logits(voice, hidden, metric_vec, chosen) / temperature + bias[voice]
                if prev_pitch[0, 0, voice] == 128:  # nothing to hold after silence: start a note
                    logits[HOLD] = float("-inf")
                if avoid_parallels and voice > 0:
                    bad = self._parallel_mask(voice, prev_pitch[0, 0], new_pitch)
                    if bad is not None:
                        limited = logits.masked_fill(bad, float("-inf"))
                        if torch.isfinite(limited).any():
                            logits = limited
                token = torch.multinomial(torch.softmax(logits, -1), 1, generator=gen)[0]
                pitch = prev_pitch[0, 0, voice] if token == HOLD else self.pitches[token]
                new_tok[voice], new_pitch[voice] = token, pitch
                if voice < 3:
                    chosen.append(net.chosen_embedding(voice, token, pitch))
            prev_tok = new_tok.view(1, 1, 4)
            prev_pitch = new_pitch.view(1, 1, 4)
            yield new_tok.numpy().copy()


def save_model(net: ChoraleNet, folder: Path, extra: dict | None = None) -> None:
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().clone() for k, v in net.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"), metadata={k: str(v) for k, v in (extra or {}).items()})
    net.config.save(folder / "config.json")


def load_model(folder: Path) -> ChoraleNet:
    from safetensors.torch import load_file

    folder = Path(folder)
    config = ChoraleConfig.load(folder / "config.json")
    net = ChoraleNet(config)
    net.load_state_dict(load_file(str(folder / "model.safetensors")))
    return net.eval()
