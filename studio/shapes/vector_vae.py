"""Vector-latent VAE for the Shapes world (torch).  Importing has no side effects.

Folder layout (``assets/models/shapes-vae``)::

    config.json            {"latent_dim": 16, "channels": [...], "image_size": 64, ...}
    model.safetensors      VectorVAE state dict (fp32)
    directions.safetensors named latent directions (each a [latent_dim] vector)
                           + "pca" [k, latent_dim] + "latent_mean"/"latent_std"
    directions.json        per direction: kind, units, unit_per_latent, slider range
    README.md              model card

Usage::

    from studio.shapes.vector_vae import load_vector_vae
    vae, dirs = load_vector_vae("assets/models/shapes-vae")
    z = vae.encode_images(images_uint8)          # [N, D] latent means
    imgs = vae.decode_images(z + 2.0 * dirs["x"]) # uint8 [N, 64, 64, 3]

Images are RGB in [0, 1] inside the network (uint8 helpers convert).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

DEFAULT_CONFIG = {
    "latent_dim": 16,
    "channels": [32, 64, 128, 128],
    "image_size": 64,
    "dec_base": 8,
    "dec_channels": [128, 64, 48],
}


def _coords(n: int, h: int, w: int, device, dtype):
    ys = torch.linspace(-1, 1, h, device=device, dtype=dtype).view(1, 1, h, 1).expand(n, 1, h, w)
    xs = torch.linspace(-1, 1, w, device=device, dtype=dtype).view(1, 1, 1, w).expand(n, 1, h, w)
    return torch.cat([xs, ys], dim=1)


class CoordConv(nn.Module):
    """3x3 conv that also sees the (x, y) coordinate planes."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin + 2, cout, 3, padding=1)

    def forward(self, x):
        n, _, h, w = x.shape
        return self.conv(torch.cat([x, _coords(n, h, w, x.device, x.dtype)], dim=1))


class VectorVAE(nn.Module):
    """Strided-conv encoder -> D-dim Gaussian latent -> CoordConv decoder.

    Decoder: linear -> 8x8 map -> CoordConv blocks at 8, 16, 32 px -> sub-pixel
    (pixel-shuffle) 2x output at 64 px -> sigmoid."""

    def __init__(self, config: dict | None = None):
        super().__init__()
        cfg = dict(DEFAULT_CONFIG)
        cfg.update(config or {})
        self.config = cfg
        d = cfg["latent_dim"]
        ch = cfg["channels"]
        layers = []
        cin = 3
        for i, c in enumerate(ch):  # 64 -> 32 -> 16 -> 8 -> 4 (strided 4x4 convs, coords on the first)
            conv = nn.Conv2d(cin + (2 if i == 0 else 0), c, 4, stride=2, padding=1)
            layers += [conv, nn.SiLU()]
            cin = c
        self.encoder = nn.ModuleList(layers)
        s = cfg["image_size"] // 2 ** len(ch)
        self.enc_out = nn.Linear(cin * s * s, 2 * d)
        b = cfg["dec_base"]
        dch = cfg["dec_channels"]
        self.dec_in = nn.Linear(d, dch[0] * b * b)
        self.dec_blocks = nn.ModuleList()
        cin = dch[0]
        for c in dch:  # 8 -> (16 -> 32): conv blocks, then a sub-pixel 2x output
            self.dec_blocks.append(nn.ModuleList([CoordConv(cin, c), CoordConv(c, c)]))
            cin = c
        self.dec_out = CoordConv(cin, 3 * 4)

    @property
    def latent_dim(self) -> int:
        return self.config["latent_dim"]

    def encode(self, x):
        """x: [N,3,H,W] in [0,1] -> (mu, logvar)."""
        h = x * 2 - 1
        n, _, hh, ww = h.shape
        h = torch.cat([h, _coords(n, hh, ww, h.device, h.dtype)], dim=1)
        for layer in self.encoder:
            h = layer(h)
        mu, logvar = self.enc_out(h.flatten(1)).chunk(2, dim=1)
        return mu, logvar.clamp(-12, 6)

    def decode(self, z):
        """z: [N,D] -> images [N,3,H,W] in [0,1]."""
        b = self.config["dec_base"]
        h = self.dec_in(z).view(z.shape[0], -1, b, b)
        for i, (c1, c2) in enumerate(self.dec_blocks):
            if i > 0:
                h = F.interpolate(h, scale_factor=2, mode="nearest")
            h = F.silu(c1(h))
            h = F.silu(c2(h))
        h = F.pixel_shuffle(self.dec_out(h), 2)
        return torch.sigmoid(h)

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decode(z), mu, logvar

    # -- uint8 helpers ----------------------------------------------------
    @torch.no_grad()
    def encode_images(self, images):
        """uint8 [N,H,W,3] (numpy or tensor) or a single [H,W,3] -> latent means [N,D]."""
        x = torch.as_tensor(images)
        if x.ndim == 3:
            x = x[None]
        x = x.float().permute(0, 3, 1, 2) / 255.0
        if x.shape[-1] != self.config["image_size"]:
            x = F.interpolate(x, size=(self.config["image_size"],) * 2, mode="area")
        return self.encode(x)[0]

    @torch.no_grad()
    def decode_images(self, z):
        """latents [N,D] or [D] -> uint8 numpy [N,H,W,3]."""
        z = torch.as_tensor(z, dtype=torch.float32)
        if z.ndim == 1:
            z = z[None]
        x = self.decode(z)
        return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def save_vector_vae(model: VectorVAE, folder, directions: dict | None = None, directions_meta: dict | None = None):
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "config.json", "w") as f:
        json.dump({"model_type": "shapes-vector-vae", **model.config}, f, indent=2)
    save_file({k: v.detach().contiguous().float() for k, v in model.state_dict().items()},
              str(folder / "model.safetensors"))
    if directions is not None:
        save_file({k: torch.as_tensor(v).float().contiguous() for k, v in directions.items()},
                  str(folder / "directions.safetensors"))
    if directions_meta is not None:
        with open(folder / "directions.json", "w") as f:
            json.dump(directions_meta, f, indent=2)


def load_vector_vae(folder, device: str = "cpu"):
    """-> (VectorVAE in eval mode, dict of direction tensors ({} if none))."""
    from safetensors.torch import load_file

    folder = Path(folder)
    with open(folder / "config.json") as f:
        cfg = json.load(f)
    cfg.pop("model_type", None)
    model = VectorVAE(cfg)
    model.load_state_dict(load_file(str(folder / "model.safetensors"), device=device))
    model.eval()
    dirs = {}
    if (folder / "directions.safetensors").exists():
        dirs = dict(load_file(str(folder / "directions.safetensors"), device=device))
    return model, dirs


def load_directions_meta(folder) -> dict:
    p = Path(folder) / "directions.json"
    return json.loads(p.read_text()) if p.exists() else {}
