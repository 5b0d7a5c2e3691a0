"""Train the Shapes text-to-image UNet + text encoder on an accelerator (a lent GPU).

Same objective as the ``unet`` stage of ``train_shapes_sd.py`` (DDPM 1000 steps, v-prediction,
min-SNR-5 weighting, caption dropout, EMA), reorganised so a GPU is not starved by Python:

  * a data bank is built once: N scenes of the training split rendered in parallel worker
    processes, K captions per scene tokenised there, and the images encoded with the shipped VAE
    on the device.  Batches are then drawn by indexing tensors that live on the GPU.
  * bf16 autocast, fused AdamW, foreach EMA.
  * the learning rate warms up, then follows a cosine over a *wall-clock* budget
    (``--total-minutes``) that spans several resumed calls (a lent machine runs 10 minutes
    at a time).
  * ``--init-from FOLDER`` starts from a pipeline folder's UNet and text encoder (fine-tuning the
    shipped model); otherwise from scratch with ``--unet-width``.

The checkpoint (``$SHAPES_SD_RUN/unet_ckpt.pt``) has the format of ``train_shapes_sd.py``, whose
``export`` stage writes the pipeline folder:

  python training/train_shapes_sd_gpu.py bank --n 500000                          # once per machine
  SHAPES_SD_RUN=training/runs/sd_a python training/train_shapes_sd_gpu.py train \\
      --init-from assets/models/shapes-sd --minutes 7 --total-minutes 14
  SHAPES_SD_RUN=training/runs/sd_a python training/train_shapes_sd.py --stage export --export-dir /tmp/x

``training/gpu_session.sh`` is the exact sequence that produced the shipped weights.
"""
from __future__ import annotations

import argparse
import copy
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
from shapes_common import REPO, RUNS, load_ckpt, log, save_ckpt

BANK = RUNS / "shapes_bank.pt"
CHUNK = 2000
_worker_tokenizers: dict = {}


def _bank_chunk(job):
    """Worker: render one chunk of training scenes and tokenise K captions for each."""
    seed, index, n, k, p_pair, tokenizer_dir = job
    from transformers import CLIPTokenizerFast

    from studio.shapes import captions as C
    from studio.shapes import world as W

    if tokenizer_dir not in _worker_tokenizers:
        _worker_tokenizers[tokenizer_dir] = CLIPTokenizerFast.from_pretrained(tokenizer_dir)
    tok = _worker_tokenizers[tokenizer_dir]
    rng = np.random.default_rng([seed, 4242, index])
    scenes = [W.sample_scene(rng, p_pair=p_pair, split="train") for _ in range(n)]
    images = np.stack([W.render(s) for s in scenes])
    captions = [C.caption(s, rng) for s in scenes for _ in range(k)]
    ids = tok(captions, padding="max_length", max_length=tok.model_max_length, truncation=True,
              return_tensors="np").input_ids.astype(np.int16).reshape(n, k, -1)
    return images, ids


