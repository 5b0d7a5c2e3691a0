"""Editing your own image on the built-in diffusion model (CPU), through the job engine.

1. One-time cost: encode + edit-friendly DDPM inversion of a 64x64 PIL drawing (first edit job of
   that image).  Target (issue #13): <= 10 s.
2. Slider tick -> preview: interactive jobs (``JobSpec(interactive=True, lane_key=...)``) of the
   red->blue strength, each a new value, draft quality (fewer steps, as while dragging) and full
   quality (on release).  Target: <= 1 s on 2 CPU cores.
3. Walks on the built-in model: an 8-frame prompt walk and seed walk, largest frame-to-frame
   change over the mean.  Target: <= 3.

    python bench/bench_latent_edit.py [--threads 2] [--ticks 12] [--steps 20] [--no-walks]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
MODEL = ROOT / "assets" / "models" / "shapes-sd"


def draw(path: Path) -> Path:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (64, 64), (8, 8, 8))
    ImageDraw.Draw(image).ellipse((20, 20, 44, 44), fill=(220, 30, 30))
    image.save(path)
    return path


def job(context, request: dict, mode: str, interactive: bool = False):
    from studio.core.jobs import JobSpec

    t0 = time.perf_counter()
    j = context.engine.submit(JobSpec(plugin_id="latent-diffusion", model=str(MODEL), mode=mode, request=request,
                                      save=False, interactive=interactive, lane_key="bench-slider"))
    j.wait()
    if j.result is None:
        raise SystemExit(f"job failed: {j.failure}")
    return j.result, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ticks", type=int, default=12)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--no-walks", action="store_true")
    args = ap.parse_args()
    import torch

    from studio.core.context import StudioContext
    from studio.core.settings import Settings

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} CPUs visible, model {MODEL.name}")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["STUDIO_HOME"] = tmp
        context = StudioContext.create(Settings())
        try:
            image = str(draw(Path(tmp) / "mine.png"))
            _, load_s = job(context, {}, "info")
            base = {"image": image, "prompt": "a red circle on a black background", "steps": args.steps}
            result, first = job(context, {**base, "pairs": [["red", "blue", 0.0]]}, "edit")
            print(f"load {load_s:.2f} s; first edit of a new 64x64 image (encode + refine + inversion): {first:.2f} s "
                  f"(target <= 10 s); reconstruction PSNR {result.info['psnr']:.2f} dB")
            for draft in (True, False):
                times = []
                for i in range(args.ticks):
                    strength = 0.1 + 1.4 * i / max(args.ticks - 1, 1)  # every tick a new value
                    req = {**base, "pairs": [["red", "blue", round(strength, 3)]], "draft": draft}
                    _, seconds = job(context, req, "edit", interactive=True)
                    times.append(seconds)
                label = "draft (while dragging)" if draft else "full quality (on release)"
                print(f"slider tick -> preview, {label}: median {statistics.median(times):.3f} s, "
                      f"max {max(times):.3f} s over {len(times)} ticks (target <= 1 s)")
            if not args.no_walks:
                for kind, extra in (("prompt", {"prompt_to": "a blue square on a white background"}),
                                    ("seed", {"seed_to": 2})):
                    req = {"prompt": "a red circle on a black background", "seed": 1, "frames": 8,
                           "steps": args.steps, **extra}
                    result, seconds = job(context, req, "walk")
                    s = result.info["smoothness"]
                    print(f"{kind} walk, 8 frames: largest step {s['jump_ratio']:.2f}x the mean (target <= 3); "
                          f"{result.info['explored']} frames explored, {result.info['bridged_in_output']} of the 8 "
                          f"bridged; {seconds:.1f} s")
        finally:
            context.close()


if __name__ == "__main__":
    main()
