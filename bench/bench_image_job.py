"""How much does going through the diffusers plugin cost over a raw ``pipe(...)`` call?

Times, with the same settings and seed:
  raw         ``pipe(prompt, ...)`` on the plugin's own loaded pipeline
  studio      ``LoadedModel.run(request, cancel)`` fully consumed, previews off
  previews    the same with a preview every step
and prints the ratios studio/raw and previews/studio (median of several repeats).

Uses the shipped ``assets/models/shapes-sd`` when it exists, otherwise builds a tiny random
SD pipeline in a temporary folder.  ``studio_run_seconds`` is the one place to swap in the job
engine later (submit the request, wait for the Result).

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


def studio_run_seconds(model: Any, request: dict) -> float:
    """One run through the studio: today the plugin's generator; later, the job engine."""
    from studio.plugin_api import CancelToken, Result

    start = time.perf_counter()
    last = None
    for last in model.run(request, CancelToken()):
        pass
    assert isinstance(last, Result) and last.artifacts, "the run did not end with a Result"
    return time.perf_counter() - start


def median_seconds(fn: Callable[[Any, dict], float], model: Any, request: dict, repeats: int) -> float:
    fn(model, request)  # warm-up (first-run costs: hashing, preview fit, allocator)
    return statistics.median(fn(model, request) for _ in range(repeats))


def load_model(source: str | None, workdir: Path) -> Any:
    from studio.plugin_api import LoadOptions
    from studio_diffusers import DiffusersPlugin, default_model_folder

    if source is None:
        shipped = default_model_folder()
        if (shipped / "model_index.json").is_file():
            source = str(shipped)
        else:
            from tests.fixtures.tiny_diffusers import build_sd

            source = str(build_sd(workdir / "tiny-sd"))
    print(f"model: {source}")
    return DiffusersPlugin().load(source, LoadOptions(), lambda message: print(f"  {message}"))


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
        model = load_model(args.model, Path(tmp))
        size = (args.size, args.size) if args.size else tuple(model.defaults["size"])
        request = {"mode": "txt2img", "prompt": "a red circle on a blue square", "negative_prompt": "",
                   "seed": 1, "steps": args.steps, "cfg_scale": 7.0, "size": size, "batch_count": 1,
                   "scheduler": "default", "loras": [], "preview_every": 0}
        raw = median_seconds(raw_seconds, model, request, args.repeats)
        studio = median_seconds(studio_run_seconds, model, request, args.repeats)
        previews = median_seconds(studio_run_seconds, model, dict(request, preview_every=1), args.repeats)
        model.unload()
    print(f"device {model.device}, {size[0]}x{size[1]}, {args.steps} steps, median of {args.repeats}")
    print(f"raw pipe(...)        {raw * 1000:9.1f} ms")
    print(f"studio run()         {studio * 1000:9.1f} ms")
    print(f"studio + previews    {previews * 1000:9.1f} ms")
    print(f"studio / raw         {studio / raw:9.3f}")
    print(f"previews-on / off    {previews / studio:9.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
