"""Editing your own image on flow-matching pipelines (SD3, Flux.1) with FlowEdit (issue #13, item 8).

Tiny random SD3 and Flux.1-dev pipelines of the real architectures (tests/fixtures/families.py),
saved with save_pretrained and loaded through the studio's loader; the images are drawn with PIL."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from PIL import Image, ImageDraw  # noqa: E402

from studio.plugin_api import CancelToken, LoadOptions, Log, ParamError, Result, validate_request  # noqa: E402
from studio_latent import DiffusionLatentPlugin  # noqa: E402
from studio_latent.flow_edit import Edit, Query, flow_edit, sample  # noqa: E402
from studio_latent.image_edit import psnr  # noqa: E402

STEPS = 6
FAMILIES = ["sd3", "flux"]


@pytest.fixture(scope="module")
def plugin():
    return DiffusionLatentPlugin()


@pytest.fixture(scope="module")
def folders(tmp_path_factory, one_thread):
    from tests.fixtures import families

    root = tmp_path_factory.mktemp("flow")
    return {name: families.build(name, root / name) for name in FAMILIES}


@pytest.fixture(scope="module")
def models(plugin, folders):
    loaded = {name: plugin.load(str(folder), LoadOptions(), lambda s: None) for name, folder in folders.items()}
    yield loaded
    for m in loaded.values():
        m.unload()


@pytest.fixture(scope="module")
def drawing(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "mine.png"
    image = Image.new("RGB", (64, 64), (10, 10, 10))
    ImageDraw.Draw(image).ellipse((18, 22, 42, 46), fill=(220, 30, 30))
    image.save(path)
    return path


def run(plugin, model, mode="edit", **request):
    clean = validate_request(plugin.parameters(), request, mode)
    events = list(model.run(clean, CancelToken()))
    assert isinstance(events[-1], Result)
    return events[-1], [e for e in events if isinstance(e, Log)]


def edit(plugin, model, drawing, **request):
    return run(plugin, model, image=str(drawing), prompt="a red circle", steps=STEPS, **request)[0]


@pytest.mark.parametrize("family", FAMILIES)
def test_velocities_follow_the_pipelines_own_sampler(models, family):
    """Our Euler sampler over FlowTransformer.velocities gives the pipeline's own latent: timestep
    scale, CFG (SD3), packing and guidance input (Flux), and the shifted sigmas are the pipeline's."""
    m = models[family]
    noise = m._noise(3, (64, 64))
    sigmas = m.flow.sigmas(4, noise.shape)
    ours = sample(noise, sigmas, lambda z, t: m.flow.velocities(z, t, [Query(0, "a red circle", 5.0)]))
    pipe = m.pipe
    if family == "sd3":
        theirs = pipe(prompt="a red circle", negative_prompt="", latents=noise, num_inference_steps=4,
                      guidance_scale=5.0, height=64, width=64, output_type="latent").images
    else:
        packed = pipe._pack_latents(noise, 1, noise.shape[1], 8, 8)
        theirs = pipe(prompt="a red circle", latents=packed, num_inference_steps=4, guidance_scale=5.0, height=64,
                      width=64, output_type="latent").images
        theirs = pipe._unpack_latents(theirs, 64, 64, 8)
    assert torch.allclose(ours, theirs.float(), atol=1e-5), (ours - theirs).abs().max()


@pytest.mark.parametrize("family", FAMILIES)
def test_amount_zero_is_the_vae_reconstruction(plugin, models, drawing, family):
    m = models[family]
    result = edit(plugin, m, drawing, pairs=[["red", "blue", 0.0]], concepts=[["stripes", 0.0]])
    out = result.artifacts[0].image
    assert result.info["applied"] == []
    # the VAE round trip of the (refined) latent, computed here independently of the edit path
    enc = m.editor.encode(Image.open(drawing).convert("RGB"), (64, 64), 30)
    assert psnr(out, m.editor.decode(enc.x0)) == float("inf")
    # and FlowEdit itself leaves the latent exactly where it was when every strength is 0
    x = enc.x0.float()
    z = flow_edit(m.flow, x, m.flow.sigmas(STEPS, x.shape), STEPS, "a red circle",
                  [Edit("a red circle", "a blue circle", 0.0, "zero")], 1.0, 5.0, seed=0)
    assert torch.equal(z, x)


