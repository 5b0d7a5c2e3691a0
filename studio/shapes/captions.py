"""Natural, varied captions for Shapes-world scenes.

``caption(scene, rng)`` writes one random phrasing of a scene: many templates,
optional words (size, position, background may be left out), synonyms, and
both word orders for relations ("a red circle left of a blue square" ==
"a blue square right of a red circle").  ``canonical_caption(scene)`` is the
fixed, fully specified phrasing.  Deterministic given the RNG / seed.
"""
from __future__ import annotations

import re

import numpy as np

from .world import COLUMNS, INVERSE_RELATION, ROWS, Obj, Scene

SHAPE_WORDS = {
    "circle": ["circle", "circle", "circle", "disc", "disk", "round shape", "dot"],
    "square": ["square", "square", "square", "box", "block", "rectangle"],
    "triangle": ["triangle", "triangle", "triangle", "triangle shape", "pyramid"],
}
COLOR_WORDS = {
    "red": ["red", "red", "crimson"],
    "green": ["green", "green", "lime"],
    "blue": ["blue", "blue", "navy"],
    "yellow": ["yellow", "yellow", "golden"],
    "purple": ["purple", "purple", "violet"],
    "orange": ["orange"],
    "white": ["white", "white", "snow white"],
    "black": ["black", "black", "dark"],
}
SIZE_WORDS = {
    "small": ["small", "small", "tiny", "little", "smaller"],
    "large": ["large", "big", "big", "huge", "larger"],
}
REL_WORDS = {
    "left of": ["to the left of", "left of", "on the left of", "at the left of"],
    "right of": ["to the right of", "right of", "on the right of", "at the right of"],
    "above": ["above", "over", "on top of", "higher than"],
    "below": ["below", "under", "beneath", "underneath", "lower than"],
}
ROW_WORDS = {"top": ["top", "upper"], "middle": ["middle", "center"], "bottom": ["bottom", "lower"]}
COL_WORDS = {"left": ["left"], "center": ["center", "middle"], "right": ["right"]}


def _pick(rng, opts):
    return opts[int(rng.integers(len(opts)))]


def position_phrase(col: int, row: int, rng) -> str:
    """E.g. "in the top left corner", "top left", "on the right", "in the center"."""
    c, r = COLUMNS[col], ROWS[row]
    if c == "center" and r == "middle":
        return _pick(rng, ["in the center", "in the middle", "centered", "at the center", "center",
                           "in the centre", "middle"])
    if r == "middle":
        w = c
        return _pick(rng, [f"on the {w}", f"at the {w}", f"{w}", f"on the {w} side", f"{w} side",
                           f"middle {w}", f"center {w}", f"in the middle {w}", f"on the middle {w}"])
    if c == "center":
        rw = _pick(rng, ROW_WORDS[r])
        return _pick(rng, [f"at the {rw}", f"{rw}", f"{rw} center", f"at the {rw} center",
                           f"{rw} middle", f"in the {rw} middle", f"at the {rw} of the image"])
    rw = _pick(rng, ROW_WORDS[r])
    corner = _pick(rng, [f"{rw} {c}", f"{rw}-{c}", f"{rw} {c} corner"])
    return _pick(rng, [corner, f"in the {corner}", f"at the {corner}", f"on the {corner}"])


def background_phrase(bg: str, rng, lead: bool = False) -> str:
    cw = _pick(rng, COLOR_WORDS[bg])
    if lead:
        return _pick(rng, [f"{cw} background", f"on a {cw} background", f"a {cw} background with",
                           f"{cw} background,", f"against a {cw} background,"])
    return _pick(rng, [f"on a {cw} background", f"on {cw}", f"against a {cw} background",
                       f"with a {cw} background", f", {cw} background",
                       f"{cw} background", f"on a {cw} backdrop", f"in front of a {cw} background",
                       f"on a plain {cw} background"])


def noun_phrase(o: Obj, rng, p_size=0.5, p_color=0.95, article=True) -> str:
    words = []
    if rng.random() < p_size:
        words.append(_pick(rng, SIZE_WORDS[o.size]))
    if rng.random() < p_color:
        words.append(_pick(rng, COLOR_WORDS[o.color]))
    words.append(_pick(rng, SHAPE_WORDS[o.shape]))
    np_ = " ".join(words)
    if rng.random() < 0.12 and len(words) > 1 and words[-2] in sum(COLOR_WORDS.values(), []):
        # "a circle that is red" / "a red-coloured circle"
        shape = words[-1]
        color = words[-2]
        rest = " ".join(words[:-2])
        np_ = _pick(rng, [f"{rest} {shape} that is {color}".strip(), f"{rest} {color} colored {shape}".strip(),
                          f"{rest} {shape} colored {color}".strip()])
    if article:
        art = _pick(rng, ["a", "a", "a", "one", "the", ""])
        if art == "a" and np_[0] in "aeiou":
            art = "an"
        np_ = f"{art} {np_}".strip()
    return np_


