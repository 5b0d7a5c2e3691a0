"""Fine-tune the shipped shapes-sd UNet on free sizes and positions (CPU, resumable).

Why: the shipped UNet saw objects of two sizes (half-widths 5 and 9.5 px) on a 3x3 grid of
positions.  A user's drawing is neither: asked to turn a drawn circle 15-26 px wide into a square
(`studio latent quality`, circle->square), the model drew a square with rounded corners or concave
sides where the circle was, read back as a circle 70% of the time.  From scratch it drew "a small blue
square on a white background" as a square 2 times in 12.  So the UNet is trained on, besides its own
world (half of every batch, so nothing it knew is pushed out), single objects of any half-width in
4.5-14 px at any position, with the slightly-off colours and backgrounds and the hard (not
anti-aliased) edges that drawings have.  Captions come from the world's own caption writer, with the
size word and position words of the nearest size and grid cell (both are often left out).

The text encoder, the VAE and the scheduler stay as shipped; only the UNet moves.  Scenes whose
discrete factors are in the world's held-out split are never trained on, so ShapeEval stays held out.

  python training/finetune_free_layouts.py bank --n 24000
  python training/finetune_free_layouts.py train --minutes 60      # resumable; checkpoint every 3 min
  python training/finetune_free_layouts.py export --out assets/models/shapes-sd/unet
"""
from __future__ import annotations

import argparse
import copy
import os
import pickle
import shutil
import time
from pathlib import Path

import numpy as np
from shapes_common import (
    REPO,
    RUNS,
    batch_rng,
    ema_update,
    free_scene,
    load_ckpt,
    log,
    min_snr_loss,
    render_free,
    save_ckpt,
    to_tensor,
)

from studio.shapes import world

RUN = Path(os.environ.get("FREE_LAYOUT_RUN", str(RUNS / "free_layouts")))
LOG = RUN / "train.log"
BANK = RUN / "bank.pt"
SOURCE = REPO / "assets" / "models" / "shapes-sd"
#: share of the bank drawn from the free-layout scenes (the rest: the world the UNet was trained on)
FREE_SHARE = 0.5


def build_bank(args):
    import torch
    from diffusers import AutoencoderKL

    torch.set_num_threads(args.threads)
    RUN.mkdir(parents=True, exist_ok=True)
    vae = AutoencoderKL.from_pretrained(str(SOURCE / "vae")).eval()
    sf = vae.config.scaling_factor
    rng = np.random.default_rng([args.seed, 2026])
    scenes, latents, free = [], [], 0
    t0 = time.time()
    with torch.no_grad():
        for start in range(0, args.n, 250):
            batch, images = [], []
            for _ in range(min(250, args.n - start)):
                if rng.random() < FREE_SHARE:
                    scene = free_scene(rng)
                    image = render_free(rng, scene)
                    free += 1
                else:
                    scene = world.sample_scene(rng, p_pair=0.55, split="train")
                    image = world.render(scene)
                batch.append(scene)
                images.append(image)
            z = vae.encode(to_tensor(np.stack(images))).latent_dist.mode() * sf
            latents.append(z.to(torch.float16))
            scenes.extend(batch)
    torch.save({"latents": torch.cat(latents), "scenes": pickle.dumps(scenes), "scaling_factor": sf}, BANK)
    log(f"bank: {len(scenes)} scenes ({free} free layouts) in {time.time() - t0:.0f}s", LOG)


def train(args):
    import torch
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from studio.shapes import captions

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = torch.load(BANK, weights_only=False)
    lat, scenes = data["latents"], pickle.loads(data["scenes"])
    tok = CLIPTokenizer.from_pretrained(str(SOURCE / "tokenizer"))
    te = CLIPTextModel.from_pretrained(str(SOURCE / "text_encoder")).eval()
    unet = UNet2DConditionModel.from_pretrained(str(SOURCE / "unet"))
    ema = copy.deepcopy(unet).eval()
    for p in list(te.parameters()) + list(ema.parameters()):
        p.requires_grad_(False)
    opt = torch.optim.AdamW(unet.parameters(), lr=args.lr, weight_decay=0.01)
    acp = DDPMScheduler.from_pretrained(str(SOURCE / "scheduler")).alphas_cumprod.float()  # the shipped schedule
    ck = RUN / "ckpt.pt"
    step = 0
    if ck.exists():
        st = load_ckpt(ck)
        unet.load_state_dict(st["unet"])
        ema.load_state_dict(st["ema"])
        opt.load_state_dict(st["opt"])
        step = st["step"]
        log(f"train: resumed at step {step}", LOG)

    def save():
        save_ckpt(ck, {"unet": unet.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "step": step})

    t0 = last = time.time()
    avg = None
    unet.train()
    while time.time() - t0 < args.minutes * 60:
        rng = batch_rng(args.seed + 1, step)
        idx = rng.integers(0, lat.shape[0], size=args.batch)
        x0 = lat[torch.from_numpy(idx)].float()
        caps = ["" if rng.random() < 0.1 else captions.caption(scenes[int(i)], rng) for i in idx]
        ids = tok(caps, padding="max_length", max_length=tok.model_max_length, truncation=True,
                  return_tensors="pt").input_ids
        with torch.no_grad():
            emb = te(ids)[0]
        g = torch.Generator().manual_seed(int(rng.integers(2**31)))
        noise = torch.randn(x0.shape, generator=g)
        t = torch.randint(0, 1000, (args.batch,), generator=g)
        a = acp[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        lr = args.lr * min(1.0, (step + 1) / args.warmup)
        for group in opt.param_groups:
            group["lr"] = lr
        pred = unet(xt, t, emb).sample
        loss = min_snr_loss(pred, x0, noise, a)  # v-prediction, min-SNR-5: as the UNet was trained
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        step += 1
        ema_update(unet, ema, min(args.ema, (1 + step) / (10 + step)))
        avg = loss.item() if avg is None else 0.98 * avg + 0.02 * loss.item()
        if step % 25 == 0:
            log(f"step {step} loss {avg:.4f} lr {lr:.1e} {(time.time() - t0) / 60:.1f} min", LOG)
        if time.time() - last > 180:
            save()
            last = time.time()
    save()
    log(f"train: stopped at step {step}", LOG)


def export(args):
    import torch
    from diffusers import UNet2DConditionModel

    st = load_ckpt(RUN / "ckpt.pt")
    unet = UNet2DConditionModel.from_pretrained(str(SOURCE / "unet"))
    unet.load_state_dict(st["ema"])
    out = Path(args.out)
    tmp = out.with_name(out.name + ".new")
    shutil.rmtree(tmp, ignore_errors=True)
    unet.to(torch.float32).save_pretrained(str(tmp), safe_serialization=True)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    log(f"export: step {st['step']} EMA weights -> {out}", LOG)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stage", choices=["bank", "train", "export"])
    ap.add_argument("--n", type=int, default=24000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--ema", type=float, default=0.995)
    ap.add_argument("--out", default=str(RUN / "unet"))
    args = ap.parse_args()
    {"bank": build_bank, "train": train, "export": export}[args.stage](args)


if __name__ == "__main__":
    main()
