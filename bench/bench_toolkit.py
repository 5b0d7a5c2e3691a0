"""Artist's-toolkit benchmarks: peak memory of hires fix and tiled upscaling, and the studio's cost on a
ControlNet job.

memory      Each case runs in a fresh process (peak RSS = ``ru_maxrss`` of that process alone): a plain
            txt2img job at the tiny SD pipeline's base size (64x64); the same job with hires fix x2
            (Latent, and Lanczos); an ESRGAN-architecture upscale (RRDBNet, 32 features, 2 blocks, x4) of a
            512x512 image to 2048x2048, tiled (128 px tiles) and, for contrast, in one piece.  Printed: each
            peak and its ratio to the plain job (target: hires and tiled <= 1.3).
controlnet  studio job (save=False, previews off) vs the raw ``StableDiffusionControlNetPipeline(...)``
            call with the same ControlNet, prompt, size, steps, scheduler and seed, on the shipped
            shapes-sd with a ControlNet made from its UNet; alternating order, one warm-up each, median of
            per-repeat ratios (target <= 1.02); the pixels of both sides must match.

profile     where a studio ControlNet job's time goes besides the diffusers call (cProfile on the job's
            thread and on the pipeline thread): checks + control map + scheduler + prompt, and the step
            callback (progress, previews), previews off and every step.

    PYTHONPATH=.:plugins python bench/bench_toolkit.py [memory | controlnet | profile] [--repeats 9] [--steps 20]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT, ROOT / "plugins"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))


def _case(name: str, work: Path) -> dict:
    """One memory case, in this (fresh) process."""
    import torch

    torch.set_num_threads(1)
    from studio.plugin_api import CancelToken, LoadOptions

    start = time.perf_counter()
    if name.startswith("upscale"):
        import numpy as np
        from PIL import Image

        from studio.plugin_kit.upscale import models
        from tests.fixtures import tiny_upscalers

        path = tiny_upscalers.save_safetensors(tiny_upscalers.rrdb_state(feats=32, grow=16, blocks=2),
                                               work / "x4.safetensors")
        upscaler = models.load(path)
        image = Image.fromarray((np.random.default_rng(0).random((512, 512, 3)) * 255).astype(np.uint8))
        out, _ = models.upscale(upscaler, image, 4, tile=128 if name == "upscale_tiled" else 4096)
        size = out.size
    else:
        from studio_diffusers import DiffusersPlugin

        model = DiffusersPlugin().load(str(work / "sd"), LoadOptions(), lambda m: None)
        request = {"mode": "txt2img", "prompt": "a red cat", "seed": 1, "steps": 10, "size": (64, 64),
                   "preview_every": 1}
        if name != "plain":
            request.update(hires_scale=2.0, hires_strength=0.5, hires_upscaler=name.split("_")[1].capitalize())
        events = list(model.run(request, CancelToken()))
        size = events[-1].artifacts[0].image.size
    return {"case": name, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "seconds": round(time.perf_counter() - start, 2), "size": list(size)}


def memory() -> None:
    from tests.fixtures import tiny_diffusers

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tiny_diffusers.build_sd(work / "sd")
        rows = []
        for name in ("plain", "hires_latent", "hires_lanczos", "upscale_tiled", "upscale_whole"):
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins")]))
            done = subprocess.run([sys.executable, __file__, "_case", name, str(work)], capture_output=True,
                                  text=True, env=env, timeout=1200)
            if done.returncode:
                print(done.stderr[-2000:])
                raise SystemExit(1)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    base = rows[0]["peak_rss_mib"]
    for row in rows:
        print(f"{row['case']:15s} peak RSS {row['peak_rss_mib']:7.0f} MiB  x{row['peak_rss_mib'] / base:.3f} of plain"
              f"  ({row['seconds']} s, output {row['size'][0]}x{row['size'][1]})")


def controlnet(repeats: int, steps: int) -> None:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from diffusers import ControlNetModel, StableDiffusionControlNetPipeline

    from studio.core.context import StudioContext
    from studio.core.jobs import JobSpec
    from studio.core.registry import Registry
    from studio.core.settings import Settings
    from studio_diffusers import DiffusersPlugin, default_model_folder
    from tests.fixtures import tiny_controlnets

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["STUDIO_HOME"] = str(work / "home")
        shapes = default_model_folder()
        cn_folder = tiny_controlnets.build_controlnet(work / "cn", shapes)
        sketch = tiny_controlnets.scribble(work / "sketch.png", 64)
        registry = Registry()
        registry.add("diffusers", DiffusersPlugin)
        context = StudioContext.create(Settings(output_dir=str(work / "out")), registry)
        request = {"prompt": "a red circle", "seed": 7, "steps": steps, "size": (64, 64), "cfg_scale": 7.5,
                   "preview_every": 0,
                   "controls": [{"kind": "scribble", "image": str(sketch), "model": str(cn_folder)}]}

        cpu: dict = {}

        def studio() -> tuple[float, object]:
            t, c = time.perf_counter(), time.process_time()
            job = context.engine.submit(JobSpec("diffusers", str(shapes), request, mode="txt2img", save=False))
            job.wait()
            cpu[studio] = time.process_time() - c
            return time.perf_counter() - t, job.result.artifacts[0].image

        elapsed, _ = studio()  # load + warm-up
        model = next(iter(context.engine.residency.loaded()))
        base = model.pipe
        raw_cn = ControlNetModel.from_pretrained(str(cn_folder))
        raw = StableDiffusionControlNetPipeline(**{k: v for k, v in base.components.items()
                                                   if k in ("vae", "text_encoder", "tokenizer", "unet")},
                                                scheduler=base.scheduler.__class__.from_config(base.scheduler.config),
                                                controlnet=raw_cn, safety_checker=None, feature_extractor=None,
                                                requires_safety_checker=False)
        raw.set_progress_bar_config(disable=True)
        from PIL import Image

        from studio.plugin_kit.control import preprocess

        control_map = preprocess.process("scribble", Image.open(sketch).convert("RGB"), (64, 64))

        def raw_call() -> tuple[float, object]:
            t, c = time.perf_counter(), time.process_time()
            image = raw("a red circle", image=control_map, num_inference_steps=steps, guidance_scale=7.5,
                        height=64, width=64, generator=[torch.Generator().manual_seed(7)]).images[0]
            cpu[raw_call] = time.process_time() - c
            return time.perf_counter() - t, image

        raw_call()
        ratios, s_times, r_times, cpu_ratios = [], [], [], []
        for i in range(repeats):
            order = (studio, raw_call) if i % 2 == 0 else (raw_call, studio)
            results = {f: f() for f in order}
            (ts, si), (tr, ri) = results[studio], results[raw_call]
            s_times.append(ts)
            r_times.append(tr)
            ratios.append(ts / tr)
            cpu_ratios.append(cpu[studio] / cpu[raw_call])
        same = np.array_equal(np.asarray(si), np.asarray(ri))
        context.close()
    print(f"ControlNet job, shapes-sd 64x64, {steps} steps, {repeats} repeats: studio median "
          f"{statistics.median(s_times):.3f} s, raw {statistics.median(r_times):.3f} s; studio/raw median "
          f"{statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f}); process CPU time ratio "
          f"median {statistics.median(cpu_ratios):.3f}; same pixels: {same}")


def profile(repeats: int, steps: int) -> None:
    """Where a studio ControlNet job spends time besides the diffusers call: cProfile on the job's thread
    (request checks, control map, scheduler, prompt) and on the model's pipeline thread (the step callback:
    progress, previews), previews off and on (every step)."""
    import cProfile
    import pstats

    import torch

    torch.set_num_threads(1)
    from studio.plugin_api import CancelToken, LoadOptions
    from studio_diffusers import DiffusersPlugin, default_model_folder
    from tests.fixtures import tiny_controlnets

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shapes = default_model_folder()
        cn_folder = tiny_controlnets.build_controlnet(work / "cn", shapes)
        sketch = tiny_controlnets.scribble(work / "sketch.png", 64)
        model = DiffusersPlugin().load(str(shapes), LoadOptions(), lambda m: None)
        for every in (0, 1):
            request = {"mode": "txt2img", "prompt": "a red circle", "seed": 7, "steps": steps, "size": (64, 64),
                       "cfg_scale": 7.5, "preview_every": every,
                       "controls": [{"kind": "scribble", "image": str(sketch), "model": str(cn_folder)}]}
            list(model.run(request, CancelToken()))  # warm-up (loads the ControlNet)
            main, worker = cProfile.Profile(), cProfile.Profile()
            model._runner.submit(worker.enable).result()  # the pipeline thread's own profile
            main.enable()
            for _ in range(repeats):
                list(model.run(request, CancelToken()))
            main.disable()
            model._runner.submit(worker.disable).result()

            def seconds(stats: pstats.Stats, name: str) -> float:
                raw = cast(dict, stats.stats)  # type: ignore[attr-defined]  # pstats keeps its table untyped
                return sum(v[3] for k, v in raw.items() if k[2] == name) / repeats

            m, w = pstats.Stats(main), pstats.Stats(worker)
            job, call = seconds(m, "_run"), seconds(w, "__call__")
            outside = job - seconds(m, "_stream")
            callback = seconds(w, "on_step")
            maps = seconds(m, "control_maps")
            print(f"previews {'every step' if every else 'off'}: job {job * 1000:.0f} ms; outside the pipeline call "
                  f"{outside * 1000:.1f} ms ({outside / job:.2%}; control map {maps * 1000:.1f} ms); step callback "
                  f"{callback * 1000:.1f} ms ({callback / call:.2%} of the call, {callback / steps * 1000:.2f} ms a "
                  f"step)")
        model.unload()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_case":
        print(json.dumps(_case(sys.argv[2], Path(sys.argv[3]))))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="?", default="all", choices=["memory", "controlnet", "profile", "all"])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    if args.what in ("memory", "all"):
        memory()
    if args.what in ("controlnet", "all"):
        controlnet(args.repeats, args.steps)
    if args.what == "profile":
        profile(min(args.repeats, 5), args.steps)


if __name__ == "__main__":
    main()
