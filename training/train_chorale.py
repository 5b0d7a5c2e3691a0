"""Train the embedded chorale model on the Bach chorales bundled with music21.

    nice -n 15 .venv/bin/python training/chorale_corpus.py          # once: corpus.npz
    nice -n 15 .venv/bin/python training/train_chorale.py --minutes 30 [--resume]

Every chorale is transposed at random (all 12 keys, keeping the voices near their ranges),
so the key condition is learnable.  Checkpoints go to training/runs/chorale/ckpt/ (resume
with --resume); the final weights are exported to assets/models/chorale/ (safetensors +
config.json).  Single-threaded on purpose: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

from studio_music.model import ChoraleConfig, ChoraleNet, load_model, save_model, sounding_pitch
from studio_music.representation import VOICE_RANGES, VOICES

RUN = ROOT / "training" / "runs" / "chorale"
CORPUS = RUN / "corpus.npz"
EXPORT = ROOT / "assets" / "models" / "chorale"


def load_corpus(path: Path = CORPUS):
    data = np.load(path)
    grids = np.split(data["grid"].astype(np.int64), np.cumsum(data["lengths"])[:-1])
    metrics = np.split(data["metric"].astype(np.int64), np.cumsum(data["lengths"])[:-1])
    pieces = []
    for grid, metric, (bar, tonic, mode), name in zip(grids, metrics, data["meta"], data["names"], strict=False):
        if bar != 16 or len(grid) < 32:
            continue
        pieces.append({"tokens": grid, "metric": metric, "tonic": int(tonic), "mode": int(mode), "name": str(name),
                       "pitch": sounding_pitch(grid)})
    return pieces


def allowed_shifts(piece, margin: int = 2) -> list[int]:
    shifts = []
    pitch = piece["pitch"]
    for shift in range(-6, 6):
        ok = True
        for v, name in enumerate(VOICES):
            sounding = pitch[:, v][pitch[:, v] < 128]
            if not len(sounding):
                continue
            low, high = VOICE_RANGES[name]
            if sounding.min() + shift < low - margin or sounding.max() + shift > high + margin:
                ok = False
                break
        if ok:
            shifts.append(shift)
    return shifts or [0]


def transpose(piece, shift: int):
    tokens = piece["tokens"].copy()
    tokens[tokens >= 2] += shift
    pitch = piece["pitch"].copy()
    pitch[pitch < 128] += shift
    return tokens, pitch, (piece["tonic"] + shift) % 12 + 12 * piece["mode"]


def make_batch(pieces, shifts, rng, batch: int, window: int):
    toks = np.full((batch, window + 1, 4), 1, dtype=np.int64)
    pits = np.full((batch, window + 1, 4), 128, dtype=np.int64)
    mets = np.zeros((batch, window + 1), dtype=np.int64)
    keys = np.zeros((batch, window + 1), dtype=np.int64)
    valid = np.zeros((batch, window), dtype=bool)
    for b in range(batch):
        index = rng.integers(len(pieces))
        piece = pieces[index]
        tokens, pitch, key = transpose(piece, int(rng.choice(shifts[index])))
        # Start at the piece's beginning sometimes (the first step's "previous" is silence).
        n = len(tokens)
        if rng.random() < 0.25 or n <= window + 1:
            start = -1
        else:
            start = int(rng.integers(0, n - window - 1))
        if start < 0:
            length = min(n, window)
            toks[b, 1:1 + length], pits[b, 1:1 + length] = tokens[:length], pitch[:length]
            mets[b, 1:1 + length] = piece["metric"][:length]
            mets[b, 0] = (piece["metric"][0] - 1) % 16
            valid[b, :length] = True
        else:
            toks[b], pits[b] = tokens[start:start + window + 1], pitch[start:start + window + 1]
            mets[b] = piece["metric"][start:start + window + 1]
            valid[b] = True
        keys[b] = key
    return (torch.from_numpy(toks), torch.from_numpy(pits), torch.from_numpy(mets), torch.from_numpy(keys),
            torch.from_numpy(valid))


def loss_on(net, batch):
    toks, pits, mets, keys, valid = batch
    logits = net(toks, pits, mets, keys)
    target = toks[:, 1:]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                             reduction="none").view(target.shape)
    mask = valid[..., None].expand_as(loss).float()
    return (loss * mask).sum() / mask.sum()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--steps", type=int, default=100000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    pieces = load_corpus()
    names = sorted(p["name"] for p in pieces)
    held_out = set(names[::20])  # 5% for validation
    train = [p for p in pieces if p["name"] not in held_out]
    val = [p for p in pieces if p["name"] in held_out]
    shifts = [allowed_shifts(p) for p in train]
    val_shifts = [allowed_shifts(p) for p in val]
    print(f"{len(train)} training chorales, {len(val)} held out", flush=True)

    ckpt = RUN / "ckpt"
    state_file = RUN / "train_state.json"
    if args.resume and (ckpt / "model.safetensors").exists():
        net = load_model(ckpt).train()
        done = json.loads(state_file.read_text())["step"]
        print(f"resumed at step {done}", flush=True)
    else:
        net = ChoraleNet(ChoraleConfig()).train()
        done = 0
    params = sum(p.numel() for p in net.parameters())
    print(f"{params / 1e6:.2f} M parameters", flush=True)
    optimizer = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=0.01)
    val_rng = np.random.default_rng(1)
    val_batches = [make_batch(val, val_shifts, val_rng, 32, 128) for _ in range(4)]
    started = time.time()
    deadline = started + args.minutes * 60
    total_planned = args.steps
    step = done
    running = None
    best = math.inf
    while step < total_planned and time.time() < deadline:
        # Cosine decay over the time budget (the budget is what bounds this run).
        frac = min(1.0, (time.time() - started) / (args.minutes * 60))
        lr = args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = loss_on(net, make_batch(train, shifts, rng, args.batch, args.window))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        step += 1
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 100 == 0:
            net.eval()
            with torch.no_grad():
                val_loss = float(np.mean([loss_on(net, b).item() for b in val_batches]))
            net.train()
            print(f"step {step} loss {running:.3f} val {val_loss:.3f} lr {lr:.2e} "
                  f"{time.time() - started:.0f}s", flush=True)
            save_model(net, ckpt)
            state_file.write_text(json.dumps({"step": step, "val_loss": val_loss, "train_loss": running}))
            if val_loss < best:
                best = val_loss
                save_model(net, RUN / "best", {"step": step, "val_loss": f"{val_loss:.4f}"})
    save_model(net, ckpt)
    state_file.write_text(json.dumps({"step": step, "train_loss": running}))
    source = RUN / "best" if (RUN / "best" / "model.safetensors").exists() else ckpt
    export(source)
    print(f"done at step {step}; exported {source} -> {EXPORT}", flush=True)


def export(source: Path = RUN / "best") -> None:
    net = load_model(source)
    save_model(net, EXPORT, {"trained_on": "music21 Bach chorales (public domain)"})


if __name__ == "__main__":
    main()
