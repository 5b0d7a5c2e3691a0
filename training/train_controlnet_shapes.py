"""Train a small scribble ControlNet for the built-in Shapes SD model (UNet and text encoder frozen).

A user sketches the outline of a shape; the ControlNet makes the Shapes model draw that shape where the
sketch is.  The control image is what the studio's "scribble" preprocessor produces from a drawing:
white strokes on black, 64x64 (the model's native size).  Training sketches are drawn from the scene's
ground truth with a hand-drawn wobble (noisy vertices, stroke width 0.8-2.6 px, sometimes filled).

Stages (each resumable):

  bank     render scenes (grid scenes of the training split + free-position scenes) and encode them with
           the shipped VAE (cached latents + scenes)
  train    ControlNetModel.from_unet(shapes-sd UNet), v-prediction, min-SNR-5, EMA; checkpoints every
           --ckpt-seconds (atomic), loss logged every 10 steps
  eval     ShapeEval on held-out sketches: the object lands in the sketched position and with the sketched
           shape (see ``score_sketch``); with and without the ControlNet
  export   a standard diffusers ControlNet folder (fp16 safetensors) + eval json

Example (what was run, on a shared 2-core CPU):
  nice -n 19 python training/train_controlnet_shapes.py --stage all --minutes 80
  nice -n 19 python training/train_controlnet_shapes.py --stage train --resume --minutes 30   # resume
  python training/train_controlnet_shapes.py --stage eval
  python training/train_controlnet_shapes.py --stage export

Seeded; the run folder (default /work/wt/toolkit-train, override with --run-dir) lives outside git.
"""
from __future__ import annotations

import argparse
import copy
import math
import pickle
import time
from pathlib import Path

import numpy as np
from shapes_common import (
    REPO,
    batch_rng,
    ema_update,
    load_ckpt,
    log,
    save_ckpt,
    to_tensor,
    write_json,
)

from studio.shapes import captions as C
from studio.shapes import world as W

BASE = REPO / "assets" / "models" / "shapes-sd"
#: conditioning embedding: three levels, two stride-2 convs = 64 px control -> 16x16 latent grid
COND_CHANNELS = (16, 32, 64)


# ---------------------------------------------------------------------------
# data: scenes and sketches


