"""AUTOMATIC1111's prompt emphasis syntax, parsed into (text, weight) fragments.

The rules A1111 users rely on:

* ``(text)`` multiplies the weight of ``text`` by 1.1, ``[text]`` divides it by 1.1; they nest.
* ``(text:1.3)`` sets a multiplier of 1.3 for ``text`` (inside other brackets it multiplies theirs).
* ``\\(``, ``\\)``, ``\\[``, ``\\]`` and ``\\\\`` are the literal characters.
* ``BREAK`` (upper case, a word of its own) ends the current 75-token chunk early.
* An unclosed bracket applies to the rest of the prompt; a stray closer is kept as text.

Adjacent fragments with the same weight are merged, so ``a (b:1.0) c`` reads as one fragment and
embeds exactly like ``a b c``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

#: what ``(`` and ``[`` multiply by (A1111's constant)
ROUND = 1.1
SQUARE = 1 / 1.1

#: a fragment that is this marker (weight BREAK_WEIGHT) stands for a BREAK
BREAK = "BREAK"
BREAK_WEIGHT = -1.0

_TOKEN = re.compile(
    r"""
    \\[()\[\]\\]            # an escaped bracket or backslash
  | :\s*([+-]?(?:\d+\.?\d*|\.\d+))\s*\)   # ':1.3)' closes a weighted round bracket
  | [()\[\]]                # a bracket
  | [^\\()\[\]:]+           # plain text
  | [\\:]                   # a lone backslash or colon is text
    """,
    re.VERBOSE,
)
_BREAK = re.compile(r"\s*\bBREAK\b\s*")


@dataclass(frozen=True)
class Fragment:
    text: str
    weight: float

    @property
    def is_break(self) -> bool:
        return self.weight == BREAK_WEIGHT and self.text == BREAK


def parse(prompt: str) -> list[Fragment]:
    """``prompt`` -> fragments in order; a BREAK is ``Fragment("BREAK", -1.0)``."""
    pieces: list[list[Any]] = []  # [text, weight] (mutable while brackets close)
    round_open: list[int] = []
    square_open: list[int] = []

    def scale(start: int, factor: float) -> None:
        for piece in pieces[start:]:
            piece[1] *= factor

    for match in _TOKEN.finditer(prompt):
        token, number = match.group(0), match.group(1)
        if token.startswith("\\") and len(token) == 2:
            pieces.append([token[1], 1.0])
        elif token == "(":
            round_open.append(len(pieces))
        elif token == "[":
            square_open.append(len(pieces))
        elif number is not None and round_open:
            scale(round_open.pop(), float(number))
        elif token == ")" and round_open:
            scale(round_open.pop(), ROUND)
        elif token == "]" and square_open:
            scale(square_open.pop(), SQUARE)
        else:
            # text, or a closer with nothing open: A1111 keeps those as text
            for i, part in enumerate(_BREAK.split(token)):
                if i:
                    pieces.append([BREAK, BREAK_WEIGHT])
                if part:
                    pieces.append([part, 1.0])
    for start in round_open:  # unclosed brackets apply to the rest
        scale(start, ROUND)
    for start in square_open:
        scale(start, SQUARE)
    return _merge(pieces)


def _merge(pieces: list[list[Any]]) -> list[Fragment]:
    out: list[Fragment] = []
    for text, weight in pieces:
        if text == BREAK and weight == BREAK_WEIGHT:
            out.append(Fragment(BREAK, BREAK_WEIGHT))
        elif out and not out[-1].is_break and out[-1].weight == weight:
            out[-1] = Fragment(out[-1].text + text, weight)
        else:
            out.append(Fragment(text, weight))
    return out or [Fragment("", 1.0)]


def has_syntax(prompt: str) -> bool:
    """Whether parsing changes anything: some weight is not 1, a BREAK, or an escape."""
    fragments = parse(prompt)
    return any(f.is_break or f.weight != 1.0 for f in fragments) or plain_text(fragments) != prompt


def plain_text(fragments: list[Fragment]) -> str:
    """The prompt with the syntax taken out (what a text encoder without weights is given)."""
    return "".join(" " if f.is_break else f.text for f in fragments)


__all__ = ["BREAK", "ROUND", "SQUARE", "Fragment", "has_syntax", "parse", "plain_text"]
