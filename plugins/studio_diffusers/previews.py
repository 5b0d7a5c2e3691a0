"""Cheap latent -> RGB previews.

Instead of a VAE decode per preview, fit once per loaded VAE a linear map
``rgb = latents @ W + b`` by least squares: encode a handful of small synthetic colour images
with the VAE's own encoder, bring the latents into the space the pipeline's denoising loop holds
them in (``(z - shift) * scaling_factor`` for SD-style VAEs; per-channel mean/std for Qwen-Image's;
2x2-patchified and batch-normalised for Flux.2's), and regress the images' pixels (average-pooled
to the latent grid) on the latent channels.  Applying the map is one tiny matrix product plus a
PIL resize.

Packed latents (Flux, Chroma, Qwen-Image, Flux.2 hold (batch, tokens, channels x 2 x 2)) are put
back on their grid first (:func:`to_grid`); video VAEs (Qwen-Image) are fitted and read on their
single frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

_FIT_SIZE = 64  # synthetic images are this many pixels square


@dataclass(frozen=True)
class LatentRGB:
    weight: np.ndarray  # (channels, 3)
    bias: np.ndarray  # (3,)

    @property
    def channels(self) -> int:
        return self.weight.shape[0]

    def to_array(self, latents: Any) -> np.ndarray:
        """(C, h, w) latents (tensor or array, pipeline scaling) -> (h, w, 3) float RGB in [0, 1]."""
        if isinstance(latents, torch.Tensor):
            latents = latents.detach().float().cpu().numpy()
        rgb = np.einsum("chw,ck->hwk", latents, self.weight) + self.bias
        return np.clip(rgb, 0.0, 1.0)

    def to_image(self, latents: Any, size: tuple[int, int]) -> Image.Image:
        """A PIL RGB preview of (C, h, w) latents, resized to ``size`` = (width, height)."""
        rgb = (self.to_array(latents) * 255.0 + 0.5).astype(np.uint8)
        return Image.fromarray(rgb, "RGB").resize(size, Image.Resampling.BILINEAR)


def synthetic_images(size: int = _FIT_SIZE) -> np.ndarray:
    """(N, size, size, 3) float images in [0, 1]: flat colours, gradients, blocks and stripes."""
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
    yy, xx = np.meshgrid(ramp, ramp, indexing="ij")
    images = []
    for colour in ((0, 0, 0), (1, 1, 1), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (0, 1, 1), (1, 0, 1),
                   (0.5, 0.5, 0.5), (0.8, 0.5, 0.3)):
        images.append(np.broadcast_to(np.asarray(colour, np.float32), (size, size, 3)))
    images.append(np.stack([xx, yy, 1.0 - xx], axis=-1))
    images.append(np.stack([yy, 1.0 - xx, xx * yy], axis=-1))
    images.append(np.stack([0.5 + 0.5 * np.sin(6 * xx), 0.5 + 0.5 * np.cos(5 * yy), (xx + yy) / 2], axis=-1))
    rng = np.random.default_rng(0)
    cell = max(size // 8, 1)
    blocks = rng.random((size // cell, size // cell, 3)).astype(np.float32)
    images.append(np.kron(blocks, np.ones((cell, cell, 1), np.float32))[:size, :size])
    return np.stack(images).astype(np.float32)


def is_video_vae(vae: Any) -> bool:
    """A 3-D (frames) VAE such as Qwen-Image's: it encodes (N, C, frames, H, W)."""
    return getattr(vae.config, "temperal_downsample", None) is not None


def _encode(vae: Any, pixels: torch.Tensor) -> torch.Tensor:
    video = is_video_vae(vae)
    out = vae.encode(pixels.unsqueeze(2) if video else pixels)
    dist = getattr(out, "latent_dist", None)
    if dist is not None:
        latents = dist.mode() if hasattr(dist, "mode") else dist.mean
    else:
        latents = out.latents if hasattr(out, "latents") else out[0]
    return latents[:, :, 0] if video else latents


