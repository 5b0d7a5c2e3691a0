"""Build the Shapes CLIP tokenizer (vocab.json + merges.txt) from the caption vocabulary.

CLIP's byte-level BPE format: the 256 byte symbols and their end-of-word
variants ("x</w>") are always in the vocabulary, so ANY text tokenizes (unknown
words fall back to sub-words / characters).  On top of that we learn BPE merges
on a large sample of captions until every caption word (and a few extra common
words) is a single token.

  python training/make_tokenizer.py --out training/runs/shapes_sd/tokenizer
"""
from __future__ import annotations

import argparse
import collections
import json
import re
from pathlib import Path

import numpy as np
from shapes_common import RUNS

from studio.shapes import captions, world

EXTRA_WORDS = """a an the of and with on in at to is are image picture photo drawing of shape shapes object
objects two one background backdrop color colour colored coloured gray grey pink brown cyan dark light bright
left right top bottom middle center centre upper lower corner side above below under over next beside near
small large big tiny little huge medium circle circles square squares triangle triangles ball box dot star
red green blue yellow purple orange white black violet crimson lime navy golden""".split()

MAX_LEN = 32


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=False))


def word_counts(n_captions: int, seed: int) -> collections.Counter:
    rng = np.random.default_rng(seed)
    counts = collections.Counter()
    for _ in range(n_captions):
        sc = world.sample_scene(rng)
        for w in re.findall(r"[a-z]+|[0-9]|[^\sa-z0-9]+", captions.caption(sc, rng).lower()):
            counts[w] += 1
    for w in EXTRA_WORDS:
        counts[w] += 5
    return counts


def learn_bpe(counts: collections.Counter):
    b2u = bytes_to_unicode()
    words = {}
    for w, c in counts.items():
        syms = [b2u[b] for b in w.encode("utf-8")]
        syms[-1] = syms[-1] + "</w>"
        words[tuple(syms)] = c
    merges = []
    while True:
        pairs = collections.Counter()
        for syms, c in words.items():
            for i in range(len(syms) - 1):
                pairs[(syms[i], syms[i + 1])] += c
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        new_words = {}
        for syms, c in words.items():
            out = []
            i = 0
            while i < len(syms):
                if i < len(syms) - 1 and (syms[i], syms[i + 1]) == best:
                    out.append(syms[i] + syms[i + 1])
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            new_words[tuple(out)] = new_words.get(tuple(out), 0) + c
        words = new_words
    return merges


def build(out: Path, n_captions: int = 20000, seed: int = 0) -> Path:
    counts = word_counts(n_captions, seed)
    merges = learn_bpe(counts)
    b2u = bytes_to_unicode()
    vocab_list = list(b2u.values())
    vocab_list += [v + "</w>" for v in vocab_list]
    for a, b in merges:
        vocab_list.append(a + b)
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {}
    for t in vocab_list:
        if t not in vocab:
            vocab[t] = len(vocab)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "vocab.json", "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(out / "merges.txt", "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer(vocab=vocab, merges=[tuple(m) for m in merges],
                        model_max_length=MAX_LEN, pad_token="<|endoftext|>")
    tok.save_pretrained(str(out))
    # save_pretrained writes tokenizer.json; keep the classic vocab.json/merges.txt pair as well
    with open(out / "vocab.json", "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(out / "merges.txt", "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    print(f"tokenizer: {len(vocab)} tokens, {len(merges)} merges, {len(counts)} words -> {out}")
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(RUNS / "shapes_sd" / "tokenizer"))
    ap.add_argument("--captions", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    build(Path(a.out), a.captions, a.seed)
