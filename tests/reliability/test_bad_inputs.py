"""Bad input for every subcommand: exit 2, exactly one line on stderr, no traceback, nothing written.

The table is in ``bad_inputs.py``; most rows run in-process through ``studio.cli.main`` (fast),
a handful again in real subprocesses (the terminal a user sees).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from studio.cli import main
from tests.reliability.bad_inputs import ALL
from tests.reliability.conftest import snapshot


def _argv(argv, hostile, out, ro):
    names = {key: str(path) for key, path in hostile.items()} | {"out": str(out), "ro": str(ro)}
    return [part.format(**names) for part in argv]


def _written(tmp_path, studio_home):
    """Files that count as output: anything under tmp_path except the studio's own log/index."""
    return {p for p in snapshot(tmp_path)
            if not (p.is_relative_to(studio_home / "logs") or p.name.startswith(("history.sqlite", "settings.json")))}


@pytest.fixture
def ro(request, readonly_dir):
    return readonly_dir


@pytest.mark.parametrize("case_id, argv, words", ALL, ids=[row[0] for row in ALL])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case_id, argv, words, hostile, tmp_path, studio_home,
                                                         capsys, request):
    needs_ro = any("{ro}" in part for part in argv)
    ro = request.getfixturevalue("readonly_dir") if needs_ro else tmp_path / "unused-ro"
    out = tmp_path / "out"
    out.mkdir()
    before = _written(tmp_path, studio_home)
    code = main(_argv(argv, hostile, out, ro))
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, (case_id, code, captured.err)
    assert len(lines) == 1, (case_id, captured.err)
    assert lines[0].startswith("studio: ") and words in lines[0], (case_id, lines[0])
    assert "Traceback" not in captured.err + captured.out
    assert captured.out == "", (case_id, captured.out)
    assert _written(tmp_path, studio_home) == before, case_id


SUBPROCESS_CASES = ["image:init-bomb", "latent:edit-amount-nan", "latent:walk-fps-0", "music:out-existing-folder-wav",
                    "image:device-tpu", "text:temperature-nan"]


@pytest.mark.parametrize("case_id", SUBPROCESS_CASES)
def test_bad_input_in_a_real_process(case_id, hostile, tmp_path, studio_home):
    argv, words = next((a, w) for c, a, w in ALL if c == case_id)
    out = tmp_path / "out"
    out.mkdir()
    done = subprocess.run([sys.executable, "-m", "studio", *_argv(argv, hostile, out, tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and words in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
