"""Latent panel benchmarks (CPU).

1. Slider tick -> preview on screen, default latent model (the Shapes vector VAE), through the
   whole stack: LatentPanel slider -> throttle timer -> LatentSession -> Engine (interactive
   lane) -> plugin decode -> EngineBridge -> ImageView.  Single ticks and a 60 Hz drag.
   Target: <= 200 ms on 2 CPU cores.
2. An 8-frame seed+prompt walk on the default image model (assets/models/shapes-sd if present,
   else the tiny random SD pipeline from tests/fixtures) through the diffusion latent plugin.

    python bench/bench_latent.py [--threads 2] [--ticks 30] [--steps 20]

If assets/models/shapes-vae is not shipped yet, (1) uses a randomly initialised VectorVAE of the
same architecture and size (identical compute per preview) and says so.
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


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def vae_folder(tmp: Path) -> tuple[str, str]:
    shipped = ROOT / "assets" / "models" / "shapes-vae"
    if (shipped / "model.safetensors").is_file():
        return str(shipped), "shipped assets/models/shapes-vae"
    import torch

    from studio.shapes.vector_vae import VectorVAE, save_vector_vae

    torch.manual_seed(0)
    folder = tmp / "shapes-vae-random"
    save_vector_vae(VectorVAE(), folder)
    return str(folder), "NOT SHIPPED YET: random-init VectorVAE, same architecture (latent 16) and compute"


def bench_slider(args, tmp: Path) -> None:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from studio.core.context import StudioContext
    from studio.core.registry import Registry
    from studio.core.settings import Settings
    from studio.qt.bridge import EngineBridge
    from studio.qt.panels.latent import LatentPanel
    from studio_latent import VectorLatentPlugin

    folder, what = vae_folder(tmp)
    registry = Registry()
    registry.add("latent-vae", VectorLatentPlugin)
    os.environ["STUDIO_HOME"] = str(tmp / "home")
    context = StudioContext.create(Settings(), registry)
    bridge = EngineBridge(context.engine)
    panel = LatentPanel(context, bridge)
    bridge.feed(panel.session)
    panel.model_picker.combo.setEditText(folder)
    panel.resize(1300, 900)
    shown: list[float] = []
    panel.previewShown.connect(shown.append)
    panel.show()

    def pump_until(cond, timeout=120.0):
        end = time.perf_counter() + timeout
        while not cond():
            app.processEvents()
            time.sleep(0.0005)
            if time.perf_counter() > end:
                raise TimeoutError

    t0 = time.perf_counter()
    pump_until(lambda: panel.sliders.rows and shown)
    print(f"model: {what}")
    print(f"load + directions + first preview: {time.perf_counter() - t0:.2f} s "
          f"({len(panel.session.directions)} directions)")
    names = [n for n in ("x", "y", "size", "hue", "pc0") if n in panel.sliders.rows]
    lat = []
    for i in range(args.ticks):
        row = panel.sliders.rows[names[i % len(names)]]
        n = len(shown)
        tick = time.perf_counter()
        row.slider.setValue(40 + (i * 37) % 120)
        pump_until(lambda n=n: len(shown) > n)
        lat.append((shown[-1] - tick) * 1000)
    print(f"single tick -> preview on screen: median {statistics.median(lat):.1f} ms, p95 {pct(lat, 0.95):.1f} ms, "
          f"max {max(lat):.1f} ms over {len(lat)} ticks")

    # a drag: 60 ticks at 60 Hz; newest value wins; latency = last tick -> its preview drawn
    row = panel.sliders.rows["x" if "x" in panel.sliders.rows else names[0]]
    n0 = len(shown)
    start = time.perf_counter()
    last_tick = start
    for i in range(60):
        row.slider.setValue(20 + i * 2)
        last_tick = time.perf_counter()
        target = start + (i + 1) / 60
        while time.perf_counter() < target:
            app.processEvents()
            time.sleep(0.0005)
    want = row.amount()
    pump_until(lambda: panel.session.state.preview_latent is not None and len(shown) > n0 and
               abs(panel.session.amounts.get(row.view.name, 0) - want) < 1e-9 and not panel._timer.isActive()
               and context.engine.current is None and not context.engine.queued())
    drawn = len(shown) - n0
    gaps = [(b - a) * 1000 for a, b in zip(shown[n0:-1], shown[n0 + 1:], strict=True)]
    print(f"60 Hz drag (60 ticks, 1 s): {drawn} previews drawn; newest tick -> its preview "
          f"{(shown[-1] - last_tick) * 1000:.1f} ms after the drag ended; "
          f"median gap between previews {statistics.median(gaps) if gaps else 0:.1f} ms")
    ok = pct(lat, 0.95) <= 200
    print(f"target <= 200 ms (p95 single tick): {'MET' if ok else 'MISSED'}")
    bridge.close()
    context.close()


def bench_walk(args, tmp: Path) -> None:

    from studio.plugin_api import CancelToken, LoadOptions, validate_request
    from studio_latent import DiffusionLatentPlugin

    shipped = ROOT / "assets" / "models" / "shapes-sd"
    if (shipped / "model_index.json").is_file():
        folder, what = shipped, "shipped assets/models/shapes-sd"
    else:
        from tests.fixtures import tiny_diffusers

        folder = tiny_diffusers.build_sd(tmp / "tiny-sd")
        what = "NOT SHIPPED YET: tiny random SD pipeline (tests/fixtures/tiny_diffusers.py), 64x64"
    plugin = DiffusionLatentPlugin()
    t0 = time.perf_counter()
    model = plugin.load(str(folder), LoadOptions(device="cpu"), lambda m: None)
    load_s = time.perf_counter() - t0
    req = validate_request(plugin.parameters(), {"prompt": "a red circle on a black background",
                                                 "prompt_to": "a blue square on a white background", "seed": 1,
                                                 "seed_to": 2, "frames": 8, "steps": args.steps}, "walk")
    t0 = time.perf_counter()
    result = list(model.run(req, CancelToken()))[-1]
    walk_s = time.perf_counter() - t0
    s = result.info["smoothness"]
    size = result.artifacts[0].image.size
    print(f"image model: {what}")
    print(f"8-frame seed+prompt walk, {args.steps} DDIM steps, {size[0]}x{size[1]}: {walk_s:.2f} s "
          f"({walk_s / 8:.2f} s/frame; load {load_s:.2f} s); largest step = {s['jump_ratio']:.2f}x the mean")
    model.unload()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ticks", type=int, default=30)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} CPUs visible")
    with tempfile.TemporaryDirectory() as tmp:
        bench_slider(args, Path(tmp))
        bench_walk(args, Path(tmp))


if __name__ == "__main__":
    main()
