"""Measure the chorale model against the corpus it learnt from.

    nice -n 15 .venv/bin/python training/eval_chorale.py [--model assets/models/chorale] [--samples 48]

Metrics (printed, and written to training/runs/chorale/eval.json):

* in-key ratio: note onsets whose pitch class is in the requested key (major: the 7 diatonic
  degrees; minor: natural + harmonic + melodic forms, i.e. 9 degrees);
* in-range ratio: notes inside each voice's range (studio_music.representation.VOICE_RANGES);
* pitch-class-histogram distance: total-variation distance (half the L1 norm, 0..1) between the
  duration-weighted pitch-class histogram relative to the tonic of the generated pieces and of the
  corpus, per mode, averaged over the two modes;
* parallel fifths/octaves: per 100 voice-pair moves (both voices move in the same direction from
  a perfect fifth/octave/unison to the same interval class), generated vs corpus.

Also draws a piano roll and a waveform of one sample to PNG for a human to look at.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))
sys.path.insert(0, str(ROOT))

from studio_music.representation import PITCH_NAMES, VOICE_RANGES, VOICES, scale_pitch_classes, tokens_to_notes

RUN = ROOT / "training" / "runs" / "chorale"


def in_key_ratio(grid, tonic, mode) -> tuple[int, int]:
    scale = scale_pitch_classes(tonic, mode)
    notes = tokens_to_notes(grid)
    return sum(n.pitch % 12 in scale for n in notes), len(notes)


def in_range_ratio(grid) -> tuple[int, int]:
    notes = tokens_to_notes(grid)
    ok = sum(VOICE_RANGES[VOICES[n.voice]][0] <= n.pitch <= VOICE_RANGES[VOICES[n.voice]][1] for n in notes)
    return ok, len(notes)


def pc_histogram(grid, tonic) -> np.ndarray:
    hist = np.zeros(12)
    for n in tokens_to_notes(grid):
        hist[(n.pitch - tonic) % 12] += n.duration
    return hist


def parallel_counts(grid) -> tuple[int, int]:
    """(parallel perfect fifths/octaves, voice-pair moves)."""
    from studio_music.model import sounding_pitch

    pitch = sounding_pitch(grid)
    onset = grid >= 2
    parallels = moves = 0
    for t in range(1, len(grid)):
        if not onset[t].any():
            continue
        for a in range(4):
            for b in range(a + 1, 4):
                p0a, p0b, p1a, p1b = pitch[t - 1, a], pitch[t - 1, b], pitch[t, a], pitch[t, b]
                if 128 in (p0a, p0b, p1a, p1b):
                    continue
                da, db = p1a - p0a, p1b - p0b
                if da == 0 and db == 0:
                    continue
                moves += 1
                i0, i1 = (p0a - p0b) % 12, (p1a - p1b) % 12
                if i0 == i1 and i0 in (0, 7) and da != 0 and np.sign(da) == np.sign(db):
                    parallels += 1
    return parallels, moves


def tv_distance(h1, h2) -> float:
    return 0.5 * float(np.abs(h1 / h1.sum() - h2 / h2.sum()).sum())


def corpus_stats():
    sys.path.insert(0, str(ROOT / "training"))
    from train_chorale import load_corpus

    pieces = load_corpus()
    hist = {"major": np.zeros(12), "minor": np.zeros(12)}
    key_ok = key_n = par = mov = rng_ok = rng_n = 0
    for p in pieces:
        mode = "minor" if p["mode"] else "major"
        hist[mode] += pc_histogram(p["tokens"], p["tonic"])
        k, n = in_key_ratio(p["tokens"], p["tonic"], mode)
        key_ok, key_n = key_ok + k, key_n + n
        r, n = in_range_ratio(p["tokens"])
        rng_ok, rng_n = rng_ok + r, rng_n + n
        a, b = parallel_counts(p["tokens"])
        par, mov = par + a, mov + b
    return {"hist": hist, "in_key": key_ok / key_n, "in_range": rng_ok / rng_n, "parallels_per_100": 100 * par / mov,
            "pieces": len(pieces)}


def generate_samples(model_dir: Path, samples: int, bars: int, temperature: float, key_strength: float,
                     voice_leading: bool = True):
    import torch

    from studio_music.model import Sampler, load_model

    torch.set_num_threads(1)
    sampler = Sampler(load_model(model_dir))
    out = []
    started = time.perf_counter()
    for i in range(samples):
        tonic, mode = i % 12, ("major", "minor")[(i // 12) % 2]
        grid = sampler.generate(bars * 16, tonic, mode, temperature, seed=1000 + i, key_strength=key_strength,
                                avoid_parallels=voice_leading)
        out.append((grid, tonic, mode))
    return out, time.perf_counter() - started


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(ROOT / "assets" / "models" / "chorale"))
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--bars", type=int, default=8)
    parser.add_argument("--temperature", type=float, default=0.9)
    parser.add_argument("--key-strength", type=float, default=2.0)
    parser.add_argument("--plots", default=str(RUN))
    parser.add_argument("--no-voice-leading", action="store_true",
                        help="sample without the parallel-fifths/octaves rule (the raw network)")
    parser.add_argument("--out", default=str(RUN / "eval.json"))
    args = parser.parse_args(argv)
    corpus = corpus_stats()
    generated, seconds = generate_samples(Path(args.model), args.samples, args.bars, args.temperature,
                                          args.key_strength, not args.no_voice_leading)
    hist = {"major": np.zeros(12), "minor": np.zeros(12)}
    key_ok = key_n = rng_ok = rng_n = par = mov = 0
    for grid, tonic, mode in generated:
        hist[mode] += pc_histogram(grid, tonic)
        k, n = in_key_ratio(grid, tonic, mode)
        key_ok, key_n = key_ok + k, key_n + n
        r, n = in_range_ratio(grid)
        rng_ok, rng_n = rng_ok + r, rng_n + n
        a, b = parallel_counts(grid)
        par, mov = par + a, mov + b
    distance = float(np.mean([tv_distance(hist[m], corpus["hist"][m]) for m in ("major", "minor")]))
    report = {
        "model": args.model, "samples": args.samples, "bars": args.bars, "temperature": args.temperature,
        "key_strength": args.key_strength, "voice_leading_rule": not args.no_voice_leading,
        "in_key_ratio": key_ok / key_n, "in_range_ratio": rng_ok / rng_n, "pch_distance": distance,
        "parallels_per_100": 100 * par / max(1, mov), "corpus_parallels_per_100": corpus["parallels_per_100"],
        "parallels_vs_corpus": (100 * par / max(1, mov)) / corpus["parallels_per_100"],
        "corpus_in_key_ratio": corpus["in_key"], "corpus_in_range_ratio": corpus["in_range"],
        "generation_seconds": seconds, "notes": key_n,
    }
    report["passes"] = {
        "in_key>=0.95": report["in_key_ratio"] >= 0.95, "in_range>=0.98": report["in_range_ratio"] >= 0.98,
        "pch<=0.1": distance <= 0.1, "parallels<=2x": report["parallels_vs_corpus"] <= 2.0,
    }
    for key, value in report.items():
        print(f"{key:28} {value}")
    RUN.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    if args.plots and not args.no_voice_leading:
        plot(generated[2][0], generated[2][1], generated[2][2], Path(args.plots))
    return report


def plot(grid, tonic, mode, folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from studio_music.clip import seconds_per_step
    from studio_music.synth import Synth, notes_from_events

    notes = tokens_to_notes(grid)
    colours = ("tab:red", "tab:orange", "tab:green", "tab:blue")
    fig, ax = plt.subplots(figsize=(12, 4))
    for n in notes:
        ax.add_patch(plt.Rectangle((n.start / 4, n.pitch - 0.4), n.duration / 4, 0.8, color=colours[n.voice]))
    ax.set_xlim(0, len(grid) / 4)
    ax.set_ylim(min(n.pitch for n in notes) - 2, max(n.pitch for n in notes) + 2)
    ax.set_xlabel("beats")
    ax.set_ylabel("MIDI pitch")
    ax.set_title(f"generated chorale, {PITCH_NAMES[tonic]} {mode} (S red, A orange, T green, B blue)")
    for bar in range(0, len(grid) // 4 + 1, 4):
        ax.axvline(bar, color="0.8", lw=0.5)
    fig.tight_layout()
    fig.savefig(folder / "pianoroll.png", dpi=90)
    plt.close(fig)
    audio = Synth("organ").render(notes_from_events(notes, seconds_per_step(72)))
    fig, ax = plt.subplots(figsize=(12, 3))
    t = np.arange(len(audio)) / 32000
    ax.plot(t[::8], audio[::8, 0], lw=0.3, label="left")
    ax.plot(t[::8], audio[::8, 1], lw=0.3, label="right", alpha=0.7)
    ax.axhline(10 ** (-1 / 20), color="r", lw=0.5)
    ax.axhline(-10 ** (-1 / 20), color="r", lw=0.5)
    ax.set_xlabel("seconds")
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "waveform.png", dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
