"""Fit the Shapes VAE decoder to the latents the UNet actually produces (encoder frozen).

Why: ShapeEval's misses on shape were not the UNet drawing the wrong object.  Take a clean render
of a small square, encode it, and let the UNet denoise it from only 10% noise (img2img, strength
0.1): the decoded square comes out pinched into a four-pointed star, which the scorer (and a
person) reads as "not a square".  The encoder's latent of the same square decodes cleanly.  The
UNet's low-noise steps leave small-object latents slightly off the encoder's manifold, and the
decoder, trained only on encoder latents, turns that offset into pinched corners.

So the decoder is also trained on what it will really be given: a ground-truth render is encoded,
noised to a low strength (0.08-0.3: the layout never changes there, only the rendering) and
denoised by the shipped UNet with its caption, exactly as generation does; the decoder learns to
map that latent back to the ground-truth render.  Half of each batch stays plain reconstruction
(encoder latents of fresh renders), so encoding a user's image still round-trips.  The encoder,
and with it the latent space the UNet was trained in, does not change.

  python training/adapt_decoder.py bank --n 4000          # UNet-denoised latents + their renders
  python training/adapt_decoder.py train --minutes 40     # resumable; checkpoints every 3 min
  python training/adapt_decoder.py export --out assets/models/shapes-sd/vae

Pairs whose denoised latent no longer shows the same objects (count, colours, cells, read back
through the original decoder by the ShapeEval scorer) are dropped from the bank, so the decoder
is never taught to change content; the share dropped is logged.
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
from shapes_common import REPO, RUNS, batch_rng, free_scene, load_ckpt, log, render_free, save_ckpt, to_tensor

from studio.shapes import world

RUN = Path(os.environ.get("ADAPT_DECODER_RUN", str(RUNS / "adapt_decoder")))
LOG = RUN / "train.log"
BANK = RUN / "bank.pt"


def _same_layout(reading, scene) -> bool:
    """The objects are still there: same count, and each one's colour and cell (shape may differ)."""
    if len(reading.objects) != len(scene.objects):
        return False
    want = sorted((o.color, o.col, o.row) for o in scene.objects)
    got = sorted((o.color, o.col, o.row) for o in reading.objects)
    return want == got


