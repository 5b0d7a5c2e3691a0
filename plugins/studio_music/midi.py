"""Kept only as an alias: MIDI reading and writing is :mod:`studio.plugin_kit.midi` (mido).

``studio.core.sessions.music`` still imports this name for its piano roll; once it reads clips
through ``studio.plugin_kit.midi`` this module goes.
"""

from __future__ import annotations

from studio.plugin_kit.midi import GM_PROGRAMS, MidiError, MidiNote, MidiSong, read_midi, write_midi

__all__ = ["GM_PROGRAMS", "MidiError", "MidiNote", "MidiSong", "read_midi", "write_midi"]
