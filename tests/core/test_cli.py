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
