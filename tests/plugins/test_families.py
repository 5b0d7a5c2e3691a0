"""Every DiT family through the diffusers plugin: tiny random-weight folders of the real
diffusers classes (tests/fixtures/families.py), saved with save_pretrained and loaded through
the plugin's own ``load``.  Each family: txt2img with previews and progress, the modes it has
(and a clear refusal of those it has not), CFG and negative prompt (effect or notice), a size it
cannot make (refused, naming its multiple), every sampler it offers, and an interrupt.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from PIL import Image

from studio.plugin_api import (
    CancelToken,
    LoadOptions,
    Log,
    ModelHints,
    ParamError,
    Preview,
    Progress,
    ReportsUnsupported,
    Result,
    validate_request,
)
from studio_diffusers import DiffusersPlugin
from tests.fixtures import families

SIZE = (64, 64)
STEPS = 2
NAMES = ["sd3", "flux", "flux-kontext", "flux2-klein", "chroma", "qwen-image", "z-image", "hidream", "sana",
         "pixart-sigma", "lumina2"]
# What each family must offer (diffusers 0.42 has these pipelines) and its real size multiple.
EXPECTED_MODES = {
    "sd3": {"txt2img", "img2img", "inpaint"}, "flux": {"txt2img", "img2img", "inpaint"},
    "flux-kontext": {"txt2img", "edit", "inpaint"}, "flux2-klein": {"txt2img", "edit", "inpaint"},
    "chroma": {"txt2img", "img2img", "inpaint"}, "qwen-image": {"txt2img", "img2img", "inpaint"},
    "z-image": {"txt2img", "img2img", "inpaint"}, "hidream": {"txt2img"}, "sana": {"txt2img"},
    "pixart-sigma": {"txt2img"}, "lumina2": {"txt2img"},
}
MULTIPLE = {"sana": 32}  # the others: VAE 8 x 2 (packing or patch) = 16
NATIVE = {"flux": 1024, "flux-kontext": 1024, "flux2-klein": 1024, "chroma": 1024, "qwen-image": 1328,
          "z-image": 1024, "hidream": 1024}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads only add contention on a shared machine
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def plugin():
    return DiffusersPlugin()


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("families")


@pytest.fixture(scope="module")
def load(plugin, root):
    cache: dict[str, object] = {}

    def get(name: str):
        if name not in cache:
            folder = families.build(name, root / name)
            cache[name] = plugin.load(str(folder), LoadOptions(), lambda message: None)
        return cache[name]

    yield get
    for model in cache.values():
        model.unload()


@pytest.fixture(scope="module")
def images(root):
    rng = np.random.default_rng(0)
    init = root / "init.png"
    Image.fromarray((rng.random((48, 80, 3)) * 255).astype(np.uint8)).save(init)
    mask = root / "mask.png"
    m = np.zeros((64, 64), np.uint8)
    m[16:48, 16:48] = 255
    Image.fromarray(m).save(mask)
    return {"init": str(init), "mask": str(mask)}


def request(plugin, mode="txt2img", **values):
    raw = {"prompt": "a red circle", "seed": 7, "steps": STEPS, "size": SIZE, "preview_every": 0}
    raw.update(values)
    return validate_request(plugin.parameters(), raw, mode)


def run(model, req, cancel=None):
    return list(model.run(req, cancel or CancelToken()))


def image_of(events) -> np.ndarray:
    result = events[-1]
    assert isinstance(result, Result) and result.artifacts
    return np.asarray(result.artifacts[0].image, dtype=np.float32)


def warnings_of(events) -> list[str]:
    return [e.message for e in events if isinstance(e, Log) and e.level == "warning"]


def assert_real_image(pixels: np.ndarray) -> None:
    assert np.isfinite(pixels).all()
    assert pixels.std() > 1.0, "blank image"


@pytest.mark.parametrize("name", NAMES)
def test_txt2img_with_progress_previews_and_honest_metadata(plugin, load, name):
    model = load(name)
    assert isinstance(model, ModelHints) and isinstance(model, ReportsUnsupported)
    assert set(model.modes) == EXPECTED_MODES[name]
    assert model.size_multiple == MULTIPLE.get(name, 16)
    if name in NATIVE:
        assert model.defaults["size"] == (NATIVE[name], NATIVE[name])
    events = run(model, request(plugin, preview_every=1))
    progress = [e for e in events if isinstance(e, Progress)]
    previews = [e for e in events if isinstance(e, Preview)]
    assert [(p.step, p.total) for p in progress] == [(i + 1, STEPS) for i in range(STEPS)]
    assert len(previews) == STEPS and all(p.image.size == SIZE for p in previews)
    assert_real_image(np.asarray(previews[-1].image, np.float32))
    pixels = image_of(events)
    assert_real_image(pixels)
    params = events[-1].artifacts[0].parameters
    assert (params["width"], params["height"]) == SIZE == events[-1].artifacts[0].image.size
    assert params["steps"] == STEPS and params["model_family"] == model.family.label


@pytest.mark.parametrize("name", NAMES)
def test_modes_it_has_run_and_the_others_are_refused(plugin, load, name, images):
    model = load(name)
    for mode in ("img2img", "inpaint", "edit"):
        values = {"init_image": images["init"], "mask_image": images["mask"], "strength": 0.6}
        req = request(plugin, mode, **values)
        if mode in model.modes:
            events = run(model, req)
            assert_real_image(image_of(events))
            assert events[-1].artifacts[0].image.size == SIZE
            if mode != "edit":
                assert events[-1].artifacts[0].parameters["denoising_strength"] == 0.6
        else:
            with pytest.raises(ParamError, match=f"cannot run {mode}.*supports"):
                run(model, req)


@pytest.mark.parametrize("name", NAMES)
def test_cfg_and_negative_prompt_take_effect_or_are_reported(plugin, load, name):
    model = load(name)
    on = max(model.family.cfg_off_at + 3.0, 4.0)
    base = run(model, request(plugin, cfg_scale=on))
    if "cfg_scale" in model.unsupported:
        assert any("CFG scale" in w and "ignored" in w for w in warnings_of(base))
        assert "cfg_scale" not in base[-1].artifacts[0].parameters
        assert np.array_equal(image_of(base), image_of(run(model, request(plugin))))  # no effect, as told
    else:
        off = run(model, request(plugin, cfg_scale=model.family.cfg_off_at))
        assert base[-1].artifacts[0].parameters["cfg_scale"] == on
        assert not np.array_equal(image_of(base), image_of(off)), "CFG scale had no effect"
    negative = run(model, request(plugin, cfg_scale=on, negative_prompt="blue squares"))
    if "negative_prompt" in model.unsupported or "cfg_scale" in model.unsupported:
        assert any("negative prompt was ignored" in w for w in warnings_of(negative))
        assert negative[-1].artifacts[0].parameters["negative_prompt"] == ""
        assert np.array_equal(image_of(negative), image_of(base))
    else:
        assert negative[-1].artifacts[0].parameters["negative_prompt"] == "blue squares"
        assert not np.array_equal(image_of(negative), image_of(base)), "the negative prompt had no effect"


@pytest.mark.parametrize("name", NAMES)
def test_a_size_off_the_family_multiple_is_refused_naming_it(plugin, load, name):
    model = load(name)
    m = model.size_multiple
    with pytest.raises(ParamError, match=f"multiple of {m} on both sides"):
        run(model, request(plugin, size=(m * 4 + 8, m * 4)))


@pytest.mark.parametrize("name", NAMES)
def test_every_offered_sampler_makes_an_image(plugin, load, name):
    model = load(name)
    samplers = model.choices["scheduler"]
    if model.family.flow:
        assert "DPM++ 2M Karras" not in samplers and "LMS" not in samplers  # epsilon/v samplers
    for sampler in samplers:
        events = run(model, request(plugin, scheduler=sampler, steps=3))
        pixels = image_of(events)
        assert np.isfinite(pixels).all() and pixels.std() > 1.0, f"{sampler} gave a blank image"


class InterruptDuringFirstStep(CancelToken):
    """Interrupt pressed while the first step runs: the run's first look at the token (before the
    first image) sees nothing, every later one sees Interrupt.  Deterministic where a real click
    would race these tiny models, which finish all their steps in milliseconds."""

    def __init__(self) -> None:
        super().__init__()
        self.keep_partial = True
        self.looks = 0

    @property
    def is_set(self) -> bool:
        self.looks += 1
        return self.looks > 1


@pytest.mark.parametrize("name", NAMES)
def test_interrupt_keeps_a_partial_image(plugin, load, name):
    model = load(name)
    events = run(model, request(plugin, steps=4), InterruptDuringFirstStep())
    result = events[-1]
    assert isinstance(result, Result) and result.interrupted and len(result.artifacts) == 1
    assert [e.step for e in events if isinstance(e, Progress)] == [1]
    assert result.info["steps_done"] == 1
    assert result.artifacts[0].image.size == SIZE
    assert_real_image(np.asarray(result.artifacts[0].image, np.float32))


def test_sana_dpm_karras_is_not_offered_and_is_refused(plugin, load):
    """Sana's flow-prediction DPM-Solver made all-black images with the SD 'DPM++ 2M Karras'."""
    model = load("sana")
    with pytest.raises(ParamError, match="does not work with this model"):
        run(model, request(plugin, scheduler="DPM++ 2M Karras"))