def _single(scene: Scene, rng, full: bool = False) -> str:
    o = scene.objects[0]
    npc = noun_phrase(o, rng, p_size=1.0 if full else 0.6, p_color=1.0 if full else 0.97)
    pos = position_phrase(o.col, o.row, rng) if (full or rng.random() < 0.75) else None
    bg = scene.background if (full or rng.random() < 0.75) else None
    t = int(rng.integers(6))
    parts = []
    if t == 0 and bg:  # background first
        parts = [background_phrase(bg, rng, lead=True), npc] + ([pos] if pos else [])
    elif t == 1 and pos:  # position first
        parts = [pos.capitalize() if rng.random() < 0.1 else pos, npc] + ([background_phrase(bg, rng)] if bg else [])
        if rng.random() < 0.5:
            parts[0] = parts[0] + ","
    elif t == 2:
        parts = [npc] + ([background_phrase(bg, rng)] if bg else []) + ([pos] if pos else [])
    elif t == 3:
        lead = _pick(rng, ["an image of", "a picture of", "a drawing of", "there is", "draw", "show", "a photo of"])
        parts = [lead, npc] + ([pos] if pos else []) + ([background_phrase(bg, rng)] if bg else [])
    else:
        parts = [npc] + ([pos] if pos else [])
        if bg:
            parts.append(background_phrase(bg, rng))
        if pos and rng.random() < 0.3:
            parts[1] = parts[1] + ","
    return " ".join(parts)


def _pair(scene: Scene, rng, full: bool = False) -> str:
    a, b = scene.objects[0], scene.objects[1]
    rel = scene.relation
    if rng.random() < 0.5:  # swap word order (and invert the relation)
        a, b, rel = b, a, INVERSE_RELATION[rel]
    p_color = 1.0 if full else 0.92
    na = noun_phrase(a, rng, p_size=0.4, p_color=p_color)
    nb = noun_phrase(b, rng, p_size=0.4, p_color=p_color)
    bg = scene.background if rng.random() < 0.6 else None
    t = rng.random() * (0.8 if full else 1.0)
    if t < 0.65:
        body = f"{na} {_pick(rng, REL_WORDS[rel])} {nb}"
    elif t < 0.8:  # "on the left a red circle, on the right a blue square"
        if rel in ("left of", "right of"):
            wa, wb = ("left", "right") if rel == "left of" else ("right", "left")
        else:
            wa, wb = ("top", "bottom") if rel == "above" else ("bottom", "top")
        body = _pick(rng, [f"{na} on the {wa} and {nb} on the {wb}",
                           f"on the {wa} {na}, on the {wb} {nb}",
                           f"{na} at the {wa}, {nb} at the {wb}"])
    else:  # relation not mentioned
        body = f"{na} {_pick(rng, ['and', 'and', 'with', 'next to', 'plus', 'and also'])} {nb}"
    if bg:
        if rng.random() < 0.3:
            body = f"{background_phrase(bg, rng, lead=True)} {body}"
        else:
            body = f"{body} {background_phrase(bg, rng)}"
    return body


def _clean(s: str) -> str:
    s = re.sub(r"\s+,", ",", s)
    s = re.sub(r",\s*,", ",", s)
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"\b([aA]) ([aeiou])", r"\1n \2", s)
    return s.strip(", ")


def caption(scene: Scene, rng=None, full: bool = False) -> str:
    """One random natural phrasing of ``scene``.

    ``full=True`` always names every factor (single object: size, colour,
    shape, position, background; two objects: both colours and the relation)."""
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    s = _single(scene, rng, full) if len(scene.objects) == 1 else _pair(scene, rng, full)
    s = _clean(s)
    r = rng.random()
    if r < 0.05:
        s = s.upper() if rng.random() < 0.2 else s.capitalize()
    elif r < 0.1:
        s = s + "."
    return s


def canonical_caption(scene: Scene, background: bool = True) -> str:
    """Fixed fully specified phrasing, e.g. "a small red circle in the top left on a black background"."""

    def np_(o: Obj) -> str:
        return f"a {o.size} {o.color} {o.shape}"

    if len(scene.objects) == 1:
        o = scene.objects[0]
        c, r = COLUMNS[o.col], ROWS[o.row]
        if c == "center" and r == "middle":
            pos = "in the center"
        elif r == "middle":
            pos = f"on the {c}"
        elif c == "center":
            pos = f"at the {r}"
        else:
            pos = f"in the {r} {c}"
        s = f"{np_(o)} {pos}"
    else:
        a, b = scene.objects
        rel = {"left of": "to the left of", "right of": "to the right of"}.get(scene.relation, scene.relation)
        s = f"{np_(a)} {rel} {np_(b)}"
    if background:
        s += f" on a {scene.background} background"
    return re.sub(r"\ba ([aeiou])", r"an \1", s)


def vocabulary() -> list:
    """All words the caption generator can emit (lower case), for the tokenizer."""
    words = set()
    for table in (SHAPE_WORDS, COLOR_WORDS, SIZE_WORDS, REL_WORDS, ROW_WORDS, COL_WORDS):
        for opts in table.values():
            for o in opts:
                words.update(o.split())
    rng = np.random.default_rng(0)
    from .world import sample_scene

    for _i in range(20000):
        sc = sample_scene(rng)
        for w in re.findall(r"[a-z]+", caption(sc, rng).lower()):
            words.add(w)
    return sorted(words)
