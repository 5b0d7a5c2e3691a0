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
from PIL import Image, ImageDraw

from studio.shapes import world

RUNS = REPO / "training" / "runs"
#: half-widths (px) of the free-layout scenes: the world's two sizes (5, 9.5) and everything around them
HALF_RANGE = (4.5, 14.0)
#: share of free scenes drawn with hard edges (no super-sampling), as PIL draws without anti-aliasing
HARD_EDGES = 0.4


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


def _nearest_cell(v: float) -> int:
    return int(np.argmin([abs(v - c) for c in world.CELL_CENTERS]))


def free_scene(rng: np.random.Generator) -> world.Scene:
    """One object anywhere, of any size, colours a little off the palette (as users draw)."""
    while True:
        shape = world.SHAPES[int(rng.integers(len(world.SHAPES)))]
        color = world.COLORS[int(rng.integers(len(world.COLORS)))]
        background = world.COLORS[int(rng.integers(len(world.COLORS)))]
        if background == color:
            continue
        half = float(rng.uniform(*HALF_RANGE))
        cx, cy = (float(rng.uniform(half + 1.5, world.IMAGE_SIZE - half - 1.5)) for _ in range(2))
        size = "small" if half < world.SIZE_THRESHOLD else "large"
        rgb = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(world.PALETTE[color], rng.integers(-18, 19, 3),
                                                                strict=True))
        bg = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(world.PALETTE[background], rng.integers(-12, 13, 3),
                                                               strict=True))
        obj = world.Obj(shape=shape, color=color, size=size, col=_nearest_cell(cx), row=_nearest_cell(cy),
                        cx=cx, cy=cy, half=half, rgb=rgb)
        scene = world.Scene(background=background, objects=(obj,), bg_rgb=bg)
        if not world.is_heldout(scene):
            return scene


def render_hard(scene: world.Scene) -> np.ndarray:
    """The world's renderer without super-sampling: hard, aliased edges."""
    img = Image.new("RGB", (world.IMAGE_SIZE, world.IMAGE_SIZE), tuple(int(c) for c in scene.bg))
    draw = ImageDraw.Draw(img)
    for o in scene.objects:
        kind, geom = world._shape_outline(o.shape, o.cx, o.cy, o.half, 1)
        getattr(draw, kind)(geom, fill=tuple(int(c) for c in o.fill))
    return np.asarray(img, dtype=np.uint8).copy()


def render_free(rng: np.random.Generator, scene: world.Scene) -> np.ndarray:
    """A free scene drawn hard-edged ``HARD_EDGES`` of the time, else anti-aliased."""
    return render_hard(scene) if rng.random() < HARD_EDGES else world.render(scene)


def min_snr_loss(pred, x0, noise, alphas, gamma: float = 5.0, prediction: str = "v_prediction"):
    """The diffusion loss every Shapes UNet / ControlNet trained with: MSE to the v (or epsilon)
    target, each sample weighted by min-SNR-``gamma`` (``alphas``: the cumulative alphas at its
    timestep, shaped [B,1,1,1])."""
    import torch

    a = alphas.view(-1)
    snr = a / (1 - a)
    if prediction == "epsilon":
        target, weight = noise, torch.clamp(snr, max=gamma) / snr
    else:  # v = sqrt(a) eps - sqrt(1-a) x0
        target = alphas.sqrt() * noise - (1 - alphas).sqrt() * x0
        weight = torch.clamp(snr, max=gamma) / (snr + 1)
    return (weight * ((pred.float() - target) ** 2).mean(dim=(1, 2, 3))).mean()


def ema_update(model, ema, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, parameter by parameter."""
    import torch

    with torch.no_grad():
        for p, q in zip(model.parameters(), ema.parameters(), strict=True):
            q.mul_(decay).add_(p.detach(), alpha=1 - decay)
