"""Seconds per 64x64, 20-step generation (batch 1, classifier-free guidance) of the
Shapes SD pipeline with plain diffusers on 2 CPU threads.

  python bench/bench_shapes_sd.py [--model assets/models/shapes-sd] [--steps 20] [--runs 5]
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(REPO / "assets" / "models" / "shapes-sd"))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--guidance", type=float, default=7.5)
    args = ap.parse_args()
    import torch
    from diffusers import DiffusionPipeline

    torch.set_num_threads(args.threads)
    t = time.perf_counter()
    pipe = DiffusionPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    load_s = time.perf_counter() - t
    prompt = "a small red circle in the top left on a black background"

    def once(seed):
        g = torch.Generator().manual_seed(seed)
        t0 = time.perf_counter()
        with torch.inference_mode():
            pipe(prompt, num_inference_steps=args.steps, guidance_scale=args.guidance, height=64, width=64,
                 generator=g)
        return time.perf_counter() - t0

    once(0)  # warm-up
    times = [once(i + 1) for i in range(args.runs)]
    print(f"load {load_s:.2f}s")
    print(f"64x64, {args.steps} steps, batch 1, CFG {args.guidance}, {args.threads} threads: "
          f"median {statistics.median(times):.3f}s  min {min(times):.3f}s  max {max(times):.3f}s  (runs={args.runs})")


if __name__ == "__main__":
    main()
