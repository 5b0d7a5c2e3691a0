"""Train the Shapes vector-latent VAE (Latent panel default) and export it with named directions.

Data: single-object scenes of the continuous Shapes world (studio.shapes.world.
sample_continuous_scene): shape in {circle, square, triangle}, centre x, y in
[12, 52] px, half-size in [4, 11] px, hue in [0, 0.8] (S=0.85, V=0.95),
background black or white.  Rendered on the fly, seeded per step.

Loss: Gaussian reconstruction (sum of squared errors / (2 * sigma^2), object
pixels weighted 1 + fg_weight) + beta * KL
+ an auxiliary LINEAR probe from the latent mean to the ground-truth factors
(x, y, size, hue, background, shape one-hot) so that the factors are linearly
readable from the latent -> straight latent lines move / grow / recolour.

  nice -n 10 python training/train_vector_vae.py --minutes 30 --resume   # train
  python training/train_vector_vae.py --export                            # directions + assets/models/shapes-vae

Checkpoints: training/runs/vector_vae/ckpt.pt
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from shapes_common import REPO, RUNS, batch_rng, load_ckpt, log, save_ckpt

from studio.shapes import world

RUN = RUNS / "vector_vae"
LOG = RUN / "train.log"
FACTOR_NAMES = ["x", "y", "size", "hue", "background", "shape_circle", "shape_square", "shape_triangle"]
CONTINUOUS = ["x", "y", "size", "hue"]


def factor_vector(f: dict) -> np.ndarray:
    """Ground-truth factors in natural units: x, y (px), size = half-size (px), hue, bg (white=1), shape one-hot."""
    return np.array([f["x"], f["y"], f["half"], f["hue"], 1.0 if f["background"] == "white" else 0.0,
                     f["shape"] == "circle", f["shape"] == "square", f["shape"] == "triangle"], dtype=np.float64)


#: scale used by the probe loss (factor / scale is ~unit range)
FACTOR_SCALE = np.array([40.0, 40.0, 7.0, 0.8, 1.0, 1.0, 1.0, 1.0])
FACTOR_OFFSET = np.array([12.0, 12.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0])


def sample_batch(rng, n: int):
    imgs, facts = [], []
    for _ in range(n):
        sc, f = world.sample_continuous_scene(rng)
        imgs.append(world.render(sc))
        facts.append(factor_vector(f))
    return np.stack(imgs), np.stack(facts)


def to_unit(imgs):
    import torch

    return torch.from_numpy(imgs).float().permute(0, 3, 1, 2) / 255.0


def train(args):
    import torch

    from studio.shapes.vector_vae import VectorVAE

    torch.manual_seed(args.seed)
    model = VectorVAE({"latent_dim": args.latent_dim})
    probe = torch.nn.Linear(args.latent_dim, len(FACTOR_NAMES))
    params = list(model.parameters()) + list(probe.parameters())
    opt = torch.optim.Adam(params, lr=args.lr)
    ck = RUN / "ckpt.pt"
    step = 0
    if args.resume and ck.exists():
        st = load_ckpt(ck)
        model.load_state_dict(st["model"])
        probe.load_state_dict(st["probe"])
        step = st["step"]
        if args.supervised and not st.get("supervised", False):
            # switch to the supervised latent: keep the conv features, re-initialise the latent layers
            model.enc_out.reset_parameters()
            model.dec_in.reset_parameters()
            opt = torch.optim.Adam(params, lr=args.lr)
            log(f"vvae: switched to supervised latent at step {step} (latent layers re-initialised)", LOG)
        else:
            opt.load_state_dict(st["opt"])
        log(f"vvae: resumed at step {step}", LOG)
    log(f"vvae: {sum(p.numel() for p in model.parameters())} params, latent {args.latent_dim}, batch {args.batch}", LOG)
    w_rec = 1.0 / (2 * args.sigma ** 2)
    scale = torch.tensor(FACTOR_SCALE, dtype=torch.float32)
    offset = torch.tensor(FACTOR_OFFSET, dtype=torch.float32)
    t0 = time.time()
    last = time.time()
    avg = {}
    start_step = step if args.lr_restart else 0
    model.train()
    while step < args.steps and time.time() - t0 < args.minutes * 60:
        rng = batch_rng(args.seed, step)
        imgs, facts = sample_batch(rng, args.batch)
        x = to_unit(imgs)
        f = (torch.from_numpy(facts).float() - offset) / scale
        frac = (step - start_step) / max(args.steps - start_step, 1)
        lr = args.lr * min(1.0, (step + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * min(frac, 1.0))))
        for g in opt.param_groups:
            g["lr"] = lr
        if args.supervised and (args.free_noise > 0 or args.zero_free):
            # free dims get a fixed, large posterior noise so the decoder must read the factors
            # from the (precise) supervised dims
            k = len(FACTOR_NAMES)
            mu, logvar = model.encode(x)
            zs = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            if args.zero_free:
                free = torch.zeros_like(mu[:, k:])
            else:
                free = mu[:, k:] + args.free_noise * torch.randn_like(mu[:, k:])
            zs = torch.cat([zs[:, :k], free], dim=1)
            y = model.decode(zs)
        else:
            y, mu, logvar = model(x)
        bgc = torch.tensor([[1.0, 1.0, 1.0] if f_[4] > 0.5 else [0.0, 0.0, 0.0] for f_ in facts], dtype=torch.float32)
        bgc = bgc.view(-1, 3, 1, 1) * (world.PALETTE["white"][0] / 255.0) + (1 - bgc.view(-1, 3, 1, 1)) * (
            world.PALETTE["black"][0] / 255.0)
        wmap = 1.0 + args.fg_weight * ((x - bgc).abs().amax(dim=1, keepdim=True) > 0.02).float()
        sse = ((y - x) ** 2).sum(dim=(1, 2, 3))
        wsse = (wmap * (y - x) ** 2).sum(dim=(1, 2, 3))
        kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(dim=1)
        probe_err = ((probe(mu) - f) ** 2).sum(dim=1)
        if args.supervised:
            # the first len(FACTOR_NAMES) latent dims ARE the factors (scaled to [-1, 1]); the rest are free
            k = len(FACTOR_NAMES)
            sup_err = ((mu[:, :k] - (2 * f - 1)) ** 2).sum(dim=1)
            kl_free = 0.5 * (mu[:, k:] ** 2 + logvar[:, k:].exp() - 1 - logvar[:, k:]).sum(dim=1)
            kl_sup = 0.5 * (logvar[:, :k].exp() - 1 - logvar[:, :k]).sum(dim=1)  # variance term only
            kl = kl_free + kl_sup
            loss = (w_rec * wsse + args.beta * kl_sup + args.beta_free * kl_free
                    + args.sup_weight * sup_err).mean() / 1000.0
            probe_err = sup_err
        else:
            loss = (w_rec * wsse + args.beta * kl + args.probe_weight * probe_err).mean() / 1000.0
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        step += 1
        mse = float(sse.mean()) / x[0].numel()
        for k, v in (("psnr", 10 * np.log10(1.0 / max(mse, 1e-10))), ("kl", float(kl.mean())),
                     ("probe", float(probe_err.mean()))):
            avg[k] = v if k not in avg else 0.95 * avg[k] + 0.05 * v
        if step % 50 == 0:
            log(f"vvae step {step} psnr~{avg['psnr']:.2f} kl {avg['kl']:.1f} probe {avg['probe']:.4f} lr {lr:.1e} "
                f"{(time.time() - t0) / 60:.1f}min", LOG)
        if time.time() - last > args.ckpt_seconds:
            save_ckpt(ck, {"model": model.state_dict(), "probe": probe.state_dict(), "opt": opt.state_dict(),
                           "step": step, "config": model.config, "supervised": args.supervised})
            last = time.time()
    save_ckpt(ck, {"model": model.state_dict(), "probe": probe.state_dict(), "opt": opt.state_dict(), "step": step,
                   "config": model.config, "supervised": args.supervised})
    log(f"vvae: stopped at step {step}", LOG)


def compute_directions(model, n: int = 4000, seed: int = 9001, n_pca: int = 8):
    """Named directions from ground-truth labels + PCA directions.

    For every factor k a linear model factor = W z + b is fitted on latent means.
    * ``<name>``: conditional direction = column k of pinv(W_c), W_c = rows of
      x, y, size, hue, background (changes factor k by +1 unit while the linear
      read-out of the other ones stays fixed), normalised to unit length
      (InterFaceGAN's conditional manipulation).  Shape one-hots use their
      boundary normal.
    * ``boundary_<name>``: the raw unit normal W[k] / |W[k]| (InterFaceGAN
      boundary normal for binary factors; regression direction for continuous).
    * ``pca``: top principal axes of the latent means (GANSpace-style).
    """
    import torch

    rng = np.random.default_rng(seed)
    zs, fs = [], []
    for _i in range(0, n, 250):
        imgs, facts = sample_batch(rng, 250)
        with torch.no_grad():
            zs.append(model.encode(to_unit(imgs))[0].numpy())
        fs.append(facts)
    Z = np.concatenate(zs).astype(np.float64)
    Fm = np.concatenate(fs)
    mean, std = Z.mean(0), Z.std(0)
    Zc = Z - mean
    A = np.concatenate([Zc, np.ones((len(Zc), 1))], axis=1)
    coef, *_ = np.linalg.lstsq(A, Fm, rcond=None)
    W = coef[:-1].T  # [F, D]
    pred = A @ coef
    r2 = 1 - ((pred - Fm) ** 2).sum(0) / ((Fm - Fm.mean(0)) ** 2).sum(0)
    # conditional directions: keep the read-out of the other continuous factors and the background fixed
    # (shape is categorical and poorly linear, so it is not part of the constraint set)
    cond = [FACTOR_NAMES.index(n) for n in CONTINUOUS + ["background"]]
    Pc = np.linalg.pinv(W[cond])  # [D, len(cond)]
    dirs, meta = {}, {"factors": {}, "pca": {}}
    ranges = {"x": world.CONT_X, "y": world.CONT_Y, "size": world.CONT_HALF, "hue": world.CONT_HUE,
              "background": (0.0, 1.0), "shape_circle": (0.0, 1.0), "shape_square": (0.0, 1.0),
              "shape_triangle": (0.0, 1.0)}
    units = {"x": "px (object centre)", "y": "px (object centre, down)", "size": "px (half-size)",
             "hue": "HSV hue (0=red .. 0.8=purple)", "background": "0=black, 1=white", "shape_circle": "score",
             "shape_square": "score", "shape_triangle": "score"}
    for k, name in enumerate(FACTOR_NAMES):
        if k in cond:
            v = Pc[:, cond.index(k)]
        else:  # shape: boundary normal, scaled so that one latent unit along it moves the read-out by |W[k]|
            v = W[k] / np.dot(W[k], W[k])
        norm = float(np.linalg.norm(v))
        dirs[name] = torch.tensor(v / norm, dtype=torch.float32)
        b = W[k]
        dirs[f"boundary_{name}"] = torch.tensor(b / np.linalg.norm(b), dtype=torch.float32)
        per_latent = 1.0 / norm  # factor units per unit latent length along the direction
        lo, hi = ranges[name]
        meta["factors"][name] = {
            "kind": "continuous" if name in CONTINUOUS else "binary",
            "units": units[name],
            "units_per_latent": per_latent,
            "range": [lo, hi],
            "slider_latent_span": (hi - lo) / per_latent,
            "r2": float(r2[k]),
        }
    # PCA
    U, S, Vt = np.linalg.svd(Zc, full_matrices=False)
    var = S ** 2 / (len(Zc) - 1)
    dirs["pca"] = torch.tensor(Vt[:n_pca], dtype=torch.float32)
    meta["pca"] = {"explained_variance": var[:n_pca].tolist(),
                   "explained_ratio": (var[:n_pca] / var.sum()).tolist(),
                   "std": np.sqrt(var[:n_pca]).tolist()}
    dirs["latent_mean"] = torch.tensor(mean, dtype=torch.float32)
    dirs["latent_std"] = torch.tensor(std, dtype=torch.float32)
    meta["note"] = ("Each named direction is a unit vector in latent space. Moving z by t * dirs[name] changes the "
                    "factor by about t * units_per_latent (its units). 'boundary_*' are the raw regression/boundary "
                    "normals; 'pca' rows are unsupervised principal axes (GANSpace-style) with their std in 'pca'.")
    return dirs, meta


def export(args):
    import torch

    from studio.shapes.vector_vae import VectorVAE, save_vector_vae

    torch.set_num_threads(args.threads)
    st = load_ckpt(RUN / "ckpt.pt")
    model = VectorVAE(st["config"])
    model.load_state_dict(st["model"])
    if args.keep_dims and args.keep_dims < model.latent_dim:
        # drop the unused free dims (trained with --zero-free they never reach the decoder)
        d, k = model.latent_dim, args.keep_dims
        small = VectorVAE({**st["config"], "latent_dim": k})
        sd = dict(st["model"])
        w, b = sd["enc_out.weight"], sd["enc_out.bias"]
        sd["enc_out.weight"] = torch.cat([w[:k], w[d:d + k]])
        sd["enc_out.bias"] = torch.cat([b[:k], b[d:d + k]])
        sd["dec_in.weight"] = sd["dec_in.weight"][:, :k]
        small.load_state_dict(sd)
        model = small
        log(f"vvae: export keeps latent dims 0..{k - 1}", LOG)
    model.eval()
    dirs, meta = compute_directions(model)
    meta["training_step"] = st["step"]
    out = Path(args.export_dir)
    save_vector_vae(model, out, dirs, meta)
    log(f"vvae: exported step {st['step']} -> {out}", LOG)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--minutes", type=float, default=1e9)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--latent-dim", type=int, default=16)
    ap.add_argument("--sigma", type=float, default=0.05)
    ap.add_argument("--beta", type=float, default=1.0)
    ap.add_argument("--probe-weight", type=float, default=2000.0)
    ap.add_argument("--fg-weight", type=float, default=0.0, help="extra reconstruction weight on object pixels")
    ap.add_argument("--supervised", action="store_true",
                    help="first 8 latent dims = scaled ground-truth factors (x, y, size, hue, bg, shape one-hot)")
    ap.add_argument("--sup-weight", type=float, default=20000.0)
    ap.add_argument("--beta-free", type=float, default=1.0, help="KL weight of the free (unsupervised) dims")
    ap.add_argument("--free-noise", type=float, default=0.0,
                    help="fixed posterior noise std of the free dims during training (supervised mode)")
    ap.add_argument("--zero-free", action="store_true",
                    help="decode with the free dims set to 0 during training (all information goes through the "
                         "supervised factor dims; the free dims are pulled to 0 by the KL)")
    ap.add_argument("--lr-restart", action="store_true", help="new cosine schedule from the resumed step")
    ap.add_argument("--ckpt-seconds", type=float, default=120)
    ap.add_argument("--export", action="store_true", help="compute directions and write the asset folder")
    ap.add_argument("--keep-dims", type=int, default=0, help="export only the first N latent dims")
    ap.add_argument("--export-dir", default=str(REPO / "assets" / "models" / "shapes-vae"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    RUN.mkdir(parents=True, exist_ok=True)
    if args.export:
        export(args)
    else:
        train(args)


if __name__ == "__main__":
    main()
