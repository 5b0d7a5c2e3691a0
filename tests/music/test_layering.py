"""Importing the music plugins, session, player and panel must not pull in torch."""

import subprocess
import sys


def test_no_torch_on_import():
    code = ("import studio_music, studio_musicgen, studio.core.sessions.music, studio.core.playback, "
            "studio.qt.panels.music, studio.qt.widgets.waveform, studio.qt.widgets.piano_roll, sys\n"
            "from studio.core.registry import Registry\n"
            "r = Registry.discover(); assert {'chorale', 'musicgen'} <= {p.id for p in r.plugins()}\n"
            "heavy = [m for m in ('torch', 'transformers', 'music21') if m in sys.modules]\n"
            "assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
