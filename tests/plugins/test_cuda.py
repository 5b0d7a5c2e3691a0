"""The diffusers plugin on a CUDA device: fp16, CPU offload, attention slicing, VAE tiling.

Skipped where there is no CUDA device (CI, a laptop without one); run on the lent GPU machine.
The shipped Shapes model is compared with the same model on the CPU: a seed is drawn from a CPU
generator, so the same seed gives the same picture on either device (up to fp16 rounding).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

from studio.plugin_api import CancelToken, LoadOptions, Result, validate_request
from studio_diffusers import DiffusersPlugin, default_model_folder
from tests.fixtures import tiny_diffusers


def _generate(model, plugin, **values):
    raw = {"prompt": "a large red circle on the left, black background", "seed": 7, "steps": 20,
           "size": (64, 64), "preview_every": 0}
    raw.update(values)
    events = list(model.run(validate_request(plugin.parameters(), raw, "txt2img"), CancelToken()))
    result = events[-1]
    assert isinstance(result, Result)
    return np.asarray(result.artifacts[0].image, dtype=np.float32)


def test_shipped_model_same_picture_on_gpu_fp16_and_cpu():
    plugin = DiffusersPlugin()
    gpu = plugin.load(str(default_model_folder()), LoadOptions(device="cuda", dtype="float16"), lambda m: None)
    assert gpu.device.startswith("cuda")
    on_gpu = _generate(gpu, plugin)
    gpu.unload()
    cpu = plugin.load(str(default_model_folder()), LoadOptions(device="cpu", dtype="float32"), lambda m: None)
    on_cpu = _generate(cpu, plugin)
    cpu.unload()
    assert on_gpu.std() > 10, "a flat image"
    assert np.abs(on_gpu - on_cpu).mean() < 8.0, "same seed, different picture across devices"


@pytest.mark.parametrize("options", [dict(cpu_offload=True), dict(attention_slicing=True, vae_tiling=True)],
                         ids=["cpu_offload", "slicing_tiling"])
def test_memory_saving_options_run(tmp_path, options):
    plugin = DiffusersPlugin()
    folder = tiny_diffusers.build_sd(tmp_path / "tiny-sd")
    plain = plugin.load(str(folder), LoadOptions(device="cuda", dtype="float16"), lambda m: None)
    reference = _generate(plain, plugin, steps=4)
    plain.unload()
    notes = []
    model = plugin.load(str(folder), LoadOptions(device="cuda", dtype="float16", **options), notes.append)
    image = _generate(model, plugin, steps=4)
    model.unload()
    assert image.shape == reference.shape
    assert np.abs(image - reference).mean() < 4.0, "a memory-saving option changed the picture"


def test_gpu_memory_is_returned_on_unload():
    plugin = DiffusersPlugin()
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    model = plugin.load(str(default_model_folder()), LoadOptions(device="cuda", dtype="float16"), lambda m: None)
    _generate(model, plugin, steps=2)
    assert torch.cuda.memory_allocated() > before
    model.unload()
    assert torch.cuda.memory_allocated() - before < 1_000_000
