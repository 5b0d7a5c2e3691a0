"""FlowEdit on SD3 / Flux.1 (issue #13, item 8): reconstruction and time per edit.

Tiny random SD3 and Flux.1-dev pipelines (tests/fixtures/families.py, saved and loaded through the
latent plugin), a PIL-drawn 64x64 red circle, prompt "a red circle", edit "red->blue" at 1:

* amount 0 vs the VAE round trip of the image's (refined) latent, computed separately: PSNR;
* seconds per edit (the model's ``run``, image encoded and cached beforehand) at the request's
  default 20 steps (FlowEdit runs the last 16: skip 0.2) and at the 8-step draft; the families
  and settings alternate within each repeat; medians over the repeats.

Random weights: the images are noise, so the figures are about exactness and cost, not looks.

    PYTHONPATH=.:plugins python bench/bench_flow_edit.py [--repeats 7] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT, ROOT / "plugins"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch
    from PIL import Image, ImageDraw

    from studio.plugin_api import CancelToken, LoadOptions, validate_request
    from studio_latent import DiffusionLatentPlugin
    from studio_latent.image_edit import psnr
    from tests.fixtures import families

    torch.set_num_threads(args.threads)
    plugin = DiffusionLatentPlugin()
    root = Path(tempfile.mkdtemp(prefix="bench-flow-"))
    image = Image.new("RGB", (64, 64), (10, 10, 10))
    ImageDraw.Draw(image).ellipse((18, 22, 42, 46), fill=(220, 30, 30))
    drawing = root / "mine.png"
    image.save(drawing)
    models = {name: plugin.load(str(families.build(name, root / name)), LoadOptions(), lambda s: None)
              for name in ("sd3", "flux")}

    def run(model, **request):
        clean = validate_request(plugin.parameters(), {"image": str(drawing), "prompt": "a red circle", **request},
                                 "edit")
        return list(model.run(clean, CancelToken()))[-1]

    report: dict = {}
    for name, model in models.items():
        zero = run(model, pairs=[["red", "blue", 0.0]])
        enc = model.editor.encode(image, (64, 64), 30)
        report[name] = {"amount0_psnr_vs_vae_round_trip": psnr(zero.artifacts[0].image, model.editor.decode(enc.x0)),
                        "reconstruction_psnr_vs_drawing": round(enc.psnr, 2)}
        run(model, pairs=[["red", "blue", 1.0]], steps=8)  # warm-up
    settings = {"20 steps": {"steps": 20}, "draft": {"steps": 20, "draft": True}}
    times: dict = {(n, s): [] for n in models for s in settings}
    for r in range(args.repeats):
        order = [(n, s) for n in models for s in settings]
        for key in (order if r % 2 == 0 else order[::-1]):
            started = time.perf_counter()
            result = run(models[key[0]], pairs=[["red", "blue", 1.0]], **settings[key[1]])
            times[key].append(time.perf_counter() - started)
            report[key[0]][f"n_max ({key[1]})"] = f"{result.info['n_max']} of {result.info['steps']}"
    for (name, setting), values in times.items():
        report[name][f"seconds per edit ({setting})"] = round(statistics.median(values), 3)
        report[name][f"spread ({setting})"] = [round(min(values), 3), round(max(values), 3)]
    print(json.dumps({"repeats": args.repeats, "threads": args.threads, "size": "64x64", **report}, indent=1))


if __name__ == "__main__":
    main()
