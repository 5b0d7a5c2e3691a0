"""Train the Shapes text-to-image model (a standard diffusers StableDiffusionPipeline).

Stages (each resumable; ``--stage all`` runs them in order):

  vae      AutoencoderKL 64x64x3 -> 16x16x4 on renders of the Shapes world
  vaedec   (optional, any time) decoder-only fine-tune; the encoder is frozen so cached latents stay valid
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
import os
import shutil
import time
from pathlib import Path

import numpy as np
from shapes_common import (
    REPO,
    RUNS,
    batch_rng,
    ema_update,
    load_ckpt,
    log,
    min_snr_loss,
    render_batch,
    save_ckpt,
    to_tensor,
    write_json,
)

RUN = Path(os.environ.get("SHAPES_SD_RUN", str(RUNS / "shapes_sd")))
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
    block_out_channels=(48, 96, 96),
    layers_per_block=1,
    cross_attention_dim=128,
    attention_head_dim=4,  # (diffusers legacy naming: number of heads)
    norm_num_groups=16,
)


# ---------------------------------------------------------------------------
# VAE


def make_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(**VAE_CONFIG)


def stage_vae(args):
    import torch

    from studio.shapes import world as W

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
        scenes, imgs = render_batch(rng, args.vae_batch, split="train")
        x = to_tensor(imgs)
        # up-weight object pixels (anything that is not the flat background)
        bg = torch.tensor([W.PALETTE[s.background] for s in scenes], dtype=torch.float32).view(-1, 3, 1, 1) / 127.5 - 1
        wmap = 1.0 + args.vae_fg_weight * ((x - bg).abs().amax(dim=1, keepdim=True) > 0.05).float()
        lr = args.vae_lr * min(1.0, (step + 1) / 200)
        for g in opt.param_groups:
            g["lr"] = lr
        post = vae.encode(x).latent_dist
        z = post.sample()
        y = vae.decode(z).sample
        mse = torch.mean((y - x) ** 2)
        err = wmap * ((y - x) ** 2 + 0.5 * (y - x).abs())
        loss = err.mean() + args.vae_kl * post.kl().mean()
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



def stage_vaedec(args):
    """Decoder-only fine-tune of the trained VAE (encoder frozen => cached latents stay valid)."""
    import torch
    from diffusers import AutoencoderKL

    from studio.shapes import world as W

    torch.manual_seed(args.seed + 5)
    vae = AutoencoderKL.from_pretrained(str(RUN / "vae"))
    sf = vae.config.scaling_factor
    for p in vae.encoder.parameters():
        p.requires_grad_(False)
    for p in vae.quant_conv.parameters():
        p.requires_grad_(False)
    dec_params = [p for p in vae.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(dec_params, lr=args.vae_lr * 0.5, weight_decay=0.0)
    ck = RUN / "vaedec_ckpt.pt"
    step = 0
    if args.resume and ck.exists():
        st = load_ckpt(ck)
        vae.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step = st["step"]
        log(f"vaedec: resumed at step {step}", LOG)
    t0 = time.time()
    last_ck = time.time()
    ema = None

    def save():
        save_ckpt(ck, {"model": vae.state_dict(), "opt": opt.state_dict(), "step": step})
        vae.save_pretrained(RUN / "vae")  # same encoder, better decoder

    while step < args.vae_steps and time.time() - t0 < args.minutes * 60:
        rng = batch_rng(args.seed + 99, step)
        scenes, imgs = render_batch(rng, args.vae_batch, split="train")
        x = to_tensor(imgs)
        bg = torch.tensor([W.PALETTE[s.background] for s in scenes], dtype=torch.float32).view(-1, 3, 1, 1) / 127.5 - 1
        wmap = 1.0 + args.vae_fg_weight * ((x - bg).abs().amax(dim=1, keepdim=True) > 0.05).float()
        with torch.no_grad():
            z = vae.encode(x).latent_dist.mode()
            z = z + torch.randn_like(z) * (args.dec_noise / sf)  # robustness to imperfect generated latents
        y = vae.decode(z).sample
        mse = torch.mean((y - x) ** 2)
        loss = (wmap * ((y - x) ** 2 + 0.5 * (y - x).abs())).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(dec_params, 1.0)
        opt.step()
        step += 1
        psnr = 10 * math.log10(4.0 / max(mse.item(), 1e-10))
        ema = psnr if ema is None else 0.95 * ema + 0.05 * psnr
        if step % 50 == 0:
            log(f"vaedec step {step} psnr~{ema:.2f}dB {time.time() - t0:.0f}s", LOG)
        if time.time() - last_ck > args.ckpt_seconds:
            save()
            last_ck = time.time()
    save()
    log(f"vaedec: stopped at step {step}", LOG)


# ---------------------------------------------------------------------------
# tokenizer


def stage_tok(args):
    import make_tokenizer

    make_tokenizer.build(RUN / "tokenizer", seed=args.seed)


def load_tokenizer():
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(RUN / "tokenizer"))


# ---------------------------------------------------------------------------
# cached latent dataset


def stage_latents(args):
    import pickle

    import torch
    from diffusers import AutoencoderKL

    from studio.shapes import world as W

    out = RUN / "latents.pt"
    if args.resume and out.exists():
        log("latents: exist, skipping", LOG)
        return
    vae = AutoencoderKL.from_pretrained(str(RUN / "vae")).eval()
    sf = vae.config.scaling_factor
    rng = np.random.default_rng([args.seed, 777])
    scenes, lat = [], []
    t0 = time.time()
    bs = 250
    with torch.no_grad():
        for i in range(0, args.n_latents, bs):
            sc = [W.sample_scene(rng, p_pair=args.p_pair, split="train") for _ in range(bs)]
            imgs = np.stack([W.render(s) for s in sc])
            z = vae.encode(to_tensor(imgs)).latent_dist.mode() * sf
            lat.append(z.to(torch.float16))
            scenes.extend(sc)
            if (i // bs) % 20 == 0:
                log(f"latents: {i + bs}/{args.n_latents} {time.time() - t0:.0f}s", LOG)
    lat = torch.cat(lat)
    torch.save({"latents": lat, "scenes": pickle.dumps(scenes), "scaling_factor": sf}, out)
    log(f"latents: {tuple(lat.shape)} std {float(lat.float().std()):.3f} in {time.time() - t0:.0f}s", LOG)


# ---------------------------------------------------------------------------
# text encoder + UNet


def make_text_encoder(tok, config: dict | None = None):
    from transformers import CLIPTextConfig, CLIPTextModel

    cfg = CLIPTextConfig(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, **(config or TEXT_CONFIG))
    return CLIPTextModel(cfg)


def make_unet(config: dict | None = None):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**(config or UNET_CONFIG))


def make_train_scheduler(prediction_type: str = "v_prediction"):
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=0.0001, beta_end=0.02,
                         prediction_type=prediction_type, clip_sample=False)


def stage_unet(args):
    import copy
    import pickle

    import torch

    from studio.shapes import captions as C

    torch.manual_seed(args.seed)
    tok = load_tokenizer()
    data = torch.load(RUN / "latents.pt", weights_only=False)
    lat = data["latents"]
    scenes = pickle.loads(data["scenes"])
    n = lat.shape[0]
    te = make_text_encoder(tok)
    unet = make_unet()
    params = list(unet.parameters()) + list(te.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    ema_unet, ema_te = copy.deepcopy(unet).eval(), copy.deepcopy(te).eval()
    for p in list(ema_unet.parameters()) + list(ema_te.parameters()):
        p.requires_grad_(False)
    sched = make_train_scheduler(args.prediction)
    acp = sched.alphas_cumprod.float()
    ck = RUN / "unet_ckpt.pt"
    step = 0
    history = []
    if args.resume and ck.exists():
        st = load_ckpt(ck)
        unet.load_state_dict(st["unet"])
        te.load_state_dict(st["te"])
        ema_unet.load_state_dict(st["ema_unet"])
        ema_te.load_state_dict(st["ema_te"])
        opt.load_state_dict(st["opt"])
        step = st["step"]
        history = st.get("history", [{"prediction": st.get("prediction", "epsilon"), "from_step": 0}])
        log(f"unet: resumed at step {step} (checkpoint prediction {st.get('prediction', 'epsilon')})", LOG)
    if not history or history[-1]["prediction"] != args.prediction:
        history.append({"prediction": args.prediction, "from_step": step})
        log(f"unet: training objective {args.prediction} from step {step} (EMA restarted)", LOG)
        ema_unet.load_state_dict(unet.state_dict())
        ema_te.load_state_dict(te.state_dict())
    ema_start = history[-1]["from_step"]
    log(f"unet: {sum(p.numel() for p in unet.parameters())} params, text encoder "
        f"{sum(p.numel() for p in te.parameters())}, data {n}, batch {args.batch}", LOG)

    def save():
        save_ckpt(ck, {"unet": unet.state_dict(), "te": te.state_dict(), "ema_unet": ema_unet.state_dict(),
                       "ema_te": ema_te.state_dict(), "opt": opt.state_dict(), "step": step,
                       "unet_config": UNET_CONFIG, "text_config": TEXT_CONFIG, "prediction": args.prediction,
                       "history": history})

    t0 = time.time()
    last_ck = time.time()
    avg = None
    unet.train()
    te.train()
    while step < args.steps and time.time() - t0 < args.minutes * 60:
        rng = batch_rng(args.seed + 1, step)
        idx = rng.integers(0, n, size=args.batch)
        x0 = lat[torch.from_numpy(idx)].float()
        caps = []
        for i in idx:
            caps.append("" if rng.random() < args.cfg_drop else C.caption(scenes[int(i)], rng))
        ids = tok(caps, padding="max_length", max_length=tok.model_max_length, truncation=True,
                  return_tensors="pt").input_ids
        g = torch.Generator().manual_seed(int(rng.integers(2**31)))
        noise = torch.randn(x0.shape, generator=g)
        t = torch.randint(0, 1000, (args.batch,), generator=g)
        a = acp[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        lr = args.lr * min(1.0, (step + 1) / args.warmup)
        for gr in opt.param_groups:
            gr["lr"] = lr
        emb = te(ids)[0]
        pred = unet(xt, t, emb).sample
        loss = min_snr_loss(pred, x0, noise, a, args.snr_gamma, args.prediction)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        decay = min(args.ema, (1 + step - ema_start) / (10 + step - ema_start))
        ema_update(unet, ema_unet, decay)
        ema_update(te, ema_te, decay)
        avg = loss.item() if avg is None else 0.98 * avg + 0.02 * loss.item()
        if step % 25 == 0:
            log(f"unet step {step} loss {avg:.4f} lr {lr:.1e} {(time.time() - t0) / 60:.1f}min", LOG)
        if time.time() - last_ck > args.ckpt_seconds:
            save()
            last_ck = time.time()
    save()
    log(f"unet: stopped at step {step}", LOG)


# ---------------------------------------------------------------------------
# export


def build_pipeline(use_ema: bool = True):
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, StableDiffusionPipeline

    tok = load_tokenizer()
    st = load_ckpt(RUN / "unet_ckpt.pt")
    # checkpoints record their own architecture (the accelerator script can train other widths)
    te = make_text_encoder(tok, st.get("text_config"))
    unet = make_unet(st.get("unet_config"))
    te.load_state_dict(st["ema_te" if use_ema else "te"])
    unet.load_state_dict(st["ema_unet" if use_ema else "unet"])
    vae = AutoencoderKL.from_pretrained(str(RUN / "vae"))
    sched = DPMSolverMultistepScheduler.from_config(make_train_scheduler(st.get("prediction", "epsilon")).config,
                                                    steps_offset=1,
                                                    timestep_spacing="trailing")
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=te.eval(), tokenizer=tok, unet=unet.eval(), scheduler=sched,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    return pipe, st["step"]


def stage_export(args):
    out = Path(args.export_dir)
    pipe, step = build_pipeline(use_ema=not args.no_ema)
    tmp = out.parent / (out.name + ".tmp_export")
    if tmp.exists():
        shutil.rmtree(tmp)
    pipe.save_pretrained(str(tmp), safe_serialization=True)
    for f in ("vocab.json", "merges.txt"):  # classic CLIP tokenizer files next to tokenizer.json
        shutil.copy2(RUN / "tokenizer" / f, tmp / "tokenizer" / f)
    # keep hand-written files (model card, grid, eval json) from the previous export
    if out.exists():
        for f in out.iterdir():
            if f.is_file() and f.name not in ("model_index.json",):
                shutil.copy2(f, tmp / f.name)
        shutil.rmtree(out)
    tmp.rename(out)
    write_json(out / "training_state.json",
               {"unet_step": step, "ema": not args.no_ema, "exported": time.strftime("%Y-%m-%d %H:%M:%S")})
    log(f"export: step {step} -> {out}", LOG)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", default="all", choices=["vae", "vaedec", "tok", "latents", "unet", "export", "all"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--minutes", type=float, default=1e9, help="wall-clock budget of a training stage")
    ap.add_argument("--ckpt-seconds", type=float, default=180)
    ap.add_argument("--vae-steps", type=int, default=3000)
    ap.add_argument("--vae-batch", type=int, default=24)
    ap.add_argument("--vae-lr", type=float, default=1e-3)
    ap.add_argument("--vae-kl", type=float, default=1e-6)
    ap.add_argument("--vae-fg-weight", type=float, default=4.0)
    ap.add_argument("--dec-noise", type=float, default=0.05, help="latent noise (scaled units) in vaedec")
    ap.add_argument("--n-latents", type=int, default=40000)
    ap.add_argument("--p-pair", type=float, default=0.55)
    ap.add_argument("--steps", type=int, default=100000, help="UNet optimisation steps")
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--cfg-drop", type=float, default=0.1)
    ap.add_argument("--snr-gamma", type=float, default=5.0)
    ap.add_argument("--prediction", default="v_prediction", choices=["v_prediction", "epsilon"])
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--no-ema", action="store_true", help="export the raw (non-EMA) weights")
    ap.add_argument("--export-dir", default=str(REPO / "assets" / "models" / "shapes-sd"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    RUN.mkdir(parents=True, exist_ok=True)
    stages = ["vae", "tok", "latents", "unet", "export"] if args.stage == "all" else [args.stage]
    for s in stages:
        globals()[f"stage_{s}"](args)


if __name__ == "__main__":
    main()
