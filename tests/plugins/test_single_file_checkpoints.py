"""Single-file checkpoints in the original (LDM / A1111 / ComfyUI) layout, through the plugin's load.

Tiny random-weight SD 1.5 and SDXL pipelines (tests/fixtures/tiny_diffusers.py) are written as
one original-layout file each (tests/fixtures/ldm_checkpoint.py, the inverse of diffusers'
single-file conversion) and loaded back by ``DiffusersPlugin.load`` -> diffusers'
``from_single_file``, which is never mocked.  Loading must give the same weights, and so the
same image for a seed, as the diffusers folder the file was made from.

A tiny checkpoint has non-standard sizes, so its configuration comes from a config folder
beside the file (the pipeline's own folder without its weights); the hub's default configs
(e.g. stable-diffusion-v1-5/stable-diffusion-v1-5) are unreachable here and would not fit.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from studio.core.errors import describe
from studio.plugin_api import CancelToken, LoadOptions, Result, validate_request
from studio_diffusers import DiffusersPlugin
from tests.fixtures import ldm_checkpoint, tiny_diffusers

SIZE = (64, 64)
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _empty_hub_cache(tmp_path, monkeypatch):
    """No test may find a real hub config by accident (or look for one outside tmp)."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-empty" / "hub"))


@pytest.fixture(scope="module")
def plugin():
    return DiffusersPlugin()


