"""How much does going through the diffusers plugin cost over a raw ``pipe(...)`` call?

Two comparisons, same pipeline object's weights, same prompt, size, steps, CFG, scheduler
(class and config) and seed; the bench checks that both sides produce the same pixels:

  generation only   raw ``pipe(...)``            vs  a studio job with ``save=False``
  end to end        raw ``pipe(...)`` + ``image.save(path.png, pnginfo=...)``
                                                  vs  a studio job that saves, as the app does

A studio job goes through everything a Generate click does: validation, the history row,
the queue, the worker thread, one event per step to a listener (progress), the result; the
end-to-end job also writes the PNG atomically (temp file, fsync, rename) with its A1111
metadata and indexes it in SQLite.  The studio runs the pipeline under
``torch.inference_mode()`` (the pipelines themselves only turn off autograd); so that the
studio's own overhead stays visible, the raw call made that way is a contender too.  The raw
end-to-end side writes its PNG (with the same metadata text) the way a script would: plain
``Image.save``, no fsync, no index.  A third contender, the studio job with a preview every
step, gives previews-on / off.

Each repeat runs every contender once, in alternating order (forward, then backward, ...),
after one warm-up run each.  Printed: the median time of each, and the median and spread
(min-max) of the per-repeat ratios; a per-repeat ratio pairs runs made seconds apart, so
background load on a shared machine hits both sides of it alike.  Also printed: the process
CPU time ratio, a cross-check that other processes' load disturbs less.

Uses the shipped ``assets/models/shapes-sd`` when it exists, otherwise builds a tiny random
SD pipeline in a temporary folder.

    PYTHONPATH=.:plugins python bench/bench_image_job.py [--steps 20] [--repeats 11]
"""

from __future__ import annotations

import argparse
import statistics
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


class RawRunner:
    """Plain diffusers calls with the settings the plugin uses, on the caller's thread."""

    def __init__(self, model: Any, request: dict, out: Path):
        self.model, self.request, self.out = model, request, out
        self.out.mkdir(parents=True, exist_ok=True)
        self.count = 0
        self.last_image = None

    def generate(self, inference_mode: bool = False) -> Any:
        import torch

        r = self.request
        width, height = r["size"]
        with torch.inference_mode(inference_mode):
            image = self.model.pipe(
                r["prompt"], negative_prompt=r["negative_prompt"], num_inference_steps=r["steps"],
                guidance_scale=r["cfg_scale"], width=width, height=height,
                generator=[torch.Generator("cpu").manual_seed(r["seed"])], output_type="pil").images[0]
        self.last_image = image
        return image

    def seconds(self, save: bool, inference_mode: bool = False) -> float:
        start = time.perf_counter()
        image = self.generate(inference_mode)
        if save:
            from PIL.PngImagePlugin import PngInfo

            from studio.core.metadata import format_parameters

            info = PngInfo()
            info.add_text("parameters", format_parameters(self.parameters()))
            self.count += 1
            image.save(self.out / f"{self.count:05d}-{self.request['seed']}.png", pnginfo=info)
        return time.perf_counter() - start

    def parameters(self) -> dict:
        r = self.request
        return {"prompt": r["prompt"], "negative_prompt": r["negative_prompt"], "steps": r["steps"],
                "sampler": "default", "cfg_scale": r["cfg_scale"], "seed": r["seed"], "width": r["size"][0],
                "height": r["size"][1], "model": "bench"}


class EngineRunner:
    """Runs requests as studio jobs: submit to the real engine, wait for the job to finish."""

    def __init__(self, source: str, workdir: Path):
        import os

        os.environ["STUDIO_HOME"] = str(workdir / "home")
        from studio.core.context import StudioContext
        from studio.core.registry import Registry
        from studio.core.settings import Settings
        from studio_diffusers import DiffusersPlugin

        registry = Registry()
        registry.add("diffusers", DiffusersPlugin)
        self.context = StudioContext.create(Settings(output_dir=str(workdir / "out")), registry)
        self.source = source
        self.events = 0
        self.last_job: Any = None
        self.context.engine.subscribe(self._count)

    def _count(self, job: Any, event: object) -> None:
        self.events += 1

    def seconds(self, request: dict, save: bool = False) -> float:
        from studio.core.jobs import JobSpec, JobState

        values = {k: v for k, v in request.items() if k != "mode"}
        start = time.perf_counter()
        job = self.context.engine.submit(JobSpec("diffusers", self.source, values, mode="txt2img", save=save))
        job.wait()
        elapsed = time.perf_counter() - start
        assert job.state is JobState.DONE and job.result and job.result.artifacts, job.message
        assert bool(job.saved) == save
        self.last_job = job
        return elapsed

    def model(self) -> Any:
        return self.context.engine.residency.loaded()[-1]

    def close(self) -> None:
        self.context.close()