@pytest.mark.parametrize("family", FAMILIES)
def test_an_edit_changes_the_image_and_negative_strength_differs(plugin, models, drawing, family):
    m = models[family]
    rec = edit(plugin, m, drawing).info["reconstruction"]
    pos = edit(plugin, m, drawing, pairs=[["red", "blue", 1.0]])
    neg = edit(plugin, m, drawing, pairs=[["red", "blue", -1.0]])
    again = edit(plugin, m, drawing, pairs=[["red", "blue", 1.0]])
    a, b = pos.artifacts[0].image, neg.artifacts[0].image
    assert psnr(a, rec) < 40 and psnr(b, rec) < 40  # both moved away from the reconstruction ...
    assert psnr(a, b) < 40  # ... and not to the same place
    assert np.array_equal(np.asarray(a), np.asarray(again.artifacts[0].image))  # same request, same image
    info = pos.info
    assert info["method"] == "FlowEdit" and info["applied"] == ["red->blue x1"]
    assert info["steps"] == STEPS and info["n_max"] == round(STEPS * 0.8)  # skip 0.2 leaves out the noisiest
    assert info["recipe"]["method"] == "FlowEdit" and info["recipe"]["pairs"] == [["red", "blue", 1.0]]
    assert pos.artifacts[0].parameters["method"] == "FlowEdit"


def test_strength_one_is_flowedit_term_for_term(models):
    """One pair at strength 1 is the paper's update v(Z_tar | target) - v(Z_src | source), written
    out here separately (same noise draws)."""
    m = models["sd3"]
    gen = torch.Generator().manual_seed(1)
    x = torch.randn((1, 16, 8, 8), generator=gen)
    sigmas = m.flow.sigmas(5, x.shape)
    ours = flow_edit(m.flow, x, sigmas, 4, "a red circle", [Edit("a red circle", "a blue circle", 1.0, "e")],
                     2.0, 6.0, seed=7)
    noise_gen = torch.Generator().manual_seed(7)
    z = x.clone()
    for i in range(1, 5):
        t, t_next = float(sigmas[i]), float(sigmas[i + 1])
        n = torch.randn(x.shape, generator=noise_gen)
        z_src = (1 - t) * x + t * n
        z_tar = z + z_src - x
        v_tar = m.flow.velocities(z_tar, t, [Query(0, "a blue circle", 6.0)])
        v_src = m.flow.velocities(z_src, t, [Query(0, "a red circle", 2.0)])
        z = z + (t_next - t) * (v_tar - v_src)
    assert torch.allclose(ours, z, atol=1e-5)
    assert not torch.allclose(ours, x)


def test_several_edits_at_once_and_concepts(plugin, models, drawing):
    m = models["flux"]
    one = edit(plugin, m, drawing, pairs=[["red", "blue", 1.0]])
    both = edit(plugin, m, drawing, pairs=[["red", "blue", 1.0], ["circle", "square", 0.5]],
                concepts=[["stripes", -0.7]])
    assert both.info["applied"] == ["red->blue x1", "circle->square x0.5", "-stripes x0.7"]
    assert psnr(one.artifacts[0].image, both.artifacts[0].image) < 40
    assert both.info["recipe"]["concepts"] == [["stripes", -0.7]]


def test_without_an_image_the_seed_sample_is_edited(plugin, models):
    m = models["sd3"]
    base, _ = run(plugin, m, prompt="a red circle", steps=3, size=(64, 64), seed=5)
    moved, _ = run(plugin, m, prompt="a red circle", steps=3, size=(64, 64), seed=5, pairs=[["red", "blue", 1.0]])
    assert base.info["applied"] == [] and moved.info["applied"] == ["red->blue x1"]
    assert psnr(base.artifacts[0].image, base.info["reconstruction"]) == float("inf")
    assert psnr(base.artifacts[0].image, moved.artifacts[0].image) < 40


@pytest.mark.parametrize("family", FAMILIES)
def test_what_flow_models_cannot_do_is_refused_in_one_sentence(plugin, models, drawing, family):
    m = models[family]
    refusals = [("discover", {"source": "h-space"}), ("discover", {"source": "text"}),
                ("quality", {"image": str(drawing), "sliders": ["red->blue"]}),
                ("edit", {"image": str(drawing), "edits": [["PC 1", 1.0]]}),
                ("edit", {"image": str(drawing), "direction_files": ["x.json"]})]
    for mode, request in refusals:
        with pytest.raises(ParamError) as caught:
            run(plugin, m, mode, **request)
        message = str(caught.value)
        assert "\n" not in message and ("SD 1.x/2.x" in message or "not supported" in message), message


