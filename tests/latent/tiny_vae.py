"""A tiny vector VAE for tests, made with the shipped module (studio.shapes.vector_vae) and
trained for a few seconds on rendered Shapes scenes, so encode/decode are real (not random).
Saved with ``save_vector_vae`` without directions: the plugin fits its own at load."""

from __future__ import annotations

from pathlib import Path

import numpy as np

TINY_CONFIG = {"latent_dim": 8, "channels": [8, 16, 16, 16], "dec_channels": [32, 16, 8]}


def build_tiny_vae(folder: Path, steps: int = 120, batch: int = 24, seed: int = 0) -> Path:
    import torch

    from studio.shapes import world
    from studio.shapes.vector_vae import VectorVAE, save_vector_vae

    torch.manual_seed(seed)
    model = VectorVAE(TINY_CONFIG)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(seed)
    model.train()
    for _ in range(steps):
        imgs = np.stack([world.render(world.sample_continuous_scene(rng)[0]) for _ in range(batch)])
        x = torch.from_numpy(imgs).float().permute(0, 3, 1, 2) / 255.0
        y, mu, logvar = model(x)
        # objects are small: weight the pixels that differ from the corner (background) colour
        fg = ((x - x[:, :, :1, :1]).abs().amax(dim=1, keepdim=True) > 0.1).float()
        err = ((y - x) ** 2 * (1.0 + 15.0 * fg)).sum(dim=(1, 2, 3)).mean()
        loss = err + 0.01 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    save_vector_vae(model, folder)
    return folder