def test_flux_distilled_guidance_and_true_cfg(plugin, load):
    model = load("flux")
    assert model.defaults["distilled_guidance"] == 3.5 and model.defaults["cfg_scale"] == 1.0
    a = run(model, request(plugin, distilled_guidance=2.0))
    b = run(model, request(plugin, distilled_guidance=6.0))
    assert a[-1].artifacts[0].parameters["distilled_guidance"] == 2.0
    assert not np.array_equal(image_of(a), image_of(b))


def test_chroma_has_no_distilled_guidance_and_says_so(plugin, load):
    events = run(load("chroma"), request(plugin, distilled_guidance=3.0))
    assert any("Distilled guidance 3 was ignored" in w for w in warnings_of(events))
    assert "distilled_guidance" not in events[-1].artifacts[0].parameters


def test_unknown_pipeline_runs_txt2img_with_a_notice(plugin, root, tmp_path):
    """A pipeline class the table has no row for (PixArt-Alpha, built from the PixArt-Sigma
    folder's components) still makes an image, and the user is told only the basics are mapped."""
    from diffusers import PixArtAlphaPipeline, PixArtSigmaPipeline

    folder = families.build("pixart-sigma", root / "pixart-sigma")
    PixArtAlphaPipeline(**PixArtSigmaPipeline.from_pretrained(folder).components).save_pretrained(tmp_path / "alpha")
    model = plugin.load(str(tmp_path / "alpha"), LoadOptions(), lambda m: None)
    try:
        assert model.known is False and model.modes == ["txt2img"] and model.choices["scheduler"] == ["default"]
        events = run(model, request(plugin, cfg_scale=4.0))
        assert any("only the prompt, steps, size" in w for w in warnings_of(events))
        assert_real_image(image_of(events))
        with pytest.raises(ParamError, match="cannot run img2img"):
            run(model, request(plugin, "img2img", init_image=str(root / "init.png")))
    finally:
        model.unload()


def test_step_distilled_flux2_klein_defaults_to_its_few_steps(plugin, load, root):
    """The published klein 4B/9B are step-distilled (4 steps); the pipeline's own 50 is for the base ones."""
    assert load("flux2-klein").defaults["steps"] == 50  # base checkpoint: the pipeline's default
    folder = families.build_flux2_klein(root / "klein-distilled", distilled=True)
    distilled = plugin.load(str(folder), LoadOptions(), lambda message: None)
    try:
        assert distilled.defaults["steps"] == 4
        events = run(distilled, request(plugin, steps=None))
        assert [e.total for e in events if isinstance(e, Progress)][-1] == 4  # what the run actually did
    finally:
        distilled.unload()