@pytest.mark.parametrize("family", FAMILIES)
def test_quality_read_back_measures_flowedit_text_edits(plugin, models, family):
    """The drawn-scene figures of the UNet models, every edit a FlowEdit: amount 0 is the VAE round
    trip, so the reconstruction row is the encoder's; the edit rows read every strength back."""
    result, _ = run(plugin, models[family], "quality", scenes=2, steps=3, measure=["red->blue", "circle->square"],
                    strengths=[0.0, 1.0], size=[64, 64])  # the native size by default (1024 on a real Flux)
    rows = result.info["quality"]
    assert set(rows) == {"reconstruction", "red->blue", "circle->square"}
    assert rows["reconstruction"]["n"] == 2 and np.isfinite(rows["reconstruction"]["median_psnr"])
    for label in ("red->blue", "circle->square"):
        assert rows[label]["strengths"] == [0.0, 1.0] and 0.0 <= rows[label]["success"] <= 1.0
    assert "FlowEdit" in result.info["method"] and "no masks" in result.info["method"]


def test_ignored_settings_are_said(plugin, folders, drawing):
    m = DiffusionLatentPlugin().load(str(folders["flux"]), LoadOptions(), lambda s: None)
    try:
        _, logs = run(plugin, m, image=str(drawing), steps=2, negative_prompt="blurry", encode_method="img2img",
                      pairs=[["red", "blue", 1.0]])
    finally:
        m.unload()
    said = " ".join(log.message for log in logs if log.level == "warning")
    assert "FlowEdit" in said and "Implicit masks" in said  # once per load: what this family lacks
    assert "negative prompt is not used" in said and "img2img is not used" in said


@pytest.mark.parametrize("family", FAMILIES)
def test_encode_gives_the_reconstruction_and_its_psnr(plugin, models, drawing, family):
    result, _ = run(plugin, models[family], "encode", image=str(drawing))
    assert result.info["method"] == "flowedit"
    assert result.info["psnr"] == pytest.approx(psnr(result.info["original"], result.artifacts[0].image))


@pytest.mark.parametrize("family", FAMILIES)
def test_prompt_walk(plugin, models, family):
    result, _ = run(plugin, models[family], "walk", prompt="a red circle", prompt_to="a blue square", steps=2,
                    frames=3, extra_frames=2, size=(32, 32), seed=1)
    frames = [a.image for a in result.artifacts]
    assert len(frames) == 3 and frames[0].size == (32, 32)
    assert psnr(frames[0], frames[-1]) < 40
    assert result.info["smoothness"]["jump_ratio"] >= 1.0


def _cli(capsys, *argv):
    from studio.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("family", FAMILIES)
def test_cli_edit(capsys, folders, drawing, tmp_path, monkeypatch, family):
    from studio.core.store import RECIPE_CHUNK

    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    out = tmp_path / "edited.png"
    code, _, err = _cli(capsys, "latent", "edit", str(drawing), "--model", str(folders[family]), "--direction",
                        "red->blue", "--amount", "1", "--also=+stripes=0.5", "--prompt", "a red circle", "--steps", "3",
                        "--out", str(out))
    assert code == 0, err
    assert "FlowEdit" in err and "warning" in err  # the method, and the one-sentence note on what is missing
    with Image.open(out) as saved:
        recipe = json.loads(saved.text[RECIPE_CHUNK])
    assert recipe["method"] == "FlowEdit" and recipe["pairs"] == [["red", "blue", 1.0]]
    assert recipe["concepts"] == [["stripes", 0.5]] and recipe["n_max"] == 2
    again = tmp_path / "again.png"
    code, _, err = _cli(capsys, "latent", "edit", str(drawing), "--recipe", str(out), "--model", str(folders[family]),
                        "--out", str(again))
    assert code == 0, err
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(again)))


def test_other_transformer_families_are_refused_in_one_sentence(plugin, tmp_path, one_thread):
    from tests.fixtures import families

    folder = families.build_chroma(tmp_path / "chroma")
    with pytest.raises(ValueError) as caught:
        plugin.load(str(folder), LoadOptions(), lambda s: None)
    message = str(caught.value)
    assert "SD3 / Flux.1 (FlowEdit)" in message and "\n" not in message


