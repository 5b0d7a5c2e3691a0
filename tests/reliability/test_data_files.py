"""Damaged or read-only studio files: moved aside (kept), fresh ones used, the user told; the
traceback of anything unexpected goes to the rotating log, whose path the sentence names."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from studio.cli import main
from studio.core.context import StudioContext
from studio.core.registry import Registry

ROOT = Path(__file__).resolve().parents[2]


def _create(home):
    context = StudioContext.create(registry=Registry())
    notices = list(context.notices)
    context.close()
    return notices


def test_garbage_history_is_moved_aside_and_a_fresh_one_started(studio_home):
    studio_home.mkdir(parents=True)
    (studio_home / "history.sqlite").write_bytes(b"this is not a database at all" * 100)
    notices = _create(studio_home)
    aside = list(studio_home.glob("history.sqlite.broken-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not a database")
    assert any("history" in n and aside[0].name in n for n in notices), notices
    assert _create(studio_home) == []  # the fresh one works; nothing to say the second time


def test_a_foreign_sqlite_file_is_moved_aside(studio_home):
    import sqlite3

    studio_home.mkdir(parents=True)
    db = sqlite3.connect(studio_home / "history.sqlite")
    db.execute("CREATE TABLE jobs (something TEXT)")
    db.commit()
    db.close()
    notices = _create(studio_home)
    assert list(studio_home.glob("history.sqlite.broken-*")) and notices


@pytest.mark.parametrize("content, why", [
    ("{ not json", "not valid JSON"),
    (json.dumps({"memory_budget_gb": "lots"}), "memory_budget_gb"),
    (json.dumps({"allow_download": "yes"}), "allow_download"),
    (json.dumps({"recent_models": ["a"]}), "recent_models"),
    (json.dumps({"max_image_pixels": -5}), "max_image_pixels"),
    (json.dumps([1, 2, 3]), "does not hold settings"),
])
def test_bad_settings_are_moved_aside_and_defaults_used(studio_home, content, why):
    studio_home.mkdir(parents=True)
    (studio_home / "settings.json").write_text(content)
    notices = _create(studio_home)
    aside = list(studio_home.glob("settings.json.broken-*"))
    assert len(aside) == 1 and aside[0].read_text() == content
    assert any(why in n for n in notices), notices
    assert json.loads((studio_home / "settings.json").read_text())["memory_budget_gb"] == 6.0


def test_the_cli_says_so_and_still_runs(studio_home, capsys):
    studio_home.mkdir(parents=True)
    (studio_home / "settings.json").write_text("{ broken")
    assert main(["plugins"]) == 0
    err = capsys.readouterr().err
    assert "note: Settings file" in err and "Traceback" not in err


def test_an_unexpected_failure_is_one_sentence_naming_the_log(studio_home, capsys, monkeypatch):
    import studio.cli.plugins as plugins_command

    def broken(args):
        raise RuntimeError("the registry fell over")

    monkeypatch.setattr(plugins_command, "run", broken)
    assert main(["plugins"]) == 1
    err = capsys.readouterr().err
    log = studio_home / "logs" / "studio.log"
    assert err.strip() == f"studio: the registry fell over (details in {log})."
    assert "Traceback" in log.read_text() and "the registry fell over" in log.read_text()


def _unprivileged(command: list[str]) -> list[str]:
    """Run as a normal user: as root, permission bits mean nothing."""
    if os.geteuid() != 0:
        return command
    if not shutil.which("setpriv"):
        pytest.skip("root without setpriv: cannot test a read-only data folder")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]


def test_a_read_only_data_folder_still_starts_and_says_where_it_keeps_things(tmp_path):
    import tempfile

    tmp_path = Path(tempfile.mkdtemp(prefix="studio-ro-"))  # outside pytest's private (0700) folders
    home = tmp_path / "home"
    home.mkdir()
    (home / "settings.json").write_text(json.dumps({"memory_budget_gb": 3.0}))
    (home / "history.sqlite").write_bytes(b"")
    tmp_path.chmod(0o755)
    for path in (home, home / "settings.json", home / "history.sqlite"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    if os.geteuid() != 0:
        home.chmod(0o555)
    env = dict(os.environ, STUDIO_HOME=str(home), TMPDIR=str(tmp_path / "tmp"),
               PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins")]))
    (tmp_path / "tmp").mkdir()
    (tmp_path / "tmp").chmod(0o777)
    done = subprocess.run(_unprivileged([sys.executable, "-m", "studio", "plugins"]), env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "cannot be written" in done.stderr and "Traceback" not in done.stderr
    assert (home / "settings.json").read_text() == json.dumps({"memory_budget_gb": 3.0})  # untouched
    assert list(home.iterdir()) == [home / "settings.json", home / "history.sqlite"] or \
        sorted(home.iterdir()) == sorted([home / "settings.json", home / "history.sqlite"])  # nothing added
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_read_only_files_in_a_writable_folder_are_moved_aside(tmp_path):
    """settings.json and history.sqlite the user cannot write (another user's, say): moved aside,
    the settings' values kept in a new file, a new history started."""
    import sqlite3
    import tempfile

    if os.geteuid() == 0 and not shutil.which("setpriv"):
        pytest.skip("root without setpriv")
    base = Path(tempfile.mkdtemp(prefix="studio-rofiles-"))
    base.chmod(0o755)
    home = base / "home"
    home.mkdir()
    (home / "settings.json").write_text(json.dumps({"memory_budget_gb": 3.0}))
    db = sqlite3.connect(home / "history.sqlite")
    db.execute("CREATE TABLE outputs (id INTEGER)")
    db.commit()
    db.close()
    for path in (home / "settings.json", home / "history.sqlite"):
        path.chmod(0o444)
    if os.geteuid() == 0:
        os.chown(home, 65534, 65534)  # the folder is the unprivileged user's; the files are not
    env = dict(os.environ, STUDIO_HOME=str(home), PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins")]))
    script = ("from studio.core.context import StudioContext\nfrom studio.core.registry import Registry\n"
              "c = StudioContext.create(registry=Registry())\nprint('\\n'.join(c.notices))\nc.close()\n")
    done = subprocess.run(_unprivileged([sys.executable, "-c", script]), env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "is read-only" in done.stdout and "history" in done.stdout, done.stdout
    assert json.loads((home / "settings.json").read_text())["memory_budget_gb"] == 3.0  # values kept
    assert list(home.glob("settings.json.broken-*")) and list(home.glob("history.sqlite.broken-*"))
    shutil.rmtree(base, ignore_errors=True)
