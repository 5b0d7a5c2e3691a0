"""ShapeEval of a Shapes text-to-image pipeline folder (plain diffusers loading).

  python training/eval_shapes_sd.py                          # assets/models/shapes-sd, 40 prompts/category
  python training/eval_shapes_sd.py --n 20 --steps 25 --guidance 7.5 --grid assets/models/shapes-sd/grid.png

Prints the per-category table (held-out prompts, see studio.shapes.suite) and
writes a JSON with the figures next to the model (eval_shapeeval.json) unless
--no-write.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from shapes_common import REPO

from studio.shapes import suite

GRID_PROMPTS = [
    "a red circle on a black background",
    "small blue square top left, white background",
    "a yellow triangle to the left of a green circle",
    "a big green triangle in the center",
    "a white square at the bottom right on a purple background",
    "an orange circle above a blue square",
    "a purple triangle on the right, yellow background",
    "a small black circle in the top right corner on a white background",
    "a large yellow square on a blue background",
    "a red square below a white circle",
    "a blue circle and a red triangle",
    "a green square to the right of an orange triangle on a black background",
]


def load_pipe(folder: str, threads: int, device: str = "cpu"):
    import torch
    from diffusers import DiffusionPipeline

    torch.set_num_threads(threads)
    pipe = DiffusionPipeline.from_pretrained(folder).to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate(pipe, prompts, steps: int, guidance: float, seed: int, batch: int = 8):
    # CPU generators on any device: the same seeds give the same starting noise on CPU and GPU
    import torch

    out = []
    for i in range(0, len(prompts), batch):
        chunk = prompts[i:i + batch]
        gens = [torch.Generator().manual_seed(seed + i + j) for j in range(len(chunk))]
        with torch.no_grad():
            imgs = pipe(chunk, num_inference_steps=steps, guidance_scale=guidance, generator=gens,
                        height=64, width=64, output_type="np").images
        out.extend([(np.clip(im, 0, 1) * 255).round().astype(np.uint8) for im in imgs])
    return out


def save_grid(images, path, cols: int = 6, scale: int = 2):
    from PIL import Image

    rows = (len(images) + cols - 1) // cols
    h, w = images[0].shape[:2]
    g = np.full((rows * (h + 2), cols * (w + 2), 3), 128, dtype=np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        g[r * (h + 2):r * (h + 2) + h, c * (w + 2):c * (w + 2) + w] = im
    Image.fromarray(g).resize((g.shape[1] * scale, g.shape[0] * scale), Image.NEAREST).save(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(REPO / "assets" / "models" / "shapes-sd"))
    ap.add_argument("--n", type=int, default=40, help="prompts per category")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--guidance", type=float, default=7.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--grid", default=None, help="write a sample grid PNG (GRID_PROMPTS x 3 seeds)")
    ap.add_argument("--vae", default=None,
                    help="evaluate with this VAE folder instead of the pipeline's (a candidate decoder)")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--not-heldout", action="store_true", help="use any combination instead of held-out ones")
    args = ap.parse_args()

    pipe = load_pipe(args.model, args.threads, args.device)
    if args.vae:
        from diffusers import AutoencoderKL

        pipe.vae = AutoencoderKL.from_pretrained(args.vae).to(args.device)
        args.no_write = True  # the figures are not the folder's own
    items = suite.build_suite(args.n, seed=args.seed, heldout=not args.not_heldout)
    t0 = time.time()
    images = generate(pipe, [it.prompt for it in items], args.steps, args.guidance, args.seed, args.batch)
    dt = time.time() - t0
    res = suite.score_suite(items, images)
    print(f"ShapeEval: {args.model}  steps={args.steps} guidance={args.guidance} n/category={args.n} "
          f"held-out={not args.not_heldout}  ({dt:.0f}s, {dt / len(items):.2f}s/img batched)")
    print(suite.format_table(res))
    if args.grid:
        prompts = [p for p in GRID_PROMPTS for _ in range(3)]
        imgs = generate(pipe, prompts, args.steps, args.guidance, seed=1000, batch=args.batch)
        save_grid(imgs, args.grid, cols=6)
        Path(args.grid).with_suffix(".txt").write_text(
            "Rows of 6 tiles = 2 prompts x 3 seeds, in order:\n" + "\n".join(GRID_PROMPTS) + "\n")
        print(f"grid -> {args.grid}")
    if not args.no_write:
        state = {}
        sp = Path(args.model) / "training_state.json"
        if sp.exists():
            state = json.loads(sp.read_text())
        out = {"steps": args.steps, "guidance": args.guidance, "n_per_category": args.n, "seed": args.seed,
               "heldout": not args.not_heldout, "metrics": res["metrics"], "n": res["n"], "model_state": state,
               "date": time.strftime("%Y-%m-%d %H:%M:%S")}
        name = f"eval_shapeeval_g{args.guidance:g}_s{args.steps}.json"
        (Path(args.model) / name).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