def free_scene(rng, split: str = "train") -> W.Scene:
    """One or two objects anywhere (not only on the 3x3 grid), sizes continuous; ``split`` "train" never
    gives a held-out combination, "heldout" only those."""
    while True:
        n = 1 if rng.random() < 0.55 else 2
        objs = []
        for _ in range(200):
            objs = []
            for _k in range(n):
                shape = W.SHAPES[int(rng.integers(3))]
                color = W.COLORS[int(rng.integers(len(W.COLORS)))]
                half = float(rng.uniform(4.0, 11.5))
                cx = float(rng.uniform(half + 1.0, W.IMAGE_SIZE - half - 1.0))
                cy = float(rng.uniform(half + 1.0, W.IMAGE_SIZE - half - 1.0))
                third = W.IMAGE_SIZE / 3.0
                objs.append(W.Obj(shape=shape, color=color, size="large" if half >= W.SIZE_THRESHOLD else "small",
                                  col=int(min(cx // third, 2)), row=int(min(cy // third, 2)), cx=cx, cy=cy, half=half))
            if n == 1 or (W._gap(objs[0], objs[1]) >= 3.0 and objs[0].color != objs[1].color):
                break
        used = {o.color for o in objs}
        bgs = [c for c in W.COLORS if c not in used]
        bg = bgs[int(rng.integers(len(bgs)))]
        rel = None
        if n == 2:
            a, b = objs
            dx, dy = a.cx - b.cx, a.cy - b.cy
            rel = ("left of" if dx < 0 else "right of") if abs(dx) >= abs(dy) else ("above" if dy < 0 else "below")
        scene = W.Scene(background=bg, objects=tuple(objs), relation=rel)
        if W.is_heldout(scene) == (split == "heldout"):
            return scene


def sketch(scene: W.Scene, rng, wobble: float = 1.0, size: int = W.IMAGE_SIZE) -> np.ndarray:
    """White-on-black hand-drawn outline of every object (HxW float32 in [0, 1])."""
    from PIL import Image, ImageDraw

    s = 4
    img = Image.new("L", (size * s, size * s), 0)
    draw = ImageDraw.Draw(img)
    scale = size / W.IMAGE_SIZE
    for o in scene.objects:
        cx, cy, h = o.cx * scale, o.cy * scale, o.half * scale
        if o.shape == "circle":
            k = 28
            ang = np.linspace(0, 2 * np.pi, k, endpoint=False) + rng.uniform(0, 2 * np.pi)
            r = h * (1 + rng.normal(0, 0.04 * wobble, k))
            pts = np.stack([cx + r * np.cos(ang), cy + r * np.sin(ang)], 1)
        elif o.shape == "square":
            pts = np.array([[cx - h, cy - h], [cx + h, cy - h], [cx + h, cy + h], [cx - h, cy + h]])
        else:
            pts = np.array([[cx, cy - h], [cx + h, cy + h], [cx - h, cy + h]])
        pts = pts + rng.normal(0, 0.5 * wobble, pts.shape)
        pts = [(float(x * s), float(y * s)) for x, y in pts]
        width = max(1, int(round(rng.uniform(0.8, 2.6) * s * scale)))
        if rng.random() < 0.15 * wobble:
            draw.polygon(pts, fill=255)
        else:
            draw.line(pts + [pts[0]], fill=255, width=width, joint="curve")
    img = img.resize((size, size), Image.BOX)
    return np.asarray(img, dtype=np.float32) / 255.0


def sketch_caption(scene: W.Scene, rng) -> str:
    """What a user types beside a sketch: the objects (in either order) and the background, no
    position words -- the sketch says where.  Without this the captions' relation words ("left of")
    told the model which object was which, and at use (no relation words) it drew a sketched
    square's colour and shape at the circle's outline and vice versa."""
    objs = list(scene.objects)
    if len(objs) == 2 and rng.random() < 0.5:
        objs.reverse()
    names = " and ".join(f"a {o.color} {o.shape}" for o in objs)
    return f"{names} on a {scene.background} background" if rng.random() < 0.8 else names


def sample_training_scene(rng) -> W.Scene:
    if rng.random() < 0.5:
        return W.sample_scene(rng, p_pair=0.5, split="train")
    return free_scene(rng)


# ---------------------------------------------------------------------------
# models


def load_base():
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(str(BASE / "tokenizer"))
    te = CLIPTextModel.from_pretrained(str(BASE / "text_encoder")).eval()
    unet = UNet2DConditionModel.from_pretrained(str(BASE / "unet")).eval()
    vae = AutoencoderKL.from_pretrained(str(BASE / "vae")).eval()
    for m in (te, unet, vae):
        m.requires_grad_(False)
    return tok, te, unet, vae


def make_controlnet(unet):
    from diffusers import ControlNetModel

    return ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=COND_CHANNELS)


# ---------------------------------------------------------------------------
# stages


def stage_bank(args, run: Path) -> None:
    import torch

    out = run / "bank.pt"
    if out.exists():
        log("bank: exists, skipping", run / "train.log")
        return
    _, _, _, vae = load_base()
    sf = vae.config.scaling_factor
    rng = np.random.default_rng([args.seed, 4242])
    scenes, lat = [], []
    t0 = time.time()
    bs = 100
    with torch.no_grad():
        for i in range(0, args.bank, bs):
            sc = [sample_training_scene(rng) for _ in range(bs)]
            z = vae.encode(to_tensor(np.stack([W.render(s) for s in sc]))).latent_dist.mode() * sf
            lat.append(z.to(torch.float16))
            scenes.extend(sc)
            if (i // bs) % 10 == 0:
                log(f"bank: {i + bs}/{args.bank} {time.time() - t0:.0f}s", run / "train.log")
    tmp = out.with_suffix(".part")
    torch.save({"latents": torch.cat(lat), "scenes": pickle.dumps(scenes)}, tmp)
    tmp.replace(out)
    log(f"bank: {len(scenes)} scenes in {time.time() - t0:.0f}s", run / "train.log")


def stage_train(args, run: Path) -> None:
    import torch
    from diffusers import DDPMScheduler

    logf = run / "train.log"
    torch.manual_seed(args.seed)
    tok, te, unet, _ = load_base()
    data = torch.load(run / "bank.pt", weights_only=False)
    lat, scenes = data["latents"], pickle.loads(data["scenes"])
    n = lat.shape[0]
    cn = make_controlnet(unet).train()
    ema = copy.deepcopy(cn).eval().requires_grad_(False)
    opt = torch.optim.AdamW(cn.parameters(), lr=args.lr, weight_decay=0.0)
    sched = DDPMScheduler.from_pretrained(str(BASE / "scheduler"))
    acp = sched.alphas_cumprod.float()
    pred_type = "v_prediction"
    ck = run / "controlnet_ckpt.pt"
    step, seconds = 0, 0.0
    if args.resume and ck.exists():
        st = load_ckpt(ck)
        cn.load_state_dict(st["controlnet"])
        ema.load_state_dict(st["ema"])
        opt.load_state_dict(st["opt"])
        step, seconds = st["step"], st.get("seconds", 0.0)
        log(f"train: resumed at step {step} ({seconds / 60:.1f} min trained)", logf)
    log(f"train: controlnet {sum(p.numel() for p in cn.parameters())} params, bank {n}, batch {args.batch}", logf)

    def save() -> None:
        save_ckpt(ck, {"controlnet": cn.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                       "step": step, "seconds": seconds, "config": dict(cn.config), "args": vars(args)})

    t0 = time.time()
    start_seconds = seconds
    last_ck = time.time()
    avg = None
    while step < args.steps and time.time() - t0 < args.minutes * 60:
        rng = batch_rng(args.seed + 1, step)
        idx = rng.integers(0, n, size=args.batch)
        x0 = lat[torch.from_numpy(idx)].float()
        cond = torch.from_numpy(np.stack([sketch(scenes[int(i)], rng) for i in idx]))[:, None].repeat(1, 3, 1, 1)
        caps = ["" if rng.random() < args.cfg_drop
                else sketch_caption(scenes[int(i)], rng) if rng.random() < args.sketch_captions
                else C.caption(scenes[int(i)], rng) for i in idx]
        ids = tok(caps, padding="max_length", max_length=tok.model_max_length, truncation=True,
                  return_tensors="pt").input_ids
        g = torch.Generator().manual_seed(int(rng.integers(2**31)))
        noise = torch.randn(x0.shape, generator=g)
        # half the batch biased to high noise, where the layout is decided
        u = torch.rand(args.batch, generator=g)
        u[: args.batch // 2] = 1 - u[: args.batch // 2] ** 3
        t = (u * 999).long().clamp(0, 999)
        a = acp[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        lr = args.lr * min(1.0, (step + 1) / args.warmup)
        for gr in opt.param_groups:
            gr["lr"] = lr
        with torch.no_grad():
            emb = te(ids)[0]
        down, mid = cn(xt, t, emb, controlnet_cond=cond, return_dict=False)
        pred = unet(xt, t, emb, down_block_additional_residuals=down, mid_block_additional_residual=mid).sample
        snr = a.view(-1) / (1 - a.view(-1))
        target = a.sqrt() * noise - (1 - a).sqrt() * x0 if pred_type == "v_prediction" else noise
        w = torch.clamp(snr, max=5.0) / (snr + 1)
        loss = (w * ((pred - target) ** 2).mean(dim=(1, 2, 3))).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(cn.parameters(), 1.0)
        opt.step()
        step += 1
        ema_update(cn, ema, min(args.ema, (1 + step) / (10 + step)))
        avg = loss.item() if avg is None else 0.95 * avg + 0.05 * loss.item()
        seconds = start_seconds + time.time() - t0
        if step % 10 == 0:
            log(f"train step {step} loss {avg:.5f} lr {lr:.1e} {seconds / 60:.1f}min", logf)
        if time.time() - last_ck > args.ckpt_seconds:
            save()
            last_ck = time.time()
    save()
    log(f"train: stopped at step {step} ({seconds / 60:.1f} min)", logf)


def load_trained(run: Path, use_ema: bool = True):
    from diffusers import ControlNetModel

    st = load_ckpt(run / "controlnet_ckpt.pt")
    cn = ControlNetModel.from_config(st["config"])
    cn.load_state_dict(st["ema" if use_ema else "controlnet"])
    return cn.eval(), st


def eval_items(n: int, seed: int):
    """Held-out sketches: half grid scenes, half free-position scenes; prompt without position words."""
    rng = np.random.default_rng([seed, 31337])
    items = []
    for i in range(n):
        scene = W.sample_scene(rng, p_pair=0.4, split="heldout") if i % 2 == 0 else free_scene(rng, split="heldout")
        ctrl = sketch(scene, rng, wobble=1.0)
        if len(scene.objects) == 1:
            o = scene.objects[0]
            prompt = f"a {o.color} {o.shape} on a {scene.background} background"
        else:
            a, b = scene.objects
            prompt = f"a {a.color} {a.shape} and a {b.color} {b.shape} on a {scene.background} background"
        items.append((scene, ctrl, prompt))
    return items


def score_sketch(image: np.ndarray, scene: W.Scene, tol: float = 4.0) -> dict:
    """Every sketched object is found with its shape, its centre within ``tol`` px of the sketch's, its
    half-size within 35%, and no extra object; one-to-one greedy matching by distance."""
    from studio.shapes import scorer

    reading = scorer.read_image(image)
    dets = list(reading.objects)
    pos_ok = shape_ok = True
    for o in scene.objects:
        if not dets:
            pos_ok = shape_ok = False
            break
        d = min(dets, key=lambda d: (d.cx - o.cx) ** 2 + (d.cy - o.cy) ** 2)
        dets.remove(d)
        if math.hypot(d.cx - o.cx, d.cy - o.cy) > tol or abs(d.half - o.half) > 0.35 * o.half:
            pos_ok = False
        if d.shape != o.shape:
            shape_ok = False
    count_ok = len(reading.objects) == len(scene.objects)
    return {"position": pos_ok, "shape": shape_ok, "count": count_ok, "all": pos_ok and shape_ok and count_ok}


def stage_eval(args, run: Path) -> dict:
    import torch
    from diffusers import StableDiffusionControlNetPipeline, StableDiffusionPipeline

    logf = run / "train.log"
    cn, st = load_trained(run, use_ema=not args.no_ema)
    base = StableDiffusionPipeline.from_pretrained(str(BASE))
    pipe = StableDiffusionControlNetPipeline(**base.components, controlnet=cn)
    pipe.set_progress_bar_config(disable=True)
    base.set_progress_bar_config(disable=True)
    items = eval_items(args.eval_n, args.eval_seed)
    res: dict = {"with_controlnet": {}, "without_controlnet": {}}
    t0 = time.time()
    samples = []
    for label, use in (("with_controlnet", True), ("without_controlnet", False)):
        tallies: dict = {"position": 0, "shape": 0, "count": 0, "all": 0}
        for k, (scene, ctrl, prompt) in enumerate(items):
            g = torch.Generator().manual_seed(args.eval_seed * 1000 + k)
            kw = dict(num_inference_steps=args.eval_steps, guidance_scale=7.5, generator=g, height=64, width=64,
                      output_type="np")
            with torch.inference_mode():
                if use:
                    im = pipe(prompt, image=torch.from_numpy(ctrl)[None, None].repeat(1, 3, 1, 1), **kw).images[0]
                else:
                    im = base(prompt, **kw).images[0]
            im8 = (np.clip(im, 0, 1) * 255).round().astype(np.uint8)
            if use and k < 12:
                samples.append(((ctrl * 255).astype(np.uint8), im8))
            for key, ok in score_sketch(im8, scene).items():
                tallies[key] += int(ok)
        res[label] = {key: v / len(items) for key, v in tallies.items()}
    res.update({"n": len(items), "steps": args.eval_steps, "guidance": 7.5, "train_step": st["step"],
                "train_minutes": round(st.get("seconds", 0) / 60, 1), "ema": not args.no_ema,
                "eval_seconds": round(time.time() - t0, 1)})
    write_json(run / f"eval_step{st['step']}.json", res)
    _save_pairs(samples, run / f"eval_step{st['step']}.png")
    log(f"eval: {res}", logf)
    return res


def _save_pairs(samples, path: Path) -> None:
    from PIL import Image

    if not samples:
        return
    tiles = [np.concatenate([np.repeat(c[..., None], 3, 2), im], axis=1) for c, im in samples]
    rows = [np.concatenate(tiles[i:i + 4], axis=1) for i in range(0, len(tiles) - len(tiles) % 4 or 4, 4)]
    Image.fromarray(np.concatenate(rows, axis=0)).resize((rows[0].shape[1] * 2, len(rows) * 128),
                                                         Image.NEAREST).save(path)


def stage_export(args, run: Path) -> None:
    import shutil

    import torch

    cn, st = load_trained(run, use_ema=not args.no_ema)
    out = Path(args.export_dir)
    tmp = out.parent / (out.name + ".tmp_export")
    if tmp.exists():
        shutil.rmtree(tmp)
    cn.to(torch.float16).save_pretrained(str(tmp), safe_serialization=True)
    if out.exists():  # keep the hand-written model card and figures
        for f in out.iterdir():
            if f.is_file() and f.name not in ("config.json", "diffusion_pytorch_model.safetensors"):
                shutil.copy2(f, tmp / f.name)
        shutil.rmtree(out)
    tmp.rename(out)
    write_json(out / "training_state.json", {"step": st["step"], "minutes": round(st.get("seconds", 0) / 60, 1),
                                             "ema": not args.no_ema, "exported": time.strftime("%Y-%m-%d %H:%M:%S")})
    log(f"export: step {st['step']} -> {out}", run / "train.log")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", default="all", choices=["bank", "train", "eval", "export", "all"])
    ap.add_argument("--run-dir", default="/work/wt/toolkit-train")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--minutes", type=float, default=1e9, help="wall-clock budget of the train stage")
    ap.add_argument("--ckpt-seconds", type=float, default=180)
    ap.add_argument("--bank", type=int, default=6000, help="scenes rendered and encoded once")
    ap.add_argument("--steps", type=int, default=100000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--cfg-drop", type=float, default=0.15)
    ap.add_argument("--sketch-captions", type=float, default=0.5,
                    help="share of captions without position words (see sketch_caption)")
    ap.add_argument("--ema", type=float, default=0.995)
    ap.add_argument("--no-ema", action="store_true")
    ap.add_argument("--eval-n", type=int, default=40)
    ap.add_argument("--eval-seed", type=int, default=1)
    ap.add_argument("--eval-steps", type=int, default=20)
    ap.add_argument("--export-dir", default=str(REPO / "assets" / "models" / "shapes-controlnet-scribble"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    run = Path(args.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    stages = ["bank", "train", "eval"] if args.stage == "all" else [args.stage]
    for s in stages:
        globals()[f"stage_{s}"](args, run)


if __name__ == "__main__":
    main()