def build_bank(args):
    import multiprocessing as mp

    import torch
    from diffusers import AutoencoderKL

    source = Path(args.source)
    device = torch.device(args.device)
    vae = AutoencoderKL.from_pretrained(str(source / "vae")).to(device).eval()
    sf = vae.config.scaling_factor
    jobs = [(args.seed, i, min(CHUNK, args.n - i * CHUNK), args.k, args.p_pair, str(source / "tokenizer"))
            for i in range((args.n + CHUNK - 1) // CHUNK)]
    latents, ids = [], []
    t0 = time.time()
    # spawn, not fork: the parent has CUDA initialised
    with mp.get_context("spawn").Pool(args.workers) as pool:
        for j, (images, chunk_ids) in enumerate(pool.imap(_bank_chunk, jobs)):
            x = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            with torch.no_grad():
                z = vae.encode(x).latent_dist.mode() * sf
            latents.append(z.to(torch.float16).cpu())
            ids.append(torch.from_numpy(chunk_ids))
            if j % 25 == 0:
                log(f"bank: {(j + 1) * CHUNK}/{args.n} scenes {time.time() - t0:.0f}s")
    bank = {"latents": torch.cat(latents), "ids": torch.cat(ids), "scaling_factor": sf,
            "n": args.n, "k": args.k, "p_pair": args.p_pair, "seed": args.seed, "source": str(source)}
    BANK.parent.mkdir(parents=True, exist_ok=True)
    torch.save(bank, BANK)
    log(f"bank: {tuple(bank['latents'].shape)} latents, {tuple(bank['ids'].shape)} token ids, "
        f"latent std {float(bank['latents'][:5000].float().std()):.3f}, {time.time() - t0:.0f}s -> {BANK}")


def _copy_frozen_parts(source: Path, run: Path) -> None:
    """The export stage reads the VAE and tokenizer from the run folder; they are not trained here."""
    for part in ("vae", "tokenizer"):
        if not (run / part).exists():
            shutil.copytree(source / part, run / part)


def train(args):
    import torch

    os.environ.setdefault("SHAPES_SD_RUN", str(RUNS / "shapes_sd_gpu"))
    import train_shapes_sd as T  # reads SHAPES_SD_RUN at import

    run = T.RUN
    run.mkdir(parents=True, exist_ok=True)
    logfile = run / "train.log"
    source = Path(args.source)
    _copy_frozen_parts(source, run)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True

    tok = T.load_tokenizer()
    unet_config = dict(T.UNET_CONFIG)
    if args.unet_width:
        unet_config["block_out_channels"] = tuple(int(w) for w in args.unet_width.split(","))
    te = T.make_text_encoder(tok)
    ck = run / "unet_ckpt.pt"
    state = None
    if ck.exists():
        state = load_ckpt(ck)
        unet_config = dict(state["unet_config"])
    unet = T.make_unet(unet_config)
    if state is not None:
        unet.load_state_dict(state["unet"])
        te.load_state_dict(state["te"])
    elif args.init_from:
        from diffusers import UNet2DConditionModel
        from transformers import CLIPTextModel

        init = Path(args.init_from)
        unet = UNet2DConditionModel.from_pretrained(str(init / "unet"))
        te = CLIPTextModel.from_pretrained(str(init / "text_encoder"))
        unet_config = {k: (tuple(v) if isinstance(v, list) else v) for k, v in T.UNET_CONFIG.items()}
        unet_config.update({k: (tuple(unet.config[k]) if isinstance(unet.config[k], list) else unet.config[k])
                            for k in T.UNET_CONFIG})
    unet.to(device).train()
    te.to(device).train()
    ema_unet, ema_te = copy.deepcopy(unet).eval(), copy.deepcopy(te).eval()
    if state is not None:
        ema_unet.load_state_dict(state["ema_unet"])
        ema_te.load_state_dict(state["ema_te"])
    params = list(unet.parameters()) + list(te.parameters())
    ema_params = list(ema_unet.parameters()) + list(ema_te.parameters())
    for p in ema_params:
        p.requires_grad_(False)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01, fused=device.type == "cuda")
    step, trained_s = 0, 0.0
    history = [{"prediction": "v_prediction", "from_step": 0,
                "note": f"accelerator run, init {'checkpoint' if state else (args.init_from or 'scratch')}"}]
    if state is not None:
        opt.load_state_dict(state["opt"])
        step, trained_s = state["step"], state.get("trained_seconds", 0.0)
        history = state.get("history", history)
        log(f"train: resumed at step {step} ({trained_s / 60:.1f} min trained)", logfile)

    bank = torch.load(BANK, weights_only=False)
    lat = bank["latents"].to(device)
    ids = bank["ids"].to(device).long()
    n, k = ids.shape[0], ids.shape[1]
    empty = tok([""], padding="max_length", max_length=tok.model_max_length,
                return_tensors="pt").input_ids.to(device)
    sched = T.make_train_scheduler("v_prediction")
    acp = sched.alphas_cumprod.float().to(device)
    log(f"train: unet {sum(p.numel() for p in unet.parameters())} params {unet_config['block_out_channels']}, "
        f"text encoder {sum(p.numel() for p in te.parameters())}, bank {n}x{k} captions, batch {args.batch}, "
        f"lr {args.lr}, device {device}", logfile)

    def save():
        save_ckpt(ck, {"unet": unet.state_dict(), "te": te.state_dict(), "ema_unet": ema_unet.state_dict(),
                       "ema_te": ema_te.state_dict(), "opt": opt.state_dict(), "step": step,
                       "trained_seconds": trained_s, "unet_config": unet_config, "text_config": T.TEXT_CONFIG,
                       "prediction": "v_prediction", "history": history, "bank": {key: bank[key] for key in
                                                                                ("n", "k", "p_pair", "seed")}})

    def lr_at(step: int, trained_s: float) -> float:
        warm = min(1.0, (step + 1) / args.warmup)
        progress = min(1.0, trained_s / (args.total_minutes * 60))
        return args.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    gen = torch.Generator(device=device).manual_seed(args.seed * 100003 + step)
    t_call = time.time()
    last_ck = last_log = time.time()
    avg = None
    while time.time() - t_call < args.minutes * 60 and trained_s < args.total_minutes * 60:
        t_step = time.time()
        b = args.batch
        idx = torch.randint(0, n, (b,), device=device, generator=gen)
        which = torch.randint(0, k, (b,), device=device, generator=gen)
        tokens = ids[idx, which]
        drop = torch.rand(b, device=device, generator=gen) < args.cfg_drop
        tokens = torch.where(drop[:, None], empty.expand(b, -1), tokens)
        x0 = lat[idx].float()
        noise = torch.randn(x0.shape, device=device, generator=gen)
        t = torch.randint(0, 1000, (b,), device=device, generator=gen)
        a = acp[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        target = a.sqrt() * noise - (1 - a).sqrt() * x0  # v = sqrt(a) eps - sqrt(1-a) x0
        snr = a.view(-1) / (1 - a.view(-1))
        w = torch.clamp(snr, max=args.snr_gamma) / (snr + 1)  # min-SNR weighting for v-prediction
        lr = lr_at(step, trained_s)
        for group in opt.param_groups:
            group["lr"] = lr
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
            emb = te(tokens)[0]
            pred = unet(xt, t, emb).sample
        loss = (w * ((pred.float() - target) ** 2).mean(dim=(1, 2, 3))).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        with torch.no_grad():
            torch._foreach_lerp_(ema_params, params, 1 - args.ema)
        if step % 50 == 0:
            value = loss.item()  # syncs; only every 50 steps
            avg = value if avg is None else 0.9 * avg + 0.1 * value
        trained_s += time.time() - t_step
        if time.time() - last_log > 30:
            log(f"step {step} loss {avg if avg is not None else float('nan'):.4f} lr {lr:.2e} "
                f"{trained_s / 60:.1f}/{args.total_minutes:g} min", logfile)
            last_log = time.time()
        if time.time() - last_ck > args.ckpt_seconds:
            save()
            last_ck = time.time()
    save()
    log(f"train: stopped at step {step}, {trained_s / 60:.1f} min trained", logfile)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["bank", "train"])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--source", default=str(REPO / "assets" / "models" / "shapes-sd"),
                    help="pipeline folder whose VAE and tokenizer are used (frozen)")
    # bank
    ap.add_argument("--n", type=int, default=500_000, help="scenes in the data bank")
    ap.add_argument("--k", type=int, default=8, help="captions per scene")
    ap.add_argument("--p-pair", type=float, default=0.6, help="share of two-object scenes")
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    # train
    ap.add_argument("--init-from", default=None, help="pipeline folder to start the UNet + text encoder from")
    ap.add_argument("--unet-width", default=None,
                    help="UNet block_out_channels for a from-scratch run, e.g. 64,128,128")
    ap.add_argument("--minutes", type=float, default=8, help="wall-clock budget of this call")
    ap.add_argument("--total-minutes", type=float, default=16, help="training time the lr cosine spans")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--cfg-drop", type=float, default=0.1)
    ap.add_argument("--snr-gamma", type=float, default=5.0)
    ap.add_argument("--ema", type=float, default=0.9995)
    ap.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--ckpt-seconds", type=float, default=120)
    args = ap.parse_args()
    build_bank(args) if args.what == "bank" else train(args)


if __name__ == "__main__":
    main()
