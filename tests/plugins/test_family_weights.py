"""Split and quantized weights on tiny family models: a GGUF transformer (Q8_0, written here with
the ``gguf`` package in diffusers' key layout and in the original Black Forest Labs layout that
published Flux.2 files use), a single-file .safetensors transformer, and weight-only int8 / fp8
at load.  Each image is compared with the full-precision one of the same seed; the CLI paths
(``--transformer``, ``--quantize``, warnings on stderr, bad sizes) run as a user runs them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("gguf")

from studio.plugin_api import (
    CancelToken,
    LoadOptions,
    ReportsLoadMemory,
    Result,
    validate_request,
)
from studio_diffusers import DiffusersPlugin
from tests.fixtures import families

SIZE = (64, 64)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def plugin():
    return DiffusersPlugin()


@pytest.fixture(scope="module")
def klein(tmp_path_factory):
    return families.build("flux2-klein", tmp_path_factory.mktemp("w") / "flux2-klein")


@pytest.fixture(scope="module")
def files(klein, tmp_path_factory):
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("files")
    state = families.denoiser_state(klein)
    save_file(state, str(folder / "klein-transformer.safetensors"))
    return {"diffusers": families.write_gguf(state, folder / "klein-diffusers-Q8_0.gguf"),
            "bfl": families.write_gguf(families.flux2_to_bfl(state), folder / "klein-bfl-Q8_0.gguf"),
            "safetensors": folder / "klein-transformer.safetensors"}


def image(plugin, folder, options: LoadOptions):
    model = plugin.load(str(folder), options, lambda message: None)
    try:
        req = validate_request(plugin.parameters(), {"prompt": "a red circle", "seed": 3, "steps": 3, "size": SIZE,
                                                     "preview_every": 0}, "txt2img")
        result = list(model.run(req, CancelToken()))[-1]
        assert isinstance(result, Result)
        return np.asarray(result.artifacts[0].image, np.float32), model, result
    finally:
        model.unload()


@pytest.fixture(scope="module")
def full(plugin, klein):
    return image(plugin, klein, LoadOptions())[0]


def close_to(a: np.ndarray, b: np.ndarray, mean_abs: float) -> bool:
    return float(np.abs(a - b).mean()) < mean_abs and np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99


def test_bfl_layout_round_trips_through_diffusers_converter(klein):
    from diffusers.loaders.single_file_utils import (
        convert_flux2_transformer_checkpoint_to_diffusers,
    )

    state = families.denoiser_state(klein)
    bfl = families.flux2_to_bfl(state)
    assert "double_blocks.0.img_attn.qkv.weight" in bfl and "final_layer.adaLN_modulation.1.weight" in bfl
    back = convert_flux2_transformer_checkpoint_to_diffusers(dict(bfl))
    assert set(back) == set(state) and all(torch.equal(back[k], state[k]) for k in state)


@pytest.mark.parametrize("layout", ["diffusers", "bfl"])
def test_gguf_q8_transformer_loads_quantized_and_draws_the_same_picture(plugin, klein, files, full, layout):
    pixels, model, result = image(plugin, klein, LoadOptions(transformer=str(files[layout])))
    assert close_to(pixels, full, 2.0), "the Q8_0 transformer should draw nearly the same picture"
    assert not np.array_equal(pixels, full)  # it really ran the quantized weights
    assert isinstance(model, ReportsLoadMemory)
    assert model.load_memory["transformer_file"] == files[layout].name
    assert model.load_memory["peak_rss_bytes"] > 0
    assert result.artifacts[0].parameters["transformer"] == files[layout].name


def test_both_gguf_layouts_give_identical_pictures(plugin, klein, files):
    a = image(plugin, klein, LoadOptions(transformer=str(files["diffusers"])))[0]
    b = image(plugin, klein, LoadOptions(transformer=str(files["bfl"])))[0]
    assert np.array_equal(a, b)


def test_gguf_weights_stay_quantized(plugin, klein, files):
    model = plugin.load(str(klein), LoadOptions(transformer=str(files["bfl"])), lambda m: None)
    try:
        weight = model.denoiser.transformer_blocks[0].attn.to_q.weight
        assert type(weight).__name__ == "GGUFParameter" and weight.dtype == torch.uint8
        full_bytes = sum(v.numel() * 4 for v in families.denoiser_state(klein).values())
        from studio_diffusers.weights import module_bytes

        assert module_bytes(model.denoiser) < 0.5 * full_bytes
    finally:
        model.unload()


def test_single_file_safetensors_transformer_is_the_same_model(plugin, klein, files, full):
    pixels = image(plugin, klein, LoadOptions(transformer=str(files["safetensors"])))[0]
    assert np.array_equal(pixels, full)


@pytest.mark.parametrize("kind", ["int8", "fp8"])
def test_weight_only_quantization_saves_memory_and_keeps_the_picture(plugin, klein, full, kind):
    pixels, model, result = image(plugin, klein, LoadOptions(quantize=kind))
    memory = model.load_memory
    assert memory["quantization"] == kind and set(memory["quantized_components"]) == {"transformer", "text_encoder"}
    assert memory["quantized_saved_bytes"] > 0.4 * memory["weights_bytes_before"]
    assert memory["weights_bytes"] == memory["weights_bytes_before"] - memory["quantized_saved_bytes"]
    assert close_to(pixels, full, 4.0)
    assert result.info["load_memory"]["quantization"] == kind
    assert result.artifacts[0].parameters["quantize"] == kind


def test_transformer_file_that_is_not_one_fails_in_one_sentence(plugin, klein, tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf file at all")
    with pytest.raises(ValueError, match=r"broken\.gguf does not fit flux2-klein's transformer"):
        plugin.load(str(klein), LoadOptions(transformer=str(bad)), lambda m: None)


# ------------------------------------------------------------------------------ CLI


def cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, STUDIO_HOME=str(home), OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins"), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "studio", "image", *args], capture_output=True, text=True,
                          env=env, timeout=600, check=False)


@pytest.mark.slow
def test_cli_gguf_transformer_and_quantize(klein, files, tmp_path):
    done = cli("a red circle", "--model", str(klein), "--transformer", str(files["bfl"]), "--size", "64x64",
               "--steps", "2", "--negative", "blurry", "--out", str(tmp_path / "out"), home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "studio: warning: The negative prompt was ignored: Flux.2 klein takes no negative prompt" in done.stderr
    assert "peak RSS" in done.stderr and "Traceback" not in done.stderr
    assert Path(done.stdout.strip().splitlines()[-1]).is_file()
    done = cli("a red circle", "--model", str(klein), "--quantize", "int8", "--size", "64x64", "--steps", "2",
               "--out", str(tmp_path / "out"), home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "int8 saved" in done.stderr


@pytest.mark.slow
def test_cli_size_off_the_multiple_is_exit_2_naming_it(klein, tmp_path):
    done = cli("a red circle", "--model", str(klein), "--size", "72x72", "--steps", "2",
               "--out", str(tmp_path / "out"), home=tmp_path)
    assert done.returncode == 2
    assert "multiple of 16 on both sides for Flux.2 klein models" in done.stderr.strip().splitlines()[-1]
    assert not list((tmp_path / "out").rglob("*.png"))