def test_the_edit_view_edits_an_sd3_image(qtbot, folders, drawing, tmp_path, monkeypatch):
    """The panel's own session and view: drop -> reconstruction -> slider -> edited -> save with the recipe;
    'Find directions' on this model answers with the one-sentence refusal."""
    from studio.core.context import StudioContext
    from studio.core.registry import Registry
    from studio.core.sessions.diffusion_edit import DiffusionEditSession
    from studio.core.settings import Settings
    from studio.qt.bridge import EngineBridge
    from studio.qt.widgets.diffusion_edit_view import DiffusionEditView

    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    registry = Registry()
    registry.add("latent-diffusion", DiffusionLatentPlugin)
    context = StudioContext.create(Settings(), registry)
    session = DiffusionEditSession(context)
    session.set_model(str(folders["sd3"]))
    session.steps = 4
    said: list[tuple[str, str]] = []
    session.message.connect(lambda level, text: said.append((level, text)))
    bridge = EngineBridge(context.engine)
    bridge.event.connect(session.handle)
    view = DiffusionEditView(session)
    qtbot.addWidget(view)
    try:
        with qtbot.waitSignal(session.changed, timeout=60_000, check_params_cb=lambda name: name == "reconstruction"):
            session.set_image(str(drawing))
        assert view.views["reconstruction"].has_image() and "PSNR" in view.captions["reconstruction"].text()
        view.new_edit.setText("red->blue")
        view._add()
        with qtbot.waitSignal(session.changed, timeout=60_000, check_params_cb=lambda name: name == "edited"):
            session.set_strength(0, 1.0, dragging=False)
        assert psnr(session.edited, session.reconstruction) < 40
        with Image.open(session.save(str(tmp_path / "edited.png"))) as saved:
            from studio.core.store import RECIPE_CHUNK

            assert json.loads(saved.text[RECIPE_CHUNK])["method"] == "FlowEdit"
        session.discover()
        qtbot.waitUntil(lambda: any("h-space" in text for _, text in said), timeout=60_000)
        assert any("FlowEdit" in text for level, text in said if level == "warning")
    finally:
        bridge.close()
        context.close()


def test_latent_panel_pair_slider_and_walk_on_sd3(qtbot, folders, tmp_path, monkeypatch):
    """The Latent panel on an SD3 model: the seed's sample, the prompt-pair slider (FlowEdit on the
    sample), a walk; the note on what this family lacks reaches the message bar."""
    from studio.core.context import StudioContext
    from studio.core.registry import Registry
    from studio.core.settings import Settings
    from studio.qt.bridge import EngineBridge
    from studio.qt.panels.latent import LatentPanel

    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    registry = Registry()
    registry.add("latent-diffusion", DiffusionLatentPlugin)
    context = StudioContext.create(Settings(), registry)
    bridge = EngineBridge(context.engine)
    panel = LatentPanel(context, bridge)
    bridge.feed(panel.session)
    said: list[tuple[str, str]] = []
    panel.session.message.connect(lambda level, text: said.append((level, text)))
    qtbot.addWidget(panel)
    try:
        panel.model_picker.combo.setEditText(str(folders["sd3"]))
        with qtbot.waitSignal(panel.jobFinished, timeout=60_000):
            panel.show()
        assert panel.session.values["cfg_scale"] == 13.5  # the model's default: FlowEdit's target guidance
        panel.form.editor("steps").setValue(2)
        qtbot.waitUntil(lambda: panel.session.state.preview is not None, timeout=60_000)
        before = np.asarray(panel.session.state.preview).copy()
        with qtbot.waitSignal(panel.previewShown, timeout=60_000):
            panel.strength_slider.setValue(100)
        qtbot.waitUntil(lambda: not np.array_equal(np.asarray(panel.session.state.preview), before), timeout=60_000)
        panel.walk_to.setText("a blue square")
        panel.frames_spin.setValue(3)
        panel.walk_button.click()
        qtbot.waitUntil(lambda: panel.strip.count() == 3, timeout=60_000)
        assert any("FlowEdit" in text for level, text in said if level == "warning")
    finally:
        panel.shutdown()
        bridge.close()
        context.close()


def _build_flux_schnell(folder):
    """Flux.1-schnell style: the same transformer without the guidance input."""
    from diffusers import FluxPipeline, FluxTransformer2DModel

    from tests.fixtures import families

    parts = families._flux_parts(0)
    parts["transformer"] = FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 4, 8], guidance_embeds=False)
    FluxPipeline(**parts).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("variant", ["flux-schnell", "flux-kontext"])
def test_other_flux1_variants(plugin, tmp_path, drawing, variant, one_thread):
    from tests.fixtures import families

    folder = _build_flux_schnell(tmp_path / variant) if variant == "flux-schnell" else \
        families.build_flux_kontext(tmp_path / variant)
    m = plugin.load(str(folder), LoadOptions(), lambda s: None)
    try:
        zero, logs = run(plugin, m, image=str(drawing), prompt="a red circle", steps=3)
        moved, _ = run(plugin, m, image=str(drawing), prompt="a red circle", steps=3, pairs=[["red", "blue", 1.0]])
    finally:
        m.unload()
    assert psnr(zero.artifacts[0].image, zero.info["reconstruction"]) == float("inf")
    assert psnr(moved.artifacts[0].image, zero.info["reconstruction"]) < 40
    said = " ".join(log.message for log in logs)
    if variant == "flux-schnell":
        assert "CFG scale is not used" in said and "target_guidance" not in moved.info
    else:
        assert moved.info["target_guidance"] == 7.0 and "CFG scale is not used" not in said
