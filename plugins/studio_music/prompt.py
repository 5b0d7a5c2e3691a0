"""Read key, scale (major / minor), tempo, instrument and length out of a text prompt.

"a slow chorale in D minor, organ" -> key D, minor, tempo 60, organ.  Only what the text
actually says is returned; the panel shows the parsed values in its controls, so the user
sees exactly what was understood (and what was not).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from studio_music.representation import PITCH_NAMES, pitch_class

_TEMPO_WORDS = {
    "grave": 44, "largo": 50, "very slow": 48, "slowly": 60, "slow": 60, "adagio": 66, "calm": 66,
    "andante": 76, "walking": 76, "moderato": 96, "moderate": 96, "medium": 96, "allegretto": 108,
    "brisk": 120, "allegro": 126, "lively": 126, "fast": 132, "quick": 132, "vivace": 144, "presto": 160,
    "very fast": 160,
}
_INSTRUMENT_WORDS = {
    "organ": "organ", "pipe organ": "organ", "church organ": "organ", "harmonium": "organ",
    "piano": "piano", "keys": "piano", "harpsichord": "piano", "keyboard": "piano",
    "strings": "strings", "string quartet": "strings", "string": "strings", "violin": "strings",
    "violins": "strings", "cello": "strings", "quartet": "strings", "orchestra": "strings",
    "choir": "choir", "voices": "choir", "vocal": "choir", "sung": "choir",
}
_KEY = re.compile(
    r"\b(?:in\s+)?([a-g])\s*(#|♯|sharp|b|♭|flat|-sharp|-flat)?[\s-]*(major|minor|maj|min|dur|moll)\b"
    r"|\bin\s+([a-g])\s*(#|♯|sharp|♭|flat|b)?(?![a-z])", re.IGNORECASE)
_BPM = re.compile(r"\b(\d{2,3})\s*(?:bpm|beats per minute)\b", re.IGNORECASE)
_SECONDS = re.compile(r"\b(\d+(?:\.\d+)?)\s*(?:s|sec|secs|seconds?)\b", re.IGNORECASE)
_BARS = re.compile(r"\b(\d{1,3})\s*(?:bars?|measures?)\b", re.IGNORECASE)


@dataclass
class ParsedPrompt:
    key: str | None = None  # "D", "F#", "Bb"
    scale: str | None = None  # major | minor
    tempo: float | None = None  # quarter notes per minute
    instrument: str | None = None
    seconds: float | None = None
    bars: int | None = None
    understood: list[str] = field(default_factory=list)  # phrases that were read, for display

    def as_values(self) -> dict:
        values = {}
        if self.key is not None:
            values["key"] = self.key
        if self.scale is not None:
            values["scale"] = self.scale
        if self.tempo is not None:
            values["tempo"] = self.tempo
        if self.instrument is not None:
            values["instrument"] = self.instrument
        if self.seconds is not None:
            values["seconds"] = self.seconds
        return values

    def summary(self) -> str:
        parts = []
        if self.key or self.scale:
            parts.append(f"key {self.key or '?'} {self.scale or ''}".strip())
        if self.tempo:
            parts.append(f"tempo {self.tempo:g}")
        if self.instrument:
            parts.append(self.instrument)
        if self.seconds:
            parts.append(f"{self.seconds:g} s")
        if self.bars:
            parts.append(f"{self.bars} bars")
        return ", ".join(parts) if parts else "nothing (defaults used)"


def _accidental(text: str | None) -> str:
    if not text:
        return ""
    text = text.lower().lstrip("-")
    return "#" if text in ("#", "♯", "sharp") else "b"


def parse_prompt(text: str) -> ParsedPrompt:
    parsed = ParsedPrompt()
    lowered = " " + (text or "").lower() + " "
    match = _KEY.search(text or "")
    letter = acc = None
    if match:
        if match.group(1):
            letter, acc, mode = match.group(1), match.group(2), match.group(3).lower()
            parsed.scale = "minor" if mode in ("minor", "min", "moll") else "major"
        else:
            letter, acc = match.group(4), match.group(5)
            if letter.islower() and not acc:  # "in a slow tempo" is not A major
                letter = None
    if match and letter:
        name = letter.upper() + _accidental(acc)
        parsed.key = PITCH_NAMES[pitch_class(name)]
        parsed.understood.append(match.group(0).strip())
    if parsed.scale is None:
        if re.search(r"\bminor\b|\bsad\b|\bmournful\b|\bdark\b|\bmelanchol", lowered):
            parsed.scale = "minor"
        elif re.search(r"\bmajor\b|\bhappy\b|\bbright\b|\bjoyful\b|\bcheerful\b", lowered):
            parsed.scale = "major"
    bpm = _BPM.search(lowered)
    if bpm:
        parsed.tempo = float(min(200, max(30, int(bpm.group(1)))))
        parsed.understood.append(bpm.group(0).strip())
    else:
        for word in sorted(_TEMPO_WORDS, key=len, reverse=True):
            if re.search(rf"\b{re.escape(word)}\b", lowered):
                parsed.tempo = float(_TEMPO_WORDS[word])
                parsed.understood.append(word)
                break
    for word in sorted(_INSTRUMENT_WORDS, key=len, reverse=True):
        if re.search(rf"\b{re.escape(word)}\b", lowered):
            parsed.instrument = _INSTRUMENT_WORDS[word]
            parsed.understood.append(word)
            break
    seconds = _SECONDS.search(lowered)
    if seconds:
        parsed.seconds = float(seconds.group(1))
        parsed.understood.append(seconds.group(0).strip())
    bars = _BARS.search(lowered)
    if bars:
        parsed.bars = int(bars.group(1))
        parsed.understood.append(bars.group(0).strip())
    return parsed
