"""Control preprocessors that need a model, from a plugin (the ProvidesControlPreprocessors capability): a
tiny random DPT depth model in a test plugin registered as real plugins are (the registry; entry points for
the CLI), used by a ControlNet job through the diffusers plugin, listed by `studio plugins`, offered (with a
preview) in the Image panel; unknown kinds say which plugin to install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from PIL import Image  # noqa: E402

from studio.core.registry import Registry  # noqa: E402
from studio.plugin_api import (  # noqa: E402
    CancelToken,
    ControlPreprocessor,
    LoadOptions,
    ParamError,
    ProvidesControlPreprocessors,
    Result,
)
from studio.plugin_kit.control import providers  # noqa: E402
from studio_diffusers import DiffusersPlugin  # noqa: E402
from tests.fixtures import tiny_controlnets, tiny_diffusers  # noqa: E402
from tests.fixtures.depth_preprocessor_plugin import DepthPlugin, build_depth_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("cpp")
    sd = tiny_diffusers.build_sd(root / "sd")
    photo = root / "photo.png"
    rng = np.random.default_rng(5)
    ramp = np.linspace(0, 255, 96)[None, :, None] * np.ones((96, 1, 3))
    Image.fromarray(np.clip(ramp + rng.normal(0, 20, (96, 96, 3)), 0, 255).astype(np.uint8)).save(photo)
    return {"sd": sd, "cn": tiny_controlnets.build_controlnet(root / "cn", sd), "photo": photo,
            "dpt": build_depth_model(root / "dpt")}


@pytest.fixture
def depth_plugin(built):
    registry = Registry()
    entry = registry.add("test-depth", lambda: DepthPlugin(str(built["dpt"])))
    yield entry
    providers.unregister("test-depth")


def test_the_plugin_registers_its_preprocessors(depth_plugin):
    assert isinstance(depth_plugin.plugin, ProvidesControlPreprocessors)
    assert depth_plugin.provides == ["depth-dpt"]
    kinds = providers.kinds()
    assert list(kinds)[:6] == ["canny", "scribble", "lineart", "depth", "pose", "none"]  # built-ins first
    assert "from the test-depth plugin" in kinds["depth-dpt"] and providers.map_type("depth-dpt") == "depth"


def test_taken_names_are_skipped_with_a_reason():
    class Clashing:
        id, label = "clash", "Clash"

        def control_preprocessors(self):
            return [ControlPreprocessor("canny", "another canny", lambda image, size: image),
                    ControlPreprocessor("depth-odd", "odd", lambda image, size: image, map_type="sonar")]

    try:
        assert providers.register("clash", Clashing().control_preprocessors()) == []
        notes = providers.skipped("clash")
        assert "canny: a built-in preprocessor has that name" in notes
        assert any("map type 'sonar'" in note for note in notes)
    finally:
        providers.unregister("clash")


def test_a_job_uses_the_plugins_depth_model(depth_plugin, built):
    model = DiffusersPlugin().load(str(built["sd"]), LoadOptions(), lambda m: None)
    estimator = depth_plugin.plugin.estimator
    try:
        def run(kind, image=built["photo"]):
            request = {"mode": "txt2img", "prompt": "a cat", "seed": 3, "steps": 2, "size": (64, 64),
                       "preview_every": 0, "controls": [{"kind": kind, "image": str(image),
                                                         "model": str(built["cn"])}] if kind else []}
            events = list(model.run(request, CancelToken()))
            assert isinstance(events[-1], Result)
            artifact = events[-1].artifacts[0]
            return np.asarray(artifact.image, dtype=float), artifact.parameters

        before = estimator.calls
        estimated, params = run("depth-dpt")
        assert estimator.calls == before + 1 and params["controlnets"][0].startswith("Module: depth-dpt")
        # what the ControlNet saw is the plugin's depth map: the same map given ready-made gives the same image
        depth_map = built["photo"].with_name("depth.png")
        providers.process("depth-dpt", Image.open(built["photo"]), (64, 64)).save(depth_map)
        given, _ = run("none", depth_map)
        assert np.abs(estimated - given).max() <= 1.0
        plain, _ = run("")
        assert np.abs(estimated - plain).mean() > 1.0
        with pytest.raises(ParamError, match=r"'openpose' preprocessor needs a model \(pose detection\), and no "
                                             r"installed plugin provides it"):
            run("openpose")
    finally:
        model.unload()
    map_ = providers.process("depth-dpt", Image.open(built["photo"]), (48, 40))
    assert map_.size == (48, 40) and map_.mode == "RGB" and np.asarray(map_).std() > 1


def _entry_point(root: Path) -> None:
    info = root / "test_depth_ep-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: test-depth-ep\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[studio.plugins]\ntest-depth = tests.fixtures.depth_preprocessor_plugin:DepthPlugin\n")


def test_cli_lists_and_uses_a_plugin_preprocessor(built, tmp_path):
    from studio.core.metadata import read_png_parameters

    _entry_point(tmp_path / "eps")
    env = dict(os.environ, STUDIO_TEST_DEPTH_MODEL=str(built["dpt"]), STUDIO_HOME=str(tmp_path / "home"),
               PYTHONPATH=os.pathsep.join([str(tmp_path / "eps"), str(ROOT), str(ROOT / "plugins")]))
    listed = subprocess.run([sys.executable, "-m", "studio", "plugins"], capture_output=True, text=True, timeout=120,
                            env=env)
    assert listed.returncode == 0 and "control preprocessors: depth-dpt" in listed.stdout, listed.stdout
    args = [sys.executable, "-m", "studio", "image", "a cat", "--model", str(built["sd"]), "--steps", "2",
            "--size", "64x64", "--seed", "1", "--plugin", "diffusers", "--control-model", str(built["cn"]),
            "--out", str(tmp_path / "out")]
    done = subprocess.run(args[:13] + ["--control", f"depth-dpt:{built['photo']}"] + args[13:], capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert read_png_parameters(done.stdout.strip().splitlines()[-1])["ControlNet 0"].startswith("Module: depth-dpt")
    unknown = subprocess.run(args[:13] + ["--control", f"dwpose:{built['photo']}"] + args[13:], capture_output=True,
                             text=True, timeout=300, env=env)
    assert unknown.returncode == 2 and "needs a model (pose detection)" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_the_panel_offers_it_with_a_preview(qtbot, depth_plugin, built):
    from studio.qt.widgets.control_list import ControlList

    controls = ControlList()
    qtbot.addWidget(controls)
    row = controls.add({"kind": "depth-dpt", "image": str(built["photo"]), "model": str(built["cn"]),
                        "control_mode": 1})
    kinds = [row.kind.itemText(i) for i in range(row.kind.count())]
    assert "depth-dpt" in kinds and row.kind.currentText() == "depth-dpt"
    qtbot.waitUntil(lambda: not row.preview.pixmap().isNull(), timeout=60_000)  # the model ran off the GUI thread
    assert np.asarray(row.processed).shape == (128, 128, 3)
    assert controls.value()[0]["control_mode"] == 1 and controls.value()[0]["kind"] == "depth-dpt"
    providers.unregister("test-depth")
    later = controls.add({"kind": "depth-dpt", "image": str(built["photo"])})  # restored without the plugin
    assert later.kind.currentText() == "depth-dpt"
    assert "no installed plugin provides" not in later.kind.itemData(later.kind.currentIndex(), 3)
    assert "unknown kind 'depth-dpt'" in later.kind.itemData(later.kind.currentIndex(), 3)
