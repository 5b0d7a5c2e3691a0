"""Small helpers shared by the Shapes training scripts (checkpointing, data batches)."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np

from studio.shapes import world

RUNS = REPO / "training" / "runs"


def log(msg: str, logfile: Path | None = None) -> None:
    line = f"[{time.strftime('%H:%M:%S')}] {msg}"
    print(line, flush=True)
    if logfile is not None:
        with open(logfile, "a") as f:
            f.write(line + "\n")


def save_ckpt(path: Path, state: dict) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_ckpt(path: Path):
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def batch_rng(seed: int, step: int) -> np.random.Generator:
    """Data RNG for one optimisation step: resuming at step k reproduces the same batches."""
    return np.random.default_rng([int(seed), int(step)])


def render_batch(rng, n: int, p_pair: float = 0.5, split: str = "train"):
    scenes = [world.sample_scene(rng, p_pair=p_pair, split=split) for _ in range(n)]
    imgs = np.stack([world.render(s) for s in scenes])
    return scenes, imgs


def to_tensor(imgs):
    import torch

    x = torch.from_numpy(imgs).float().permute(0, 3, 1, 2) / 127.5 - 1.0
    return x.contiguous()


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
