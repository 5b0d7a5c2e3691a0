"""Extract the Bach chorales that ship with music21 into 16th-note SATB grids (cached .npz).

Run once: ``python training/chorale_corpus.py`` writes ``training/runs/chorale/corpus.npz``.
The chorales are public domain; music21 bundles them as MusicXML.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

from studio_music.representation import HOLD, REST, STEPS_PER_QUARTER, token_for_pitch

OUT = ROOT / "training" / "runs" / "chorale" / "corpus.npz"
_VOICE_WORDS = (("soprano", "sopran", "s."), ("alto", "alt", "a."), ("tenor", "ten", "t."), ("bass", "bas", "b."))


def _satb(score):
    parts = list(score.parts)
    if len(parts) == 4:
        return parts
    chosen = []
    for words in _VOICE_WORDS:
        match = [p for p in parts if any(w in (p.partName or p.id or "").lower() for w in words)]
        if not match:
            return None
        chosen.append(match[0])
    return chosen


def extract(path):
    from music21 import corpus

    score = corpus.parse(path)
    parts = _satb(score)
    if parts is None:
        return None
    ts = score.recurse().getElementsByClass("TimeSignature").first()
    if ts is None or ts.ratioString not in ("4/4", "3/4", "2/2", "3/2"):
        return None
    bar = int(round(ts.barDuration.quarterLength * STEPS_PER_QUARTER))
    measures = parts[0].getElementsByClass("Measure")
    pad = float(measures[0].paddingLeft or 0.0) if len(measures) else 0.0
    total = int(round(float(score.highestTime) * STEPS_PER_QUARTER))
    grid = np.full((total, 4), -1, dtype=np.int16)
    for voice, part in enumerate(parts):
        for n in part.stripTies().flatten().notesAndRests:
            ql = float(n.duration.quarterLength)
            if ql <= 0:
                continue
            start = int(round(float(n.offset) * STEPS_PER_QUARTER))
            end = int(round((float(n.offset) + ql) * STEPS_PER_QUARTER))
            if start >= total or end <= start:
                continue
            if n.isRest:
                token = REST
            else:
                pitches = [p.midi for p in n.pitches]
                token = token_for_pitch(max(pitches) if voice < 2 else min(pitches))
            grid[start, voice] = token
            grid[start + 1:end, voice] = HOLD
    grid[grid < 0] = REST
    key = score.analyze("key")
    tonic = key.tonic.pitchClass
    mode = 0 if key.mode == "major" else 1
    metric = ((np.arange(total) + int(round(pad * STEPS_PER_QUARTER))) % bar).astype(np.int16)
    return grid, metric, bar, tonic, mode


def main() -> None:
    from music21 import corpus

    paths = sorted(corpus.getComposer("bach"))
    grids, metrics, meta, names = [], [], [], []
    started = time.time()
    for index, path in enumerate(paths):
        try:
            found = extract(path)
        except Exception as exc:  # noqa: BLE001 - a few files are odd; skip them
            print("skip", path.name, exc, flush=True)
            continue
        if found is None:
            continue
        grid, metric, bar, tonic, mode = found
        grids.append(grid)
        metrics.append(metric)
        meta.append((bar, tonic, mode))
        names.append(path.name)
        if index % 25 == 0:
            print(f"{index}/{len(paths)} {time.time() - started:.0f}s", flush=True)
    lengths = np.array([len(g) for g in grids])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, grid=np.concatenate(grids), metric=np.concatenate(metrics), lengths=lengths,
                        meta=np.array(meta, dtype=np.int16), names=np.array(names))
    print(f"{len(grids)} chorales, {lengths.sum()} steps, {time.time() - started:.0f}s -> {OUT}")


if __name__ == "__main__":
    main()
