"""Train the Shapes text-to-image model (a standard diffusers StableDiffusionPipeline).

Stages (each resumable; ``--stage all`` runs them in order):

  vae      AutoencoderKL 64x64x3 -> 16x16x4 on renders of the Shapes world
  tok      CLIP tokenizer (vocab.json + merges.txt) built from the caption vocabulary
  latents  pre-encode a cached dataset of scenes with the trained VAE
  unet     CLIP text encoder + UNet2DConditionModel trained jointly from scratch
  export   write the pipeline folder (assets/models/shapes-sd by default)

Example (what was run):
  nice -n 10 python training/train_shapes_sd.py --stage vae --minutes 14
  nice -n 10 python training/train_shapes_sd.py --stage unet --minutes 100 --resume
  python training/train_shapes_sd.py --stage export

Seeded; checkpoints in training/runs/shapes_sd/.  CPU only (torch.set_num_threads).
"""
from __future__ import annotations

import argparse
import math
import shutil
import time
from pathlib import Path

from shapes_common import REPO, RUNS, batch_rng, load_ckpt, log, render_batch, save_ckpt, to_tensor, write_json

import numpy as np

RUN = RUNS / "shapes_sd"
LOG = RUN / "train.log"

VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 3,
    up_block_types=("UpDecoderBlock2D",) * 3,
    block_out_channels=(32, 64, 64),
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=16,
    sample_size=64,
)

TEXT_CONFIG = dict(
    hidden_size=128,
    intermediate_size=512,
    num_hidden_layers=3,
    num_attention_heads=4,
    max_position_embeddings=32,
    hidden_act="quick_gelu",
    projection_dim=128,
)

UNET_CONFIG = dict(
    sample_size=16,
    in_channels=4,
    out_channels=4,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(64, 128, 128),
    layers_per_block=1,
    cross_attention_dim=128,
    attention_head_dim=4,  # (diffusers legacy naming: number of heads)
    norm_num_groups=32,
)


# ---------------------------------------------------------------------------
# VAE


def make_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(**VAE_CONFIG)


def stage_vae(args):
    import torch

    torch.manual_seed(args.seed)
    vae = make_vae()
    opt = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr, weight_decay=0.0)
    ck = RUN / "vae_ckpt.pt"
    step = 0
    if args.resume and ck.exists():
        st = load_ckpt(ck)
        vae.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step = st["step"]
        log(f"vae: resumed at step {step}", LOG)
    nparams = sum(p.numel() for p in vae.parameters())
    log(f"vae: {nparams} params, batch {args.vae_batch}", LOG)
    t0 = time.time()
    last_ck = time.time()
    ema = None
    while True:
        elapsed = time.time() - t0
        if step >= args.vae_steps or elapsed > args.minutes * 60:
            break
        rng = batch_rng(args.seed, step)
        _, imgs = render_batch(rng, args.vae_batch, split="train")
        x = to_tensor(imgs)
        lr = args.vae_lr * min(1.0, (step + 1) / 200)
        for g in opt.param_groups:
            g["lr"] = lr
        post = vae.encode(x).latent_dist
        z = post.sample()
        y = vae.decode(z).sample
        mse = torch.mean((y - x) ** 2)
        loss = mse + 0.5 * torch.mean(torch.abs(y - x)) + args.vae_kl * post.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        psnr = 10 * math.log10(4.0 / max(mse.item(), 1e-10))
        ema = psnr if ema is None else 0.95 * ema + 0.05 * psnr
        if step % 50 == 0:
            log(f"vae step {step} mse {mse.item():.5f} psnr~{ema:.2f}dB lr {lr:.2e} {time.time()-t0:.0f}s", LOG)
        if time.time() - last_ck > args.ckpt_seconds:
            save_ckpt(ck, {"model": vae.state_dict(), "opt": opt.state_dict(), "step": step})
            last_ck = time.time()
    save_ckpt(ck, {"model": vae.state_dict(), "opt": opt.state_dict(), "step": step})
    # latent statistics -> scaling factor
    vae.eval()
    with torch.no_grad():
        _, imgs = render_batch(np.random.default_rng(12345), 256, split="train")
        z = vae.encode(to_tensor(imgs)).latent_dist.mode()
        std = float(z.std())
    vae.register_to_config(scaling_factor=1.0 / std)
    vae.save_pretrained(RUN / "vae")
    log(f"vae: done at step {step}, latent std {std:.4f}, scaling_factor {1/std:.4f}", LOG)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", default="all", choices=["vae", "tok", "latents", "unet", "export", "all"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--minutes", type=float, default=1e9, help="wall-clock budget of a training stage")
    ap.add_argument("--ckpt-seconds", type=float, default=180)
    ap.add_argument("--vae-steps", type=int, default=3000)
    ap.add_argument("--vae-batch", type=int, default=24)
    ap.add_argument("--vae-lr", type=float, default=1e-3)
    ap.add_argument("--vae-kl", type=float, default=1e-6)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    RUN.mkdir(parents=True, exist_ok=True)
    stages = ["vae", "tok", "latents", "unet", "export"] if args.stage == "all" else [args.stage]
    for s in stages:
        globals()[f"stage_{s}"](args)


if __name__ == "__main__":
    main()
