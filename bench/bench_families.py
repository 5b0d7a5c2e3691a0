"""DiT families through the studio: job overhead, and what GGUF / int8 loads cost.

1. **Studio job ÷ raw pipeline call** for SD3-, Flux- and Qwen-Image-class tiny pipelines
   (tests/fixtures/families.py, saved and loaded through the plugin).  The raw side calls the
   same loaded pipeline object with the same keyword arguments the plugin builds for the request
   (prompt, size, steps, guidance, seed generator, a fresh scheduler of the same class and
   config), under ``torch.inference_mode()`` as the plugin runs it; the bench checks both give the
   same pixels.  The studio side is a real engine job (validation, queue, worker thread, one event
   per step, the result; ``save=False``), previews off, and again with a preview every step.
   Each repeat runs every contender once, in alternating order, after a warm-up run each; the
   per-repeat ratio pairs runs made seconds apart.  Target: job / raw <= 1.02.

2. **Load time and peak RSS** of a Flux.2-klein-class pipeline with a ~60M-parameter transformer
   (big enough for its weights to dominate): full precision vs a GGUF Q8_0 transformer file
   (written here with the ``gguf`` package, BFL key layout) vs int8 weight-only quantization at
   load.  Each load runs in a fresh process (so its peak RSS is its own), after the libraries are
   imported; reported: seconds, the process's peak RSS during the load and after one small
   image (safetensors weights are memory-mapped and count in RSS only once read), each also
   above the RSS before the load, as ratios to the full-precision load; loads alternate.

    PYTHONPATH=.:plugins python bench/bench_families.py [--repeats 7] [--steps 8] [--size 128]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT, ROOT / "plugins"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

FAMILIES = ("sd3", "flux", "qwen-image")


# ------------------------------------------------------------------------------ job overhead


def interleaved(runs: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    order = list(runs)
    for index in range(repeats):
        for name in (order if index % 2 == 0 else order[::-1]):
            times[name].append(runs[name]())
    return times


def ratio(num: list[float], den: list[float]) -> tuple[float, float, float]:
    ratios = [a / b for a, b in zip(num, den, strict=True)]
    return statistics.median(ratios), min(ratios), max(ratios)


def bench_jobs(workdir: Path, repeats: int, steps: int, size: int) -> list[dict]:
    import numpy as np
    import torch

    os.environ["STUDIO_HOME"] = str(workdir / "home")
    from studio.core.context import StudioContext
    from studio.core.jobs import JobSpec, JobState
    from studio.core.registry import Registry
    from studio.core.settings import Settings
    from studio.plugin_api import validate_request
    from studio_diffusers import DiffusersPlugin, plan, schedulers
    from studio_diffusers.model import _DenoisedRecorder
    from tests.fixtures import families

    registry = Registry()
    registry.add("diffusers", DiffusersPlugin)
    context = StudioContext.create(Settings(output_dir=str(workdir / "out")), registry)
    rows = []
    try:
        for name in FAMILIES:
            folder = families.build(name, workdir / name)
            values = {"prompt": "a red circle on a black background", "seed": 11, "steps": steps,
                      "size": (size, size), "preview_every": 0, "cfg_scale": 4.0}
            last: dict[str, Any] = {}

            def job(previews: int, values: dict = values, folder: Path = folder, last: dict = last) -> float:
                start = time.perf_counter()
                j = context.engine.submit(JobSpec("diffusers", str(folder), dict(values, preview_every=previews),
                                                  mode="txt2img", save=False))
                j.wait()
                elapsed = time.perf_counter() - start
                assert j.state is JobState.DONE and j.result, j.message
                last["job"] = np.asarray(j.result.artifacts[0].image)
                return elapsed

            job(0)  # loads the model
            model = context.engine.residency.loaded()[-1]
            pipe = model.pipe
            request = validate_request(DiffusersPlugin().parameters(), values, "txt2img")
            inputs = plan.Inputs(mode="txt2img", prompt=request["prompt"], negative="", steps=steps, width=size,
                                 height=size, cfg=4.0, distilled=None, strength=1.0)
            kwargs = plan.build(pipe, pipe, model.family, model.known, inputs, inpaint_model=False).kwargs

            def raw(pipe: Any = pipe, kwargs: dict = kwargs, last: dict = last) -> float:
                original = pipe.scheduler
                pipe.scheduler = schedulers.make_scheduler(schedulers.DEFAULT, original)
                _DenoisedRecorder(pipe.scheduler)  # the plugin's x0 recorder wraps the step too
                start = time.perf_counter()
                with torch.inference_mode():
                    image = pipe(**kwargs, generator=[torch.Generator("cpu").manual_seed(11)]).images[0]
                elapsed = time.perf_counter() - start
                pipe.scheduler = original
                last["raw"] = np.asarray(image)
                return elapsed

            times = interleaved({"raw": raw, "job": lambda: job(0), "job_previews": lambda: job(1)}, repeats)
            job(0)
            raw()
            same = bool(np.array_equal(last["raw"], last["job"]))
            med, lo, hi = ratio(times["job"], times["raw"])
            pmed, plo, phi = ratio(times["job_previews"], times["raw"])
            rows.append({"family": model.family.label, "raw_ms": statistics.median(times["raw"]) * 1000,
                         "job_ms": statistics.median(times["job"]) * 1000, "ratio": med, "ratio_min": lo,
                         "ratio_max": hi, "previews_ratio": pmed, "previews_min": plo, "previews_max": phi,
                         "same_pixels": same})
            context.engine.residency.unload_all()
    finally:
        context.close()
    return rows


# ------------------------------------------------------------------------------ loads


def load_once(folder: str, kind: str, transformer: str) -> dict:
    """In this (fresh) process: import the libraries, then load once; the figures as a dict."""
    import torch  # noqa: F401 - imported before the baseline, as the app has it

    from studio.plugin_api import LoadOptions
    from studio_diffusers import DiffusersPlugin
    from studio_diffusers import model as _model
    from studio_diffusers.weights import _rss_bytes

    _model.import_for_first_run(Path(folder))
    import diffusers  # noqa: F401
    import transformers  # noqa: F401
    if kind != "full":
        import gguf  # noqa: F401
        import torchao  # noqa: F401
    options = {"full": LoadOptions(), "gguf-q8": LoadOptions(transformer=transformer),
               "int8": LoadOptions(quantize="int8")}[kind]
    import resource

    from studio.plugin_api import CancelToken, validate_request

    baseline = _rss_bytes()
    start = time.perf_counter()
    plugin = DiffusersPlugin()
    loaded = plugin.load(folder, options, lambda message: None)
    seconds = time.perf_counter() - start
    memory = dict(loaded.load_memory)
    # safetensors weights are memory-mapped and only count in RSS once read: one small image
    # reads them all, so the process peak after it is what the model really needs resident.
    request = validate_request(plugin.parameters(), {"prompt": "a red circle", "seed": 1, "steps": 2,
                                                     "size": (64, 64), "preview_every": 0}, "txt2img")
    list(loaded.run(request, CancelToken()))
    peak_after_image = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    import gc

    gc.collect()
    steady = _rss_bytes()  # what stays resident once loaded and run (not a peak)
    return {"kind": kind, "seconds": seconds, "peak_rss": memory["peak_rss_bytes"],
            "peak_above_baseline": memory["peak_rss_bytes"] - baseline,
            "peak_after_image": peak_after_image, "above_baseline_after_image": peak_after_image - baseline,
            "steady_above_baseline": steady - baseline,
            "weights": loaded.memory_bytes}


def bench_loads(workdir: Path, repeats: int) -> dict[str, dict[str, float]]:
    from tests.fixtures import families

    folder = workdir / "klein-60m"
    if not (folder / "model_index.json").is_file():
        families.build_flux2_klein(folder, layers=4, single_layers=8, heads=8, head_dim=64)
    gguf_file = workdir / "klein-60m-bfl-Q8_0.gguf"
    if not gguf_file.is_file():
        families.write_gguf(families.flux2_to_bfl(families.denoiser_state(folder)), gguf_file)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins")]), OMP_NUM_THREADS="1")
    results: dict[str, list[dict]] = {"full": [], "gguf-q8": [], "int8": []}
    order = list(results)
    for index in range(repeats):
        for kind in (order if index % 2 == 0 else order[::-1]):
            out = subprocess.run([sys.executable, __file__, "--load-one", kind, str(folder), str(gguf_file)],
                                 capture_output=True, text=True, env=env, timeout=900, check=True)
            results[kind].append(json.loads(out.stdout.strip().splitlines()[-1]))
    summary = {}
    for kind, rows in results.items():
        summary[kind] = {key: statistics.median(r[key] for r in rows)
                         for key in ("seconds", "peak_rss", "peak_above_baseline", "peak_after_image",
                                     "above_baseline_after_image", "steady_above_baseline", "weights")}
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--load-repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--workdir", help="keep the built models here (default: a temporary folder)")
    parser.add_argument("--skip-jobs", action="store_true")
    parser.add_argument("--skip-loads", action="store_true")
    parser.add_argument("--load-one", nargs=3, metavar=("KIND", "FOLDER", "GGUF"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load_one:
        kind, folder, transformer = args.load_one
        print(json.dumps(load_once(folder, kind, transformer)))
        return 0
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        if not args.skip_jobs:
            print(f"studio job / raw pipeline call: {args.size}x{args.size}, {args.steps} steps, "
                  f"{args.repeats} alternating repeats, 1 torch thread")
            for row in bench_jobs(workdir, args.repeats, args.steps, args.size):
                print(f"  {row['family']:20s} raw {row['raw_ms']:7.1f} ms  job {row['job_ms']:7.1f} ms  "
                      f"job/raw {row['ratio']:.3f} ({row['ratio_min']:.3f}-{row['ratio_max']:.3f})  "
                      f"with previews {row['previews_ratio']:.3f} ({row['previews_min']:.3f}-"
                      f"{row['previews_max']:.3f})  same pixels: {row['same_pixels']}   target <= 1.02")
        if not args.skip_loads:
            summary = bench_loads(workdir, args.load_repeats)
            full = summary["full"]
            print(f"loads of a Flux.2-klein-class pipeline, ~{full['weights'] / 2**20:.0f} MiB of weights, fresh "
                  f"process each, medians of {args.load_repeats}:")
            for kind, row in summary.items():
                print(f"  {kind:8s} {row['seconds']:6.2f} s (x{row['seconds'] / full['seconds']:.2f})  "
                      f"peak RSS {row['peak_rss'] / 2**20:7.0f} MiB (x{row['peak_rss'] / full['peak_rss']:.2f})  "
                      f"above pre-load {row['peak_above_baseline'] / 2**20:5.0f} MiB  |  after a first image: peak "
                      f"{row['peak_after_image'] / 2**20:5.0f} MiB "
                      f"(x{row['peak_after_image'] / full['peak_after_image']:.2f}), "
                      f"above pre-load {row['above_baseline_after_image'] / 2**20:5.0f} MiB "
                      f"(x{row['above_baseline_after_image'] / full['above_baseline_after_image']:.2f}); resident "
                      f"after it {row['steady_above_baseline'] / 2**20:5.0f} MiB "
                      f"(x{row['steady_above_baseline'] / full['steady_above_baseline']:.2f})  |  "
                      f"weights {row['weights'] / 2**20:6.1f} MiB (x{row['weights'] / full['weights']:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
