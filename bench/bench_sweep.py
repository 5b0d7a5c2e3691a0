"""Sweep throughput: 32 items on the built-in image model, the local engine against Ray with 2
workers on this machine, and what Ray costs per item.

Both runs make the same 32 items (8 seeds x 4 CFG values, 64x64, 20 steps) into their own
folders; the images are checked pixel for pixel.  Printed:

* local: model load, items wall time, median item time
* Ray: ray.init, workers ready (each loads the model), items wall time, median item time
  inside a worker, the driver's save time per item
* ratio = Ray items wall / local items wall (both without start-up)
* Ray overhead per item = (items wall x workers - sum of worker compute) / items: the time a
  worker is not computing (scheduling, transfer, waiting for the driver), in ms

Usage: python bench/bench_sweep.py [--items 32] [--workers 2] [--steps 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent.parent / "plugins")]


def sweep_text(items: int, steps: int) -> str:
    seeds = max(1, items // 4)
    return (f'kind = "image"\nmodel = "builtin"\nprompt = "a red circle on a black background"\n'
            f"steps = {steps}\nseeds = \"1-{seeds}\"\n\n"
            f"[[axis]]\nparam = \"cfg_scale\"\nvalues = [3.0, 5.0, 7.0, 9.0]\n")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    os.environ["STUDIO_HOME"] = str(root / "home")
    sweep_file = root / "bench.toml"
    sweep_file.write_text(sweep_text(args.items, args.steps), encoding="utf-8")

    from studio.core.context import StudioContext
    from studio.core.registry import Registry
    from studio.core.settings import Settings
    from studio.core.sweeps.local import LocalSweep
    from studio.core.sweeps.plan import build
    from studio.core.sweeps.ray_backend import RaySweep, connect, import_ray
    from studio.core.sweeps.runner import SweepRunner
    from studio.core.sweeps.spec import read

    registry = Registry.discover()
    plan = build(read(sweep_file), registry)
    n = len(plan.items)
    print(f"{n} items: {args.steps} steps, 64x64, built-in model; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.1f}")

    # -- local engine ------------------------------------------------------------------------
    local_out = root / "local"
    runner = SweepRunner(plan, local_out)
    context = StudioContext.create(Settings(output_dir=str(local_out)), registry)
    sweep = LocalSweep(runner, context.engine, context.load_options())
    context.engine.subscribe(sweep.handle)
    runner.begin()
    first_done: list[float] = []
    runner.listeners.append(lambda item, done: first_done.append(time.perf_counter()) if not first_done else None)
    started = time.perf_counter()
    sweep.start()
    sweep.finished.wait()
    ended = time.perf_counter()
    runner.end()
    context.close()
    assert sweep.outcome is not None and sweep.outcome.ok, sweep.outcome
    local_times = [d.seconds for d in runner.manifest.done.values()]
    # The items phase starts when the first item starts running, i.e. after the model load.
    local_items_wall = ended - started - (sweep.load_seconds or 0.0)
    print(f"local : model load {sweep.load_seconds:.2f} s; {n} items in {local_items_wall:.2f} s "
          f"(median item {statistics.median(local_times):.3f} s)")

    # -- Ray, a local instance ----------------------------------------------------------------
    ray_out = root / "ray"
    t0 = time.perf_counter()
    connect(None)
    init_seconds = time.perf_counter() - t0
    runner_r = SweepRunner(plan, ray_out)
    context_r = StudioContext.create(Settings(output_dir=str(ray_out)), registry)
    ray_sweep = RaySweep(runner_r, context_r.store, context_r.history, context_r.load_options(),
                         workers=args.workers)
    runner_r.begin()
    t1 = time.perf_counter()
    outcome = ray_sweep.run()
    runner_r.end()
    context_r.close()
    import_ray().shutdown()
    assert outcome.ok, outcome.message
    assert ray_sweep.ready_at is not None and ray_sweep.finished_at is not None
    ray_items_wall = ray_sweep.finished_at - ray_sweep.ready_at
    worker_times = [d.seconds for d in runner_r.manifest.done.values()]
    workers = len([s for s in ray_sweep.slots])
    overhead = (ray_items_wall * workers - sum(worker_times)) / n
    print(f"ray   : ray.init {init_seconds:.2f} s; {workers} workers ready in {ray_sweep.ready_at - t1:.2f} s; "
          f"{n} items in {ray_items_wall:.2f} s (median item inside a worker {statistics.median(worker_times):.3f} s; "
          f"driver saves {1000 * ray_sweep.save_seconds / n:.1f} ms/item)")

    # -- same pixels --------------------------------------------------------------------------
    import numpy as np
    from PIL import Image

    same = 0
    for key, done in runner.manifest.done.items():
        a = np.asarray(Image.open(local_out / done.files[0]))
        b = np.asarray(Image.open(ray_out / runner_r.manifest.done[key].files[0]))
        same += int(np.array_equal(a, b))
    print(f"pixel-identical: {same}/{n}")
    print(f"ratio Ray/local (items wall, start-up excluded): {ray_items_wall / local_items_wall:.3f} "
          f"(speed-up {local_items_wall / ray_items_wall:.2f}x with {workers} workers)")
    print(f"ratio including start-up (local load; Ray init + worker start): "
          f"{(init_seconds + ray_sweep.finished_at - t1) / (ended - started):.3f}")
    print(f"Ray overhead per item: {1000 * overhead:.0f} ms of worker time not spent computing")
    return 0 if same == n else 1


if __name__ == "__main__":
    sys.exit(main())
