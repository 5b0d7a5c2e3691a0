"""Evaluate the Shapes vector VAE: reconstruction PSNR, direction selectivity and monotonicity.

  python training/eval_vector_vae.py                    # assets/models/shapes-vae
  python training/eval_vector_vae.py --model DIR --n-psnr 500 --n-bases 40

Protocol (all read back with ShapeEval, studio.shapes.scorer):
* PSNR: held-out renders (seed streams 5555 / 6666, never used in training), 8-bit
  decode; reported as the mean of per-image PSNR and as PSNR of the mean MSE.
* For each named direction d (x, y, size, hue, background, shape_*) and each of
  n-bases held-out base images z0: the target factor's linear read-out is swept
  over 9 evenly spaced values inside the world's range (margin 10%),
  z = z0 + (value - readout(z0)) / units_per_latent * d, decoded and read back.
  monotonicity = Spearman(sweep value, read-back target factor);
  selectivity  = TV(target) / sum_f TV(f), TV = total variation along the
  sweep of each factor normalised by its range (x, y: 40 px, size: 7 px,
  hue: 0.8, background / shape: 1 per flip).
* PCA directions: the factor each moves most and that factor's share.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from shapes_common import REPO

from studio.shapes import scorer, world

FACTORS = ["x", "y", "size", "hue", "background", "shape"]
NORM = {"x": 40.0, "y": 40.0, "size": 7.0, "hue": 0.8, "background": 1.0, "shape": 1.0}
SHAPE_ID = {"circle": 0, "square": 1, "triangle": 2}


def read_factors(img):
    r = scorer.read_image(img)
    if not r.objects:
        return None
    o = r.objects[0]
    hue = o.hue - 1.0 if o.hue > 0.9 else o.hue
    return {"x": o.cx, "y": o.cy, "size": o.half, "hue": hue,
            "background": 1.0 if r.background == "white" else 0.0, "shape": SHAPE_ID[o.shape],
            "n_objects": len(r.objects)}


def spearman(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)

    def rank(v):
        order = np.argsort(v, kind="mergesort")
        r = np.empty(len(v))
        r[order] = np.arange(len(v))
        # average ties
        for val in np.unique(v):
            m = v == val
            if m.sum() > 1:
                r[m] = r[m].mean()
        return r

    ra, rb = rank(a), rank(b)
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def tv(seq, name):
    if name in ("shape", "background"):
        return float(sum(1.0 for u, v in zip(seq[:-1], seq[1:], strict=False) if u != v))
    return float(np.abs(np.diff(np.asarray(seq, float))).sum() / NORM[name])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(REPO / "assets" / "models" / "shapes-vae"))
    ap.add_argument("--n-psnr", type=int, default=500)
    ap.add_argument("--n-bases", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    import torch

    from studio.shapes.vector_vae import load_directions_meta, load_vector_vae

    torch.set_num_threads(args.threads)
    t0 = time.time()
    model, dirs = load_vector_vae(args.model)
    meta = load_directions_meta(args.model)
    rng = np.random.default_rng(5555)
    scenes = [world.sample_continuous_scene(rng) for _ in range(args.n_psnr)]
    imgs = np.stack([world.render(s) for s, _ in scenes])
    z = model.encode_images(imgs)
    rec = model.decode_images(z)
    mse = ((rec.astype(np.float64) - imgs.astype(np.float64)) / 255.0) ** 2
    per = mse.reshape(len(imgs), -1).mean(1)
    psnr_mean = float(np.mean(10 * np.log10(1.0 / np.maximum(per, 1e-12))))
    psnr_global = float(10 * np.log10(1.0 / mse.mean()))
    # read-back agreement of reconstructions
    agree = {k: [] for k in ("shape", "background", "x", "y", "size", "hue")}
    for (_sc, f), im in zip(scenes[:200], rec[:200], strict=False):
        rf = read_factors(im)
        if rf is None:
            for k in agree:
                agree[k].append(False)
            continue
        agree["shape"].append(rf["shape"] == SHAPE_ID[f["shape"]])
        agree["background"].append(rf["background"] == (1.0 if f["background"] == "white" else 0.0))
        agree["x"].append(abs(rf["x"] - f["x"]) < 1.5)
        agree["y"].append(abs(rf["y"] - f["y"]) < 1.5)
        agree["size"].append(abs(rf["size"] - f["half"]) < 1.0)
        agree["hue"].append(abs(rf["hue"] - f["hue"]) < 0.03)
    print(f"reconstruction PSNR (held-out, n={len(imgs)}): mean per-image {psnr_mean:.2f} dB, "
          f"of mean MSE {psnr_global:.2f} dB")
    print("reconstruction read-back agreement: " + ", ".join(f"{k} {100 * np.mean(v):.1f}%" for k, v in agree.items()))

    # directions
    brng = np.random.default_rng(6666)
    bimgs = np.stack([world.render(world.sample_continuous_scene(brng)[0]) for _ in range(args.n_bases)])
    bases = model.encode_images(bimgs)
    facts = meta.get("factors", {})
    mean = dirs["latent_mean"].numpy().astype(np.float64)
    # linear read-out of each factor along its own direction: readout(z) = units_per_latent * <z - mean, d> + c
    # (c cancels: we only need differences), so sweeping uses relative moves from the base's own read-back.
    results = {}
    names = [n for n in ("x", "y", "size", "hue", "background", "shape_circle", "shape_square", "shape_triangle")
             if n in dirs and n in facts]
    for name in names:
        d = dirs[name].numpy().astype(np.float64)
        upl = facts[name]["units_per_latent"]
        lo, hi = facts[name]["range"]
        target = name if name in ("x", "y", "size", "hue", "background") else "shape"
        sels, mons, fails = [], [], 0
        for zb in bases.numpy().astype(np.float64):
            f0 = read_factors(model.decode_images(zb)[0])
            if f0 is None:
                fails += 1
                continue
            if name in ("x", "y", "size", "hue"):
                m = 0.1 * (hi - lo)
                vals = np.linspace(lo + m, hi - m, 9)
                cur = f0[target]
            else:  # binary: sweep the score from 0 to 1 (and a bit beyond)
                vals = np.linspace(-0.25, 1.25, 9)
                cur = float(np.dot(zb - mean, d) * upl)  # relative, offset irrelevant for sweeps
                cur = np.clip(cur, -0.25, 1.25)
            zs = np.stack([zb + (v - cur) / upl * d for v in vals]).astype(np.float32)
            outs = [read_factors(im) for im in model.decode_images(torch.from_numpy(zs))]
            if any(o is None for o in outs):
                fails += 1
                sels.append(0.0)
                mons.append(0.0)
                continue
            tvs = {f: tv([o[f] for o in outs], f) for f in FACTORS}
            tot = sum(tvs.values())
            sels.append(tvs[target] / tot if tot > 0 else 0.0)
            if target == "shape":
                mons.append(float("nan"))
            else:
                mons.append(spearman(vals, [o[target] for o in outs]))
        results[name] = {"selectivity": float(np.mean(sels)) if sels else 0.0,
                         "monotonicity": float(np.nanmean(mons)) if mons and not np.all(np.isnan(mons)) else None,
                         "fail": fails, "n": len(bases)}
    print("\n| direction | selectivity | monotonicity (Spearman) | failed reads |")
    print("|---|---|---|---|")
    for k, v in results.items():
        mono = "n/a" if v["monotonicity"] is None else f"{v['monotonicity']:.3f}"
        print(f"| {k} | {v['selectivity']:.3f} | {mono} | {v['fail']}/{v['n']} |")

    # PCA directions: which factor does each move?
    pca_rows = []
    if "pca" in dirs:
        stds = meta.get("pca", {}).get("std", [1.0] * dirs["pca"].shape[0])
        for i, row in enumerate(dirs["pca"].numpy().astype(np.float64)):
            shares = {f: 0.0 for f in FACTORS}
            for zb in bases[:10].numpy().astype(np.float64):
                zs = np.stack([zb + a * stds[i] * row for a in np.linspace(-1.5, 1.5, 7)]).astype(np.float32)
                outs = [read_factors(im) for im in model.decode_images(torch.from_numpy(zs))]
                if any(o is None for o in outs):
                    continue
                for f in FACTORS:
                    shares[f] += tv([o[f] for o in outs], f)
            tot = sum(shares.values()) or 1.0
            top = max(shares, key=shares.get)
            pca_rows.append({"pc": i, "top_factor": top, "share": shares[top] / tot})
        print("\nPCA directions (GANSpace-style): " + ", ".join(
            f"pc{r['pc']}->{r['top_factor']} ({r['share']:.2f})" for r in pca_rows))
    print(f"\n({time.time() - t0:.0f}s)")
    if not args.no_write:
        out = {"psnr_mean_per_image": psnr_mean, "psnr_of_mean_mse": psnr_global, "n_psnr": len(imgs),
               "readback_agreement": {k: float(np.mean(v)) for k, v in agree.items()},
               "directions": results, "pca": pca_rows, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
               "training_step": meta.get("training_step")}
        (Path(args.model) / "eval_vector_vae.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
