"""ShapeEval prompt suite (GenEval-like categories) and scoring.

Categories
----------
single        one object, every factor named ("a small red circle in the top
              left on a black background", varied phrasing); scored per
              attribute: colour, shape, position (column and row), size,
              count (exactly one object)
two_object    two objects with different shapes ("a red circle and a blue
              square", "... next to ..."); score: both shapes present
relation      "A <left of / right of / above / below> B"; score: both shapes
              present and the relation of their centres is right
color_binding "a red circle and a blue square" with different colours and
              shapes; score: each shape carries its own colour

All prompts come from HELD-OUT factor combinations (``world.is_heldout``):
the trainer never sees those single-object combinations nor those pairs of
coloured objects together.

Usage::

    items = build_suite(n_per_category=40, seed=0)
    images = [generate(it.prompt) for it in items]
    result = score_suite(items, images)     # dict of category -> accuracy
    print(format_table(result))
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import captions, scorer, world

CATEGORIES = ("single", "two_object", "relation", "color_binding")

#: the issue's targets (fraction)
TARGETS = {
    "single/color": 0.95,
    "single/shape": 0.90,
    "single/position": 0.90,
    "two_object": 0.80,
    "relation": 0.70,
    "color_binding": 0.70,
}


@dataclass
class SuiteItem:
    category: str
    prompt: str
    scene: world.Scene


def _heldout(fn, rng, tries=10000):
    for _ in range(tries):
        s = fn(rng)
        if world.is_heldout(s):
            return s
    raise RuntimeError("no held-out scene found")


def build_suite(n_per_category: int = 40, seed: int = 0, heldout: bool = True) -> list:
    rng = np.random.default_rng([seed, 4242])
    pick = _heldout if heldout else (lambda fn, r: fn(r))
    items = []
    for _ in range(n_per_category):
        s = pick(lambda r: world.sample_single(r, jitter=False), rng)
        items.append(SuiteItem("single", captions.caption(s, rng, full=True), s))
    for _ in range(n_per_category):
        s = pick(lambda r: world.sample_pair(r, jitter=False, distinct_shapes=True), rng)
        a, b = s.objects
        ca = captions.noun_phrase(a, rng, p_size=0.0, p_color=0.5)
        cb = captions.noun_phrase(b, rng, p_size=0.0, p_color=0.5)
        conj = captions._pick(rng, ["and", "and", "with", "next to"])
        items.append(SuiteItem("two_object", captions._clean(f"{ca} {conj} {cb}"), s))
    for _ in range(n_per_category):
        s = pick(lambda r: world.sample_pair(r, jitter=False, distinct_shapes=True), rng)
        a, b = s.objects
        rel = captions._pick(rng, captions.REL_WORDS[s.relation][:2])
        p = f"{captions.noun_phrase(a, rng, 0.0, 1.0)} {rel} {captions.noun_phrase(b, rng, 0.0, 1.0)}"
        if rng.random() < 0.5:
            p += " " + captions.background_phrase(s.background, rng)
        items.append(SuiteItem("relation", captions._clean(p), s))
    for _ in range(n_per_category):
        s = pick(lambda r: world.sample_pair(r, jitter=False, distinct_shapes=True, distinct_colors=True), rng)
        a, b = s.objects
        p = f"{captions.noun_phrase(a, rng, 0.0, 1.0)} and {captions.noun_phrase(b, rng, 0.0, 1.0)}"
        if rng.random() < 0.5:
            p += " " + captions.background_phrase(s.background, rng)
        items.append(SuiteItem("color_binding", captions._clean(p), s))
    return items


def _find(reading, shape):
    cands = [o for o in reading.objects if o.shape == shape]
    return max(cands, key=lambda o: o.area) if cands else None


def score_item(item: SuiteItem, image) -> dict:
    """Score one generated image against its prompt's ground truth -> {metric: bool}."""
    r = scorer.read_image(image)
    s = item.scene
    if item.category == "single":
        o = s.objects[0]
        d = r.objects[0] if r.objects else None
        return {
            "single/color": d is not None and d.color == o.color,
            "single/shape": d is not None and d.shape == o.shape,
            "single/position": d is not None and d.col == o.col and d.row == o.row,
            "single/size": d is not None and d.size == o.size,
            "single/count": len(r.objects) == 1,
            "single/background": r.background == s.background,
        }
    a, b = s.objects
    da, db = _find(r, a.shape), _find(r, b.shape)
    both = da is not None and db is not None
    if item.category == "two_object":
        return {"two_object": both}
    if item.category == "relation":
        return {"relation": both and scorer.relation_of(da, db) == s.relation}
    if item.category == "color_binding":
        return {"color_binding": both and da.color == a.color and db.color == b.color}
    raise ValueError(item.category)


def score_suite(items, images) -> dict:
    """Accuracy per metric (fraction) plus counts: {"metrics": {...}, "n": {...}}."""
    sums, counts = {}, {}
    for it, img in zip(items, images, strict=False):
        for k, v in score_item(it, img).items():
            sums[k] = sums.get(k, 0) + bool(v)
            counts[k] = counts.get(k, 0) + 1
    return {"metrics": {k: sums[k] / counts[k] for k in sums}, "n": counts}


def format_table(result: dict) -> str:
    lines = ["| metric | accuracy | n | target |", "|---|---|---|---|"]
    for k, v in sorted(result["metrics"].items()):
        t = TARGETS.get(k)
        lines.append(f"| {k} | {100 * v:.1f}% | {result['n'][k]} | {'' if t is None else f'>= {100 * t:.0f}%'} |")
    return "\n".join(lines)
