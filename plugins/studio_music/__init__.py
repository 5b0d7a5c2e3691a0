"""Studio's embedded symbolic music plugin: four-part chorales from a small model trained on
the Bach chorales bundled with music21, rendered by a built-in synthesizer.

Importing this package is cheap (standard library + the plugin API); torch and numpy are
imported when a model is loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from studio.plugin_api import API_VERSION, Kind, LoadOptions, ModelChoice, Param, ParamType
from studio.plugin_kit.assets import builtin_model_folder

KEYS = ("auto", "C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
SCALES = ("auto", "major", "minor")
INSTRUMENT_CHOICES = ("auto", "organ", "piano", "strings", "choir")
DEFAULT_TEMPO = 72.0
DEFAULT_SECONDS = 10.0
MAX_SECONDS = 180.0
EMBEDDED = builtin_model_folder("chorale")


class ChoralePlugin:
    """The chorale plugin.  Capabilities: :class:`~studio.plugin_api.UnderstandsPrompts` (key,
    scale, tempo, instrument and length read from the prompt) and
    :class:`~studio.plugin_api.ContinuesMidi` (``continue_from`` takes a MIDI file)."""

    id = "chorale"
    label = "Chorale (embedded symbolic model)"
    kind = Kind.MUSIC
    api_version = API_VERSION
    midi_parameter = "continue_from"  # ContinuesMidi

    def parameters(self):
        return (
            Param("prompt", ParamType.TEXT, "a chorale in G major, organ", label="Prompt",
                  help="Key, major / minor, tempo words (slow, 90 bpm) and an instrument are read from it."),
            Param("key", ParamType.CHOICE, "auto", choices=KEYS, help="auto = from the prompt (or the loaded MIDI)"),
            Param("scale", ParamType.CHOICE, "auto", choices=SCALES, help="major or minor; auto = from the prompt"),
            Param("tempo", ParamType.FLOAT, None, label="Tempo (BPM)", minimum=30, maximum=200, optional=True,
                  help="empty = from the prompt, else 72"),
            Param("instrument", ParamType.CHOICE, "auto", choices=INSTRUMENT_CHOICES),
            Param("seconds", ParamType.FLOAT, None, label="Length (s)", minimum=0.5, maximum=MAX_SECONDS,
                  optional=True, help="length of the new music; empty = from the prompt, else 10"),
            Param("temperature", ParamType.FLOAT, 0.9, minimum=0.05, maximum=2.0, step=0.05),
            Param("seed", ParamType.SEED, -1),
            Param("continue_from", ParamType.FILE_PATH, None, label="Continue MIDI", optional=True,
                  help="a MIDI file whose bars are kept and continued"),
            Param("key_strength", ParamType.FLOAT, 2.0, minimum=0.0, maximum=10.0, advanced=True,
                  help="how strongly out-of-key notes are discouraged while sampling"),
            Param("voice_leading", ParamType.BOOL, True, advanced=True,
                  help="forbid parallel fifths and octaves while sampling"),
            Param("sample_rate", ParamType.INT, 32000, minimum=8000, maximum=48000, advanced=True),
        )

    def modes(self):
        return ()

    def models(self):
        return (ModelChoice(str(EMBEDDED), "Bach chorales (embedded)",
                            "A 1.2 M-parameter GRU trained on the music21 Bach chorales, all keys."),)

    # -- UnderstandsPrompts ---------------------------------------------------------------
    def understand_prompt(self, prompt: str) -> dict[str, Any]:
        """What the prompt says, as values of this plugin's parameters (only what it says)."""
        from studio_music.prompt import parse_prompt

        return parse_prompt(prompt).as_values()

    def describe_understood(self, values: Mapping[str, Any]) -> str:
        from studio_music.prompt import ParsedPrompt

        return ParsedPrompt(key=values.get("key"), scale=values.get("scale"), tempo=values.get("tempo"),
                            instrument=values.get("instrument"), seconds=values.get("seconds")).summary()

    def load(self, source: str, options: LoadOptions, progress: Callable[[str], None]):
        from studio_music.chorale import load_chorale

        return load_chorale(source, options, progress)
