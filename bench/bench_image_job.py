"""How much does going through the diffusers plugin cost over a raw ``pipe(...)`` call?

Times, with the same settings and seed:
  raw         ``pipe(prompt, ...)`` on the very pipeline the studio loaded
  studio      a job through the engine (validate, queue, worker thread, events), previews off
  previews    the same with a preview every step
and prints the ratios studio/raw and previews/studio (medians, runs interleaved).

Uses the shipped ``assets/models/shapes-sd`` when it exists, otherwise builds a tiny random
SD pipeline in a temporary folder.

    PYTHONPATH=.:plugins python bench/bench_image_job.py --steps 10 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT, ROOT / "plugins"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))


def raw_seconds(model: Any, request: dict) -> float:
    """One plain diffusers call with the settings the plugin would use."""
    import torch

    width, height = request["size"]
    start = time.perf_counter()
    model.pipe(request["prompt"], negative_prompt=request["negative_prompt"],
               num_inference_steps=request["steps"], guidance_scale=request["cfg_scale"], width=width,
               height=height, generator=[torch.Generator("cpu").manual_seed(request["seed"])], output_type="pil")
    return time.perf_counter() - start


class EngineRunner:
    """Runs requests as studio jobs: submit to the real engine, wait for the job to finish.

    The job goes through everything a GUI click does (validation, the queue, the worker
    thread, event delivery to a listener), except writing the PNG (``save=False``), which the
    raw call does not do either."""

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
        self.context.engine.subscribe(self._count)

    def _count(self, job: Any, event: object) -> None:
        self.events += 1

    def seconds(self, request: dict) -> float:
        from studio.core.jobs import JobSpec, JobState

        values = {k: v for k, v in request.items() if k != "mode"}
        start = time.perf_counter()
        job = self.context.engine.submit(JobSpec("diffusers", self.source, values, mode="txt2img", save=False))
        job.wait()
        elapsed = time.perf_counter() - start
        assert job.state is JobState.DONE and job.result and job.result.artifacts, job.message
        return elapsed

    def model(self) -> Any:
        return self.context.engine.residency.loaded()[-1]

    def close(self) -> None:
        self.context.close()


def interleaved_medians(runs: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Alternate the contenders so that background load on a shared machine hits all alike."""
    for run in runs.values():
        run()  # warm-up (first-run costs: hashing, preview fit, allocator)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            times[name].append(run())
    return {name: statistics.median(values) for name, values in times.items()}


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
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=0, help="square size in pixels (default: native)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)

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
            medians = interleaved_medians({
                "raw": lambda: raw_seconds(model, request),
                "studio": lambda: runner.seconds(request),
                "previews": lambda: runner.seconds(dict(request, preview_every=1)),
            }, args.repeats)
        finally:
            runner.close()
    raw, studio, previews = medians["raw"], medians["studio"], medians["previews"]
    print(f"device {model.device}, {size[0]}x{size[1]}, {args.steps} steps, median of {args.repeats}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"raw pipe(...)              {raw * 1000:9.1f} ms")
    print(f"studio job (engine)        {studio * 1000:9.1f} ms")
    print(f"studio job + previews      {previews * 1000:9.1f} ms")
    print(f"studio / raw               {studio / raw:9.3f}   (target <= 1.02)")
    print(f"previews-on / off          {previews / studio:9.3f}   (target <= 1.03)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
