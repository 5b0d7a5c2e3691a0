"""LatentSession without Qt, on the real engine with the real latent plugins and tiny models:
directions, slider previews, keep-fixed, your own image, walks, found directions, bad input."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from studio.core.context import StudioContext
from studio.core.registry import Registry
from studio.core.sessions.latent import ADVANCED_GROUP, LatentSession, WalkSpec
from studio.core.settings import Settings
from studio.plugin_api import ParamError
from studio_latent import DiffusionLatentPlugin, VectorLatentPlugin
from tests.fixtures.session_driver import run_through


@pytest.fixture
def make_session(one_thread, tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    contexts = []

    def factory(model: str, plugin_id: str = "latent-vae") -> LatentSession:
        registry = Registry()
        registry.add("latent-vae", VectorLatentPlugin)
        registry.add("latent-diffusion", DiffusionLatentPlugin)
        context = StudioContext.create(Settings(), registry)
        contexts.append(context)
        session = LatentSession(context)
        session.set_plugin(plugin_id)
        session.set_model(model)
        return session

    yield factory
    for context in contexts:
        context.close()


def _finished(session) -> list[tuple[str, bool]]:
    done: list[tuple[str, bool]] = []
    session.job_finished.connect(lambda purpose, ok: done.append((purpose, ok)))
    return done


def test_directions_preview_and_keep_fixed(make_session, tiny_vae_folder):
    session = make_session(str(tiny_vae_folder))
    done = _finished(session)
    seen = run_through(session, session.load_info)
    assert "directions" in seen and done == [("info", True)]
    names = [d.name for d in session.directions]
    assert {"x", "y", "size", "hue", "pc0"} <= set(names)
    run_through(session, session.edit_preview)
    base = np.array(session.state.preview_latent)
    x = next(d for d in session.directions if d.name == "x")
    session.set_amount("x", 0.5)
    seen = run_through(session, session.edit_preview)
    assert "edited" in seen and session.state.preview is not None
    assert np.allclose(np.array(session.state.preview_latent) - base, 0.5 * x.scale * x.vector, atol=1e-6)
    session.set_keep("y", True)
    rows = session.cosine_rows()
    assert rows and rows[0][:2] == ("x", "y") and abs(rows[0][3]) < 1e-9
    run_through(session, session.edit_preview)
    assert abs(session.state.conditional["x"]["cos_after"]["y"]) < 1e-6
    with pytest.raises(ParamError, match="Unknown direction"):
        session.set_amount("no-such", 1.0)


def test_unadjusted_directions_are_their_own_plainly_named_group(make_session, shipped_vae_folder):
    session = make_session(str(shipped_vae_folder))
    run_through(session, session.load_info)
    unadjusted = [d for d in session.directions if d.group == ADVANCED_GROUP]
    assert unadjusted and all(d.name.startswith("boundary_") for d in unadjusted)
    assert all("raw" not in d.label and "normal" not in d.label for d in unadjusted)


def test_your_image_is_encoded_then_edited(make_session, tiny_vae_folder, scene_png):
    session = make_session(str(tiny_vae_folder))
    run_through(session, session.load_info)
    seen = run_through(session, lambda: session.encode(str(scene_png)))
    assert "encoded" in seen
    assert session.state.psnr > 5 and session.base_latent is not None and session.state.original is not None
    assert session.edit_request()["latent"] == session.base_latent
    session.set_value("seed", 3)  # a new seed: a new sample, the image is let go
    assert session.base_latent is None and session.image_path is None and session.state.psnr is None


def test_walk_frames_and_export(make_session, tiny_vae_folder, tmp_path):
    session = make_session(str(tiny_vae_folder))
    with pytest.raises(ParamError, match="Make a walk first"):
        session.walk_export(tmp_path / "none.gif")
    spec = WalkSpec.from_text("1", "seed:7", 4, prompts=False)
    assert (spec.from_seed, spec.to_seed) == (1, 7)
    seen = run_through(session, lambda: session.walk(spec))
    assert "walk" in seen and len(session.state.walk_frames) == 4
    assert session.state.walk_smoothness["jump_ratio"] >= 1.0
    assert session.walk_export(tmp_path / "walk.gif")[0].stat().st_size > 0
    with pytest.raises(ParamError, match="where the walk ends"):
        session.walk(WalkSpec(frames=3, from_seed=1))


def test_a_found_direction_becomes_a_slider(make_session, tiny_vae_folder):
    session = make_session(str(tiny_vae_folder))
    done = _finished(session)
    messages: list[str] = []
    session.message.connect(lambda level, text: messages.append(text))
    run_through(session, session.load_info)
    run_through(session, lambda: session.fit("boundary", "learned-triangle", factor="triangle", count=48))
    assert ("fit", True) in done and done[-1] == ("info", True), "the model was asked again for its sliders"
    assert any(name.endswith("learned-triangle") for name in (d.name for d in session.directions))
    assert any(text.startswith("Found 1 direction") for text in messages)
    assert session.direction_files and session.direction_files[-1].endswith(".json")


def test_a_bad_image_fails_with_one_sentence(make_session, tiny_vae_folder, tmp_path):
    session = make_session(str(tiny_vae_folder))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    done = _finished(session)
    errors: list[str] = []
    session.message.connect(lambda level, text: errors.append(text) if level == "error" else None)
    run_through(session, lambda: session.encode(str(bad)))
    assert done == [("encode", False)]
    assert errors and errors[-1].startswith("Cannot read") and "\n" not in errors[-1]
    assert session.image_path is None
    with pytest.raises(ParamError, match="Image not found"):
        session.encode(str(tmp_path / "missing.png"))


def test_diffusion_prompt_pair_and_walk(make_session, tiny_sd_folder):
    session = make_session(str(tiny_sd_folder), plugin_id="latent-diffusion")
    assert session.is_diffusion and session.values["prompt"]
    session.set_value("steps", 2)
    run_through(session, session.edit_preview)
    before = np.asarray(session.state.preview).copy()
    session.set_pair("red", "blue", 1.0)
    run_through(session, session.edit_preview)
    assert not np.array_equal(np.asarray(session.state.preview), before)
    run_through(session, lambda: session.walk(WalkSpec.from_text("", "a blue square", 3, prompts=True)))
    assert len(session.state.walk_frames) == 3