def scaled_space(vae: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """Raw encoder latents -> the space an SD/Flux/Qwen-style pipeline's loop holds them in."""
    config = vae.config
    mean, std = getattr(config, "latents_mean", None), getattr(config, "latents_std", None)
    if mean is not None and std is not None and getattr(config, "scaling_factor", None) is None:
        m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        return lambda z: (z - m) / s
    shift = getattr(config, "shift_factor", None) or 0.0
    scale = getattr(config, "scaling_factor", None) or 1.0
    return lambda z: (z - shift) * scale


def patchified_bn_space(vae: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """Flux.2: 2x2 patches folded into channels, then the VAE's batch-norm statistics applied."""
    mean = vae.bn.running_mean.detach().float().cpu().view(1, -1, 1, 1)
    std = torch.sqrt(vae.bn.running_var.detach().float().cpu().view(1, -1, 1, 1) + vae.config.batch_norm_eps)

    def space(z: torch.Tensor) -> torch.Tensor:
        n, c, h, w = z.shape
        z = z[:, :, : h // 2 * 2, : w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2)
        z = z.permute(0, 1, 3, 5, 2, 4).reshape(n, c * 4, h // 2, w // 2)
        return (z - mean) / std

    return space


def to_grid(latents: torch.Tensor, kind: str, height: int, width: int, multiple: int) -> torch.Tensor | None:
    """One image's loop latents as a (C, h, w) grid; None when they do not have the expected shape.

    ``kind``: grid (already (B, C, h, w)), packed / packed3d / flux2 ((B, tokens, C) with
    tokens = (height/multiple) x (width/multiple), row-major, each token a 2x2 patch folded into
    channels: packed ones as (C, 2, 2), Flux.2's already as its grid's channels)."""
    if kind == "grid":
        return latents[0] if latents.ndim == 4 else None
    if latents.ndim != 3:
        return None
    rows, cols = height // multiple, width // multiple
    tokens, channels = latents.shape[1], latents.shape[2]
    if tokens != rows * cols:
        return None
    grid = latents[0].reshape(rows, cols, channels)
    if kind == "flux2":
        return grid.permute(2, 0, 1)
    c = channels // 4  # packed: (C, 2, 2) per token -> a (C, 2*rows, 2*cols) grid
    return grid.reshape(rows, cols, c, 2, 2).permute(2, 0, 3, 1, 4).reshape(c, rows * 2, cols * 2)


def _device_of(module: Any) -> torch.device:
    for p in module.parameters():
        if p.device.type != "meta":
            return p.device
    return torch.device("cpu")


@torch.no_grad()
def fit_latent_rgb(vae: Any, device: Any = None, size: int = _FIT_SIZE,
                   space: Callable[[torch.Tensor], torch.Tensor] | None = None) -> LatentRGB:
    """Least-squares linear map from the pipeline's latents to RGB for this ``vae``.

    ``space`` maps raw encoder latents (N, C, h, w) to the loop's grid (default: :func:`scaled_space`)."""
    device = torch.device(device) if device is not None else _device_of(vae)
    dtype = next(vae.parameters()).dtype
    images = synthetic_images(size)
    pixels = torch.from_numpy(images).permute(0, 3, 1, 2).mul(2.0).sub(1.0)
    latents = _encode(vae, pixels.to(device=device, dtype=dtype)).float().cpu()
    latents = (space or scaled_space(vae))(latents)  # the space the pipeline's denoising loop works in
    _, c, h, w = latents.shape
    target = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(images).permute(0, 3, 1, 2), (h, w))
    x = latents.permute(0, 2, 3, 1).reshape(-1, c).double().numpy()
    y = target.permute(0, 2, 3, 1).reshape(-1, 3).double().numpy()
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("the VAE produced non-finite latents")
    design = np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)
    solution, *_ = np.linalg.lstsq(design, y, rcond=None)
    return LatentRGB(solution[:c].astype(np.float32), solution[c].astype(np.float32))


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two arrays' values (flattened)."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    a = a - a.mean()
    b = b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else 0.0