def config_only(folder: Path, target: Path) -> Path:
    """The pipeline folder without any weights: what the single file must supply."""
    shutil.copytree(folder, target, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    return target


@pytest.fixture(scope="module")
def sd_files(tmp_path_factory):
    """(diffusers folder, models dir holding tiny-sd.safetensors + its config folder tiny-sd.config/)."""
    root = tmp_path_factory.mktemp("sd-single")
    folder = tiny_diffusers.build_sd(root / "diffusers" / "tiny-sd")
    models = root / "models"
    ldm_checkpoint.sd_single_file(folder, models / "tiny-sd.safetensors")
    config_only(folder, models / "tiny-sd.config")
    return folder, models


@pytest.fixture(scope="module")
def sdxl_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("sdxl-single")
    # distinct encoder widths: diffusers tells SDXL's two text encoders in a file apart by width
    folder = tiny_diffusers.build_sdxl(root / "diffusers" / "tiny-sdxl", hidden_2=48)
    models = root / "models"
    ldm_checkpoint.sdxl_single_file(folder, models / "tiny-sdxl.safetensors")
    config_only(folder, models / "tiny-sdxl")
    return folder, models


@pytest.fixture(scope="module")
def sd_reference(plugin, sd_files):
    model = plugin.load(str(sd_files[0]), LoadOptions(), lambda _m: None)
    yield model
    model.unload()


def keys_of(file: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(file), framework="pt") as f:
        return list(f.keys())


def txt2img(plugin, model, seed=1234, steps=3) -> Result:
    raw = {"prompt": "a red circle", "seed": seed, "steps": steps, "size": SIZE, "preview_every": 0}
    return list(model.run(validate_request(plugin.parameters(), raw, "txt2img"), CancelToken()))[-1]


def pixels(result: Result) -> np.ndarray:
    return np.asarray(result.artifacts[0].image, dtype=np.int16)


def assert_same_weights(a, b, components):
    for name in components:
        left, right = getattr(a, name).state_dict(), getattr(b, name).state_dict()
        assert left.keys() == right.keys(), name
        different = [k for k in left if not torch.equal(left[k].float(), right[k].float())]
        assert not different, (name, different[:5])


# ---------------------------------------------------------------------------- the files themselves


def test_sd_file_has_the_original_layout(sd_files):
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type, load_single_file_checkpoint

    keys = keys_of(sd_files[1] / "tiny-sd.safetensors")
    assert all(k.startswith(("model.diffusion_model.", "first_stage_model.", "cond_stage_model.transformer."))
               for k in keys)
    unet, vae = "model.diffusion_model.", "first_stage_model."
    for key in (unet + "input_blocks.0.0.weight", unet + "input_blocks.1.0.in_layers.2.weight",
                unet + "input_blocks.2.0.op.weight", unet + "middle_block.1.proj_in.weight",
                unet + "output_blocks.1.2.conv.weight", unet + "out.2.weight",
                vae + "encoder.down.0.block.0.norm1.weight", vae + "decoder.up.1.upsample.conv.weight",
                vae + "encoder.mid.attn_1.q.weight", vae + "quant_conv.weight",
                "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"):
        assert key in keys, key
    assert not any(k.startswith(("down_blocks", "unet.", "text_model.")) for k in keys)
    checkpoint = load_single_file_checkpoint(str(sd_files[1] / "tiny-sd.safetensors"))
    assert checkpoint["first_stage_model.encoder.mid.attn_1.q.weight"].ndim == 4  # 1x1 conv, as in real files
    assert infer_diffusers_model_type(checkpoint) == "v1"


def test_sdxl_file_has_the_original_layout(sdxl_files):
    keys = keys_of(sdxl_files[1] / "tiny-sdxl.safetensors")
    assert all(k.startswith(("model.diffusion_model.", "first_stage_model.", "conditioner.embedders.0.transformer.",
                             "conditioner.embedders.1.model.")) for k in keys)
    for key in ("model.diffusion_model.label_emb.0.0.weight",
                "conditioner.embedders.0.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight",
                "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight",
                "conditioner.embedders.1.model.transformer.resblocks.1.mlp.c_proj.bias",
                "conditioner.embedders.1.model.positional_embedding", "conditioner.embedders.1.model.text_projection",
                "conditioner.embedders.1.model.ln_final.weight"):
        assert key in keys, key


# ---------------------------------------------------------------------------- round trips


def test_sd_single_file_matches_its_folder(plugin, sd_files, sd_reference):
    file = sd_files[1] / "tiny-sd.safetensors"
    messages = []
    model = plugin.load(str(file), LoadOptions(), messages.append)
    try:
        assert type(model.pipe).__name__ == "StableDiffusionPipeline"
        assert any("tiny-sd.config" in m for m in messages), messages
        assert_same_weights(model.pipe, sd_reference.pipe, ("unet", "vae", "text_encoder"))
        assert model.defaults["size"] == SIZE
        from_file, from_folder = txt2img(plugin, model), txt2img(plugin, sd_reference)
        assert np.abs(pixels(from_file) - pixels(from_folder)).max() <= 1
        assert pixels(from_file).std() > 1.0  # an actual image, not a constant
        params = from_file.artifacts[0].parameters
        assert params["model"] == "tiny-sd" and len(params["model_hash"]) == 10
        other_seed = txt2img(plugin, model, seed=99)
        assert np.abs(pixels(other_seed) - pixels(from_file)).mean() > 1.0
    finally:
        model.unload()


def test_sdxl_single_file_matches_its_folder(plugin, sdxl_files):
    folder, models = sdxl_files
    reference = plugin.load(str(folder), LoadOptions(), lambda _m: None)
    model = plugin.load(str(models / "tiny-sdxl.safetensors"), LoadOptions(), lambda _m: None)
    try:
        assert type(model.pipe).__name__ == "StableDiffusionXLPipeline"
        assert_same_weights(model.pipe, reference.pipe, ("unet", "vae", "text_encoder", "text_encoder_2"))
        from_file, from_folder = txt2img(plugin, model, steps=2), txt2img(plugin, reference, steps=2)
        assert np.abs(pixels(from_file) - pixels(from_folder)).max() <= 1
    finally:
        model.unload()
        reference.unload()


def test_pickle_ckpt_needs_allow_pickle(plugin, sd_files, sd_reference, tmp_path):
    from safetensors.torch import load_file

    folder, models = sd_files
    ckpt_dir = tmp_path / "ckpt"
    ckpt = ckpt_dir / "tiny-sd.ckpt"
    ckpt_dir.mkdir()
    torch.save({"state_dict": load_file(str(models / "tiny-sd.safetensors"))}, ckpt)  # A1111's .ckpt nesting
    shutil.copytree(models / "tiny-sd.config", ckpt_dir / "tiny-sd.config")
    with pytest.raises(ValueError, match="pickle") as refused:
        plugin.load(str(ckpt), LoadOptions(), lambda _m: None)
    assert "allow pickle" in str(refused.value)
    model = plugin.load(str(ckpt), LoadOptions(allow_pickle=True), lambda _m: None)
    try:
        assert_same_weights(model.pipe, sd_reference.pipe, ("unet", "vae", "text_encoder"))
        from_ckpt, from_folder = txt2img(plugin, model, steps=2), txt2img(plugin, sd_reference, steps=2)
        assert np.abs(pixels(from_ckpt) - pixels(from_folder)).max() <= 1
    finally:
        model.unload()


def test_cached_hub_config_is_used_offline(plugin, sd_files, sd_reference, tmp_path, monkeypatch):
    """No config beside the file: the config of the repo diffusers names for the model type
    ('v1' -> stable-diffusion-v1-5/stable-diffusion-v1-5) is taken from the local hub cache.  Its
    model_index.json names a safety checker and feature extractor, as the real repo's does; Studio
    uses neither, so their folders need not be there."""
    import json

    folder, models = sd_files
    cache = tmp_path / "hf" / "hub"
    repo = cache / "models--stable-diffusion-v1-5--stable-diffusion-v1-5"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot = config_only(folder, repo / "snapshots" / COMMIT)  # stands in for the real repo's configs
    index = json.loads((snapshot / "model_index.json").read_text())
    index.update(safety_checker=["stable_diffusion", "StableDiffusionSafetyChecker"],
                 feature_extractor=["transformers", "CLIPImageProcessor"], requires_safety_checker=True)
    (snapshot / "model_index.json").write_text(json.dumps(index))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    lonely = tmp_path / "lonely" / "tiny-sd.safetensors"
    lonely.parent.mkdir()
    shutil.copy(models / "tiny-sd.safetensors", lonely)
    messages = []
    model = plugin.load(str(lonely), LoadOptions(allow_download=False), messages.append)
    try:
        assert any("stable-diffusion-v1-5/stable-diffusion-v1-5 (Hugging Face cache)" in m for m in messages)
        assert_same_weights(model.pipe, sd_reference.pipe, ("unet", "vae", "text_encoder"))
    finally:
        model.unload()


# ---------------------------------------------------------------------------- clear refusals


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_missing_config_is_one_clear_sentence(plugin, sd_files, tmp_path, monkeypatch):
    lonely = tmp_path / "lonely" / "tiny-sd.safetensors"
    lonely.parent.mkdir()
    shutil.copy(sd_files[1] / "tiny-sd.safetensors", lonely)
    records = _Records()
    diffusers_logger = logging.getLogger("diffusers")
    diffusers_logger.addHandler(records)
    try:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # the hub library itself stays offline here
        with pytest.raises(RuntimeError) as no_config:
            plugin.load(str(lonely), LoadOptions(allow_download=False), lambda _m: None)
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        with pytest.raises(RuntimeError) as offline:
            plugin.load(str(lonely), LoadOptions(allow_download=True), lambda _m: None)
    finally:
        diffusers_logger.removeHandler(records)
    text = str(no_config.value)
    for part in ("tiny-sd.safetensors", "Stable Diffusion 1.x", "stable-diffusion-v1-5/stable-diffusion-v1-5",
                 str(tmp_path / "hf-empty" / "hub"), "model_index.json", "named 'tiny-sd'", "'allow download'"):
        assert part in text, part
    assert "\n" not in text and describe(no_config.value) == text
    assert "HF_HUB_OFFLINE" in str(offline.value) and "\n" not in str(offline.value)
    # 'allow download' off: diffusers' own fallback (download despite local_files_only) is never reached
    assert not any("download" in m.lower() for m in records.messages), records.messages


def test_config_folder_of_another_architecture(plugin, sd_files, sdxl_files, tmp_path):
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    shutil.copy(sd_files[1] / "tiny-sd.safetensors", wrong / "tiny-sd.safetensors")
    shutil.copytree(sdxl_files[1] / "tiny-sdxl", wrong / "tiny-sd")
    with pytest.raises(ValueError, match="Stable Diffusion 1.x/2.x checkpoint but its config folder tiny-sd is a "
                                         "StableDiffusionXLPipeline") as family:
        plugin.load(str(wrong / "tiny-sd.safetensors"), LoadOptions(), lambda _m: None)
    assert "\n" not in str(family.value)


def test_config_folder_of_other_sizes(plugin, sd_files, tmp_path):
    import json

    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(sd_files[1] / "tiny-sd.safetensors", other / "tiny-sd.safetensors")
    config = shutil.copytree(sd_files[1] / "tiny-sd.config", other / "config")  # the plain 'config' name
    te = config / "text_encoder" / "config.json"
    te.write_text(json.dumps(dict(json.loads(te.read_text()), hidden_size=64)))
    with pytest.raises(ValueError, match="does not match the configuration in the config folder config") as sizes:
        plugin.load(str(other / "tiny-sd.safetensors"), LoadOptions(), lambda _m: None)
    text = str(sizes.value)
    assert "is [77, 32] in the file but [77, 64] in the configuration" in text and "\n" not in text
    assert "low_cpu_mem_usage" not in text  # diffusers' advice to load random weights instead is not passed on


def test_incomplete_config_folder(plugin, sd_files, tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(sd_files[1] / "tiny-sd.safetensors", partial / "tiny-sd.safetensors")
    shutil.copytree(sd_files[1] / "tiny-sd.config", partial / "tiny-sd_config")
    shutil.rmtree(partial / "tiny-sd_config" / "tokenizer")
    with pytest.raises(ValueError, match="tiny-sd_config for tiny-sd.safetensors lacks tokenizer"):
        plugin.load(str(partial / "tiny-sd.safetensors"), LoadOptions(), lambda _m: None)


def test_not_a_safetensors_file(plugin, tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\xff" * 64)
    with pytest.raises(ValueError, match="junk.safetensors is not a readable .safetensors file"):
        plugin.load(str(junk), LoadOptions(), lambda _m: None)


def test_checkpoint_without_its_vae(plugin, sd_files, tmp_path):
    from safetensors.torch import load_file, save_file

    state = load_file(str(sd_files[1] / "tiny-sd.safetensors"))
    (tmp_path / "novae").mkdir()
    save_file({k: v for k, v in state.items() if not k.startswith("first_stage_model.")},
              str(tmp_path / "novae" / "tiny-sd.safetensors"))
    shutil.copytree(sd_files[1] / "tiny-sd.config", tmp_path / "novae" / "tiny-sd")
    with pytest.raises(RuntimeError, match="AutoencoderKL.*not a complete pipeline checkpoint") as incomplete:
        plugin.load(str(tmp_path / "novae" / "tiny-sd.safetensors"), LoadOptions(), lambda _m: None)
    assert "\n" not in str(incomplete.value)
