"""The symbolic representation shared by the chorale model, its training and its evaluation.

A chorale is a grid of 16th-note steps by four voices (soprano, alto, tenor, bass).  Each cell
holds one token per voice:

* ``HOLD`` (0): the voice keeps sounding the note (or rest) it had on the previous step,
* ``REST`` (1): the voice starts a rest,
* ``2 + (pitch - PITCH_MIN)``: the voice starts a new note with that MIDI pitch.

Standard library and numpy only, so the plugin can import it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VOICES = ("soprano", "alto", "tenor", "bass")
HOLD, REST = 0, 1
PITCH_MIN, PITCH_MAX = 28, 93  # inclusive; transposed chorales stay inside this
VOCAB = 2 + PITCH_MAX - PITCH_MIN + 1
STEPS_PER_QUARTER = 4
STEPS_PER_BAR = 16  # the model writes 4/4

# Comfortable ranges per voice (MIDI, inclusive) — the evaluation's "inside the range" test
# and the sampler's hard limit.  Bach's own ranges with a tone of headroom.
VOICE_RANGES = {
    "soprano": (59, 81),  # B3..A5
    "alto": (52, 74),  # E3..D5
    "tenor": (45, 69),  # A2..A4
    "bass": (33, 64),  # A1..E4
}

PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_NAME_TO_PC = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
# Minor counts natural, harmonic and melodic forms (raised 6th and 7th) as in the key.
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 9, 10, 11)


def pitch_class(name: str) -> int:
    """'D' -> 2, 'F#' -> 6, 'Bb' -> 10, 'eb' -> 3.  Raises ValueError for anything else."""
    text = name.strip().lower().replace("♯", "#").replace("♭", "b")
    if not text or text[0] not in _NAME_TO_PC:
        raise ValueError(f"not a pitch name: {name!r}")
    pc = _NAME_TO_PC[text[0]]
    for ch in text[1:]:
        if ch in "#s":
            pc += 1
        elif ch == "b":
            pc -= 1
        elif ch in "-":
            pc -= 1
        else:
            raise ValueError(f"not a pitch name: {name!r}")
    return pc % 12


def key_name(tonic: int, mode: str) -> str:
    return f"{PITCH_NAMES[tonic % 12]} {mode}"


def scale_pitch_classes(tonic: int, mode: str) -> set[int]:
    steps = MAJOR_SCALE if mode == "major" else MINOR_SCALE
    return {(tonic + s) % 12 for s in steps}


def token_for_pitch(pitch: int) -> int:
    return 2 + int(pitch) - PITCH_MIN


def pitch_for_token(token: int) -> int:
    return int(token) - 2 + PITCH_MIN


@dataclass
class NoteEvent:
    """One note: ``start``/``duration`` in 16th steps, MIDI ``pitch``, ``voice`` 0..3."""

    start: int
    duration: int
    pitch: int
    voice: int


def tokens_to_notes(tokens: np.ndarray) -> list[NoteEvent]:
    """Grid (T, 4) of tokens -> note events (a HOLD after a rest keeps resting)."""
    notes: list[NoteEvent] = []
    steps = tokens.shape[0]
    for voice in range(tokens.shape[1]):
        current: NoteEvent | None = None
        for t in range(steps):
            token = int(tokens[t, voice])
            if token == HOLD:
                if current is not None:
                    current.duration += 1
                continue
            if current is not None:
                notes.append(current)
                current = None
            if token >= 2:
                current = NoteEvent(t, 1, pitch_for_token(token), voice)
        if current is not None:
            notes.append(current)
    notes.sort(key=lambda n: (n.start, n.voice))
    return notes


def notes_to_tokens(notes: list[NoteEvent], steps: int | None = None) -> np.ndarray:
    """Note events -> grid (T, 4).  Overlaps within a voice keep the later note."""
    if steps is None:
        steps = max((n.start + n.duration for n in notes), default=0)
    grid = np.full((steps, 4), REST, dtype=np.int64)
    filled = np.zeros((steps, 4), dtype=bool)
    for n in sorted(notes, key=lambda n: n.start):
        if n.start >= steps or not 0 <= n.voice < 4:
            continue
        pitch = min(max(int(n.pitch), PITCH_MIN), PITCH_MAX)
        end = min(steps, n.start + max(1, n.duration))
        grid[n.start, n.voice] = token_for_pitch(pitch)
        grid[n.start + 1:end, n.voice] = HOLD
        filled[n.start:end, n.voice] = True
    # Unfilled steps are rests; a rest followed by more rest is REST then HOLD.
    for voice in range(4):
        for t in range(steps):
            if not filled[t, voice]:
                grid[t, voice] = HOLD if t > 0 and not filled[t - 1, voice] else REST
    return grid