def _cpu_seconds() -> float:
    """CPU time of the whole process (all threads): less sensitive than wall time to other
    processes competing for the cores, though it also counts the BLAS/OpenMP threads' spinning."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def interleaved(runs: dict[str, Callable[[], float]], repeats: int) -> tuple[dict[str, list[float]],
                                                                          dict[str, list[float]]]:
    """Every contender once per repeat, the order reversed every other repeat, after a warm-up
    run each (first-run costs: hashing, preview fit, allocator, thread pools).  Returns the wall
    times and the process CPU times of every run."""
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    order = list(runs)
    for index in range(repeats):
        for name in (order if index % 2 == 0 else order[::-1]):
            before = _cpu_seconds()
            times[name].append(runs[name]())
            cpu[name].append(_cpu_seconds() - before)
    return times, cpu


def ratio_line(label: str, num: list[float], den: list[float], target: str) -> str:
    ratios = [a / b for a, b in zip(num, den, strict=False)]
    return (f"{label:34s} {statistics.median(ratios):6.3f}   (per-repeat ratios {min(ratios):.3f}-{max(ratios):.3f}; "
            f"ratio of medians {statistics.median(num) / statistics.median(den):.3f})   target {target}")


def resolve_source(source: str | None, workdir: Path) -> str:
    from studio_diffusers import default_model_folder

    if source is None:
        shipped = default_model_folder()
        if (shipped / "model_index.json").is_file():
            return str(shipped)
        from tests.fixtures.tiny_diffusers import build_sd

        return str(build_sd(workdir / "tiny-sd"))
    return source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model folder/file/id (default: shapes-sd, else a tiny random SD)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--size", type=int, default=0, help="square size in pixels (default: native)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        source = resolve_source(args.model, Path(tmp))
        print(f"model: {source}")
        runner = EngineRunner(source, Path(tmp))
        try:
            probe = {"prompt": "warm-up", "seed": 1, "steps": 1}
            runner.seconds(probe)  # loads the model through the residency manager
            model = runner.model()
            size = (args.size, args.size) if args.size else tuple(model.defaults["size"])
            request = {"mode": "txt2img", "prompt": "a red circle on a blue square", "negative_prompt": "",
                       "seed": 1, "steps": args.steps, "cfg_scale": 7.0, "size": size, "batch_count": 1,
                       "scheduler": "default", "loras": [], "preview_every": 0}
            raw = RawRunner(model, request, Path(tmp) / "raw-out")
            # Like with like: the same pixels from both sides.
            raw.generate()
            runner.seconds(request)
            studio_pixels = np.asarray(runner.last_job.result.artifacts[0].image)
            same = np.array_equal(np.asarray(raw.last_image.convert("RGB")), studio_pixels)
            # (in an order that keeps each compared pair next to each other)
            times, cpu = interleaved({
                "raw+save": lambda: raw.seconds(save=True),
                "studio+save": lambda: runner.seconds(request, save=True),
                "previews": lambda: runner.seconds(dict(request, preview_every=1)),
                "studio": lambda: runner.seconds(request),
                "raw": lambda: raw.seconds(save=False),
                "raw, inference mode": lambda: raw.seconds(save=False, inference_mode=True),
            }, args.repeats)
        finally:
            runner.close()
    med = {name: statistics.median(values) for name, values in times.items()}
    print(f"device {model.device}, {size[0]}x{size[1]}, {args.steps} steps, {args.repeats} repeats (alternating "
          f"order, after a warm-up each), torch threads {torch.get_num_threads()}; same pixels raw vs studio: "
          f"{'yes' if same else 'NO'}")
    print(f"raw pipe(...)                      {med['raw'] * 1000:9.1f} ms   "
          f"(min {min(times['raw']) * 1000:.1f}, max {max(times['raw']) * 1000:.1f})")
    print(f"studio job, no file                {med['studio'] * 1000:9.1f} ms")
    print(f"raw pipe(...) + Image.save(png)    {med['raw+save'] * 1000:9.1f} ms   (plain write: no fsync, no index)")
    print(f"studio job, saved                  {med['studio+save'] * 1000:9.1f} ms   "
          f"(atomic write + fsync, A1111 metadata, SQLite index)")
    print(f"studio job + previews, no file     {med['previews'] * 1000:9.1f} ms")
    print(f"raw pipe(...) in inference mode    {med['raw, inference mode'] * 1000:9.1f} ms   "
          f"(as the studio runs it: the studio's own overhead is the ratio to this one)")
    print(ratio_line("studio / raw, generation only", times["studio"], times["raw"], "<= 1.02"))
    print(ratio_line("studio / raw, end to end (saved)", times["studio+save"], times["raw+save"], "<= 1.02"))
    print(ratio_line("previews-on / off", times["previews"], times["studio"], "<= 1.03"))
    print(ratio_line("studio / raw in inference mode", times["studio"], times["raw, inference mode"], "-"))
    cpu_ratio = statistics.median(cpu["studio"]) / statistics.median(cpu["raw"])
    cpu_e2e = statistics.median(cpu["studio+save"]) / statistics.median(cpu["raw+save"])
    print(f"process CPU time, studio / raw:     {cpu_ratio:.3f} generation only, {cpu_e2e:.3f} end to end "
          f"(medians {statistics.median(cpu['raw']) * 1000:.0f} / {statistics.median(cpu['studio']) * 1000:.0f} ms)")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
