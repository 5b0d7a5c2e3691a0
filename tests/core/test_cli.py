import subprocess
import sys

import pytest

from studio.cli import main


def _run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "studio", *args], capture_output=True, text=True, timeout=300,
                          env=env)


@pytest.mark.parametrize("args, message", [
    (["image", "x", "--steps", "0"], "Steps must be at least 1"),
    (["image", "x", "--cfg", "nan"], "finite"),
    (["image", "x", "--size", "0x64"], "positive"),
    (["image", "x", "--size", "63x64"], "multiple of 8"),
    (["image", "x", "--model", "/no/such/model"], "model not found: /no/such/model"),
    (["image", "x", "--init-image", "/no/such.png"], "cannot read init image"),
    (["image", "x", "--steps", "many"], "invalid int value"),
    (["image", "x", "--mask", "/no/mask.png"], "cannot read mask"),
])
def test_bad_input_exit_2_one_line(args, message, capsys, tmp_path):
    code = main([*args, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_unreadable_image_file(tmp_path, capsys):
    bad = tmp_path / "not-an-image.png"
    bad.write_text("hello")
    assert main(["image", "x", "--init-image", str(bad), "--out", str(tmp_path)]) == 2
    assert "cannot read init image" in capsys.readouterr().err


def test_plugins_lists_kind_and_status():
    done = _run("plugins")
    assert done.returncode == 0
    line = next(line for line in done.stdout.splitlines() if line.startswith("diffusers"))
    assert "image" in line and "ok" in line


def test_image_uses_the_models_own_size_and_prints_the_path(tmp_path):
    from PIL import Image

    from studio.core.metadata import read_png_parameters
    from studio_diffusers import DiffusersPlugin

    choices = DiffusersPlugin().models()
    if not choices:
        pytest.skip("no built-in image model in assets/models")
    done = _run("image", "a red circle", "--seed", "5", "--steps", "1", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    path = done.stdout.strip().splitlines()[-1]
    with Image.open(path) as image:
        assert image.size == tuple(choices[0].defaults["size"])
    assert read_png_parameters(path)["seed"] == 5
    assert "Loading pipeline components" not in done.stderr, "library progress bars leak into the terminal"


def test_image_warnings_about_ignored_settings_reach_stderr(tmp_path, monkeypatch, capsys):
    """A setting the model ignores is said on stderr (the panel shows the same in its message bar)."""
    from studio.core.registry import Registry
    from studio.plugin_api import Log
    from tests.fixtures.toy_image_plugin import ToyImagePlugin, ToyModel

    class IgnoringModel(ToyModel):
        def run(self, request, cancel):
            yield Log("this toy ignores: negative_prompt", "warning")
            yield from super().run(request, cancel)

    class IgnoringPlugin(ToyImagePlugin):
        def load(self, source, options, progress):
            return IgnoringModel(source, 0.0, None)

    def registry():
        found = Registry()
        found.add("toy", IgnoringPlugin)
        return found

    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(Registry, "discover", classmethod(lambda cls: registry()))
    code = main(["image", "a square", "--negative", "blurry", "--seed", "3", "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "studio: warning: this toy ignores: negative_prompt" in captured.err
    assert captured.out.strip().endswith(".png")