def build_bank(args):
    import torch
    from diffusers import DiffusionPipeline, StableDiffusionImg2ImgPipeline
    from PIL import Image

    from studio.shapes import captions, scorer

    torch.set_num_threads(args.threads)
    RUN.mkdir(parents=True, exist_ok=True)
    pipe = DiffusionPipeline.from_pretrained(args.source)
    img2img = StableDiffusionImg2ImgPipeline(**pipe.components)
    img2img.set_progress_bar_config(disable=True)
    vae = pipe.vae
    sf = vae.config.scaling_factor
    bank = load_ckpt(BANK) if BANK.exists() else {"latents": [], "images": [], "backgrounds": [], "chunks": 0,
                                                   "kept": 0, "seen": 0}
    t0 = time.time()
    while bank["kept"] < args.n:
        chunk = bank["chunks"]
        rng = np.random.default_rng([args.seed, 777, chunk])
        scenes, renders = _scenes(rng, args.chunk, args)
        prompts = [captions.caption(s, rng) for s in scenes]
        strength = float(rng.uniform(args.min_strength, args.max_strength))
        gens = [torch.Generator().manual_seed(args.seed * 1_000_003 + chunk * args.chunk + j)
                for j in range(args.chunk)]
        with torch.no_grad():
            z = img2img(prompts, image=[Image.fromarray(r) for r in renders], strength=strength,
                        num_inference_steps=25, guidance_scale=7.5, generator=gens, output_type="latent").images
            decoded = vae.decode(z / sf).sample
        decoded = ((decoded.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
        keep = [j for j in range(args.chunk) if _same_layout(scorer.read_image(decoded[j]), scenes[j])]
        bank["latents"].append(z[keep].to(torch.float16))
        bank["images"].append(torch.from_numpy(np.stack([renders[j] for j in keep])))
        bank["backgrounds"].append(torch.tensor([scenes[j].bg for j in keep], dtype=torch.uint8))
        bank["chunks"] += 1
        bank["kept"] += len(keep)
        bank["seen"] += args.chunk
        if bank["chunks"] % 10 == 0 or bank["kept"] >= args.n:
            save_ckpt(BANK, bank)
            log(f"bank: {bank['kept']}/{args.n} pairs kept of {bank['seen']} "
                f"({100 * (1 - bank['kept'] / bank['seen']):.1f}% dropped: layout changed), "
                f"{time.time() - t0:.0f}s", LOG)


def _scenes(rng, n: int, args):
    """``n`` training scenes and their renders: the world's own, and ``args.free`` of them free layouts
    (any size and position, colours a little off, some hard-edged: what users draw)."""
    scenes, renders = [], []
    for _ in range(n):
        if rng.random() < args.free:
            scenes.append(free_scene(rng))
            renders.append(render_free(rng, scenes[-1]))
        else:
            scenes.append(world.sample_scene(rng, p_pair=args.p_pair, split="train"))
            renders.append(world.render(scenes[-1]))
    return scenes, np.stack(renders)


def _decoder_parameters(vae):
    for p in vae.encoder.parameters():
        p.requires_grad_(False)
    for p in vae.quant_conv.parameters():
        p.requires_grad_(False)
    return [p for p in vae.parameters() if p.requires_grad]


def train(args):
    import torch
    from diffusers import AutoencoderKL

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    ck = RUN / "decoder_ckpt.pt"
    vae = AutoencoderKL.from_pretrained(str(Path(args.source) / "vae"))
    sf = vae.config.scaling_factor
    params = _decoder_parameters(vae)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    step, trained_s = 0, 0.0
    if ck.exists():
        state = load_ckpt(ck)
        vae.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, trained_s = state["step"], state["trained_seconds"]
        log(f"train: resumed at step {step}", LOG)
    bank = load_ckpt(BANK)
    bank_z = torch.cat(bank["latents"]).float() / sf
    bank_x = torch.cat(bank["images"])
    bank_bg = torch.cat(bank["backgrounds"]).float() / 127.5 - 1
    n_bank = len(bank_z)
    log(f"train: {n_bank} bank pairs, batch {args.batch} ({args.batch // 2} bank + {args.batch - args.batch // 2} "
        f"fresh renders), lr {args.lr}", LOG)

    def save():
        save_ckpt(ck, {"model": vae.state_dict(), "opt": opt.state_dict(), "step": step, "trained_seconds": trained_s})

    t_call = last_ck = time.time()
    ema_gen = ema_rec = None
    while time.time() - t_call < args.minutes * 60:
        t_step = time.time()
        rng = batch_rng(args.seed + 31, step)
        half = args.batch // 2
        idx = torch.from_numpy(rng.integers(0, n_bank, half))
        scenes, renders = _scenes(rng, args.batch - half, args)
        x_fresh = to_tensor(renders)
        with torch.no_grad():
            z_fresh = vae.encode(x_fresh).latent_dist.mode()
            z_fresh = z_fresh + torch.randn_like(z_fresh) * (args.dec_noise / sf)
        z = torch.cat([bank_z[idx], z_fresh])
        x = torch.cat([to_tensor(bank_x[idx].numpy()), x_fresh])
        # object pixels weigh more: the background is most of every image and trivially easy
        fresh_bg = torch.tensor([s.bg for s in scenes], dtype=torch.float32) / 127.5 - 1
        bg = torch.cat([bank_bg[idx], fresh_bg]).view(-1, 3, 1, 1)
        wmap = 1.0 + args.fg_weight * ((x - bg).abs().amax(dim=1, keepdim=True) > 0.05).float()
        lr = args.lr * min(1.0, (step + 1) / args.warmup)
        for group in opt.param_groups:
            group["lr"] = lr
        y = vae.decode(z).sample
        err = y - x
        loss = (wmap * (err ** 2 + 0.5 * err.abs())).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        trained_s += time.time() - t_step
        with torch.no_grad():
            mse = (err.detach() ** 2).mean(dim=(1, 2, 3))
            gen_psnr = 10 * math.log10(4.0 / max(mse[:half].mean().item(), 1e-10))
            rec_psnr = 10 * math.log10(4.0 / max(mse[half:].mean().item(), 1e-10))
        ema_gen = gen_psnr if ema_gen is None else 0.95 * ema_gen + 0.05 * gen_psnr
        ema_rec = rec_psnr if ema_rec is None else 0.95 * ema_rec + 0.05 * rec_psnr
        if step % 50 == 0:
            log(f"step {step} psnr: UNet latents {ema_gen:.2f} dB, encoder latents {ema_rec:.2f} dB "
                f"({trained_s / 60:.1f} min)", LOG)
        if time.time() - last_ck > args.ckpt_seconds:
            save()
            last_ck = time.time()
    save()
    log(f"train: stopped at step {step} ({trained_s / 60:.1f} min trained)", LOG)


def export(args):
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(str(Path(args.source) / "vae"))
    vae.load_state_dict(load_ckpt(RUN / "decoder_ckpt.pt")["model"])
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    vae.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    log(f"export: decoder -> {out}", LOG)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["bank", "train", "export"])
    ap.add_argument("--source", default=str(REPO / "assets" / "models" / "shapes-sd"),
                    help="pipeline folder whose UNet makes the latents and whose VAE is fine-tuned")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=4000, help="bank pairs to keep")
    ap.add_argument("--chunk", type=int, default=32, help="scenes denoised together (one strength per chunk)")
    ap.add_argument("--p-pair", type=float, default=0.6, help="share of two-object scenes")
    ap.add_argument("--free", type=float, default=0.0,
                    help="share of free-layout scenes (any size and position) in the bank and the fresh half")
    ap.add_argument("--min-strength", type=float, default=0.08)
    ap.add_argument("--max-strength", type=float, default=0.3)
    ap.add_argument("--minutes", type=float, default=40)
    ap.add_argument("--batch", type=int, default=24)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--fg-weight", type=float, default=4.0)
    ap.add_argument("--dec-noise", type=float, default=0.05, help="latent noise on the fresh half (scaled units)")
    ap.add_argument("--ckpt-seconds", type=float, default=180)
    ap.add_argument("--out", default=str(RUN / "vae"))
    args = ap.parse_args()
    {"bank": build_bank, "train": train, "export": export}[args.what](args)


if __name__ == "__main__":
    main()
