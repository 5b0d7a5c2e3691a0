"""Evaluate the embedded text model: held-out perplexity, real-word share, a page of samples.

    nice -n 15 .venv/bin/python training/eval_text.py [--model assets/models/text-default]

* Perplexity: on the held-out 5% of every novel (the same split as ``train_text.py``), in
  non-overlapping windows of the model's full context.
* Real-word share: samples are generated through the studio's own plugin (``TextModel.run``)
  with the "Balanced" preset; every word (letters, with an apostrophe inside) is looked up,
  case-insensitively and with a possessive "'s" removed, in the Debian ``wamerican`` list
  (/usr/share/dict/american-english).  The share against wamerican plus the training corpus's
  own vocabulary (which adds Austen's names and spellings) is reported too.
* Writes ``eval.json`` and ``samples.md`` next to the model.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins"), str(ROOT / "training")]

WORDLIST = Path("/usr/share/dict/american-english")
WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")
PROMPTS = ["It was", "Elizabeth", "Mr. Darcy", "The next morning", "\"My dear", "She could not",
           "Emma", "In the evening", "Sir Thomas", "Anne", "Catherine", "Marianne", "The ladies",
           "Mrs. Jennings", "He was", "After dinner", "Her father", "\"I am sure", "Captain Wentworth",
           "There was"]
BALANCED = {"temperature": 0.7, "top_k": 40, "top_p": 0.9, "min_p": 0.05, "repetition_penalty": 1.1}


def words_of(text: str) -> list[str]:
    return WORD.findall(text)


def normalise(word: str) -> str:
    w = word.lower()
    return w[:-2] if w.endswith("'s") else w


def load_wordlist() -> set[str]:
    if not WORDLIST.is_file():
        sys.exit("word list missing: apt-get install wamerican")
    return {normalise(line.strip()) for line in WORDLIST.read_text(encoding="utf-8", errors="ignore").splitlines()
            if line.strip()}


def perplexity(folder: Path, context: int) -> tuple[float, int]:
    import torch
    import train_text
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, valid = train_text.split_corpus()
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    ids = train_text.encode_all(tok, valid)
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(ids) - 1, context):
            chunk = ids[start:start + context + 1]
            if len(chunk) < 2:
                break
            logits = model(input_ids=chunk[:-1].unsqueeze(0)).logits[0]
            loss = torch.nn.functional.cross_entropy(logits, chunk[1:], reduction="sum")
            total += loss.item()
            count += len(chunk) - 1
    return math.exp(total / count), count


def samples(folder: Path, n_tokens: int) -> list[dict]:
    from studio.plugin_api import CancelToken, LoadOptions, Result, validate_request
    from studio_text import PARAMETERS, TextPlugin

    model = TextPlugin().load(str(folder), LoadOptions(device="cpu"), lambda m: None)
    out = []
    for i, prompt in enumerate(PROMPTS):
        request = validate_request(PARAMETERS, {"prompt": prompt, "max_new_tokens": n_tokens, "seed": 1000 + i,
                                                **BALANCED}, "notebook")
        result = [e for e in model.run(request, CancelToken()) if isinstance(e, Result)][0]
        out.append({"prompt": prompt, "seed": 1000 + i, "text": result.artifacts[0].text,
                    "tokens": result.info["tokens"], "tokens_per_second": result.info["tokens_per_second"]})
    return out


START, END = "<!-- eval:start -->", "<!-- eval:end -->"


def update_card(card: Path, result: dict, sample_lines: list[str]) -> None:
    """Rewrite the measured part of the model card (between the eval markers)."""
    if not card.exists():
        return
    text = card.read_text(encoding="utf-8")
    if START not in text or END not in text:
        return
    block = [
        START, "",
        f"Measured by `training/eval_text.py` on the exported model (training step {result['step']}).", "",
        "| measure | value |", "| --- | --- |",
        f"| Held-out perplexity (last 5 % of each novel, {result['heldout_tokens']:,} tokens, "
        f"512-token windows) | **{result['heldout_perplexity']:.1f}** |",
        f"| Real English words among generated words, against Debian `wamerican` "
        f"(/usr/share/dict/american-english, case-insensitive, possessive 's removed) | "
        f"**{result['real_word_share_wamerican'] * 100:.1f} %** of {result['words_generated']:,} words |",
        f"| ... against wamerican plus the training corpus's own vocabulary (adds Austen's names) | "
        f"{result['real_word_share_wamerican_or_corpus'] * 100:.1f} % |",
        f"| Load time through the text plugin (warm imports) | {result['load_seconds_warm']:.2f} s |",
        "",
        f"Words outside both lists: {', '.join(result['non_words'][:30]) or 'none'}.", "",
        "Sampling for the word count and the samples: the Balanced preset (temperature 0.7, top-k 40, "
        "top-p 0.9, min-p 0.05, repetition penalty 1.1), "
        f"{result['tokens_per_sample']} new tokens per sample, seeds 1000-1019, through Studio's own plugin.",
        "", "### Samples", "", *sample_lines, END]
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    card.write_text(head + "\n".join(block) + tail, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "assets" / "models" / "text-default"))
    ap.add_argument("--tokens", type=int, default=120, help="new tokens per sample")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    folder = Path(args.model)
    config = json.loads((folder / "config.json").read_text())
    started = time.perf_counter()
    load_start = time.perf_counter()
    from studio.plugin_api import LoadOptions
    from studio_text import TextPlugin

    TextPlugin().load(str(folder), LoadOptions(device="cpu"), lambda m: None)
    load_seconds = time.perf_counter() - load_start  # includes the first torch/transformers import
    load_start = time.perf_counter()
    TextPlugin().load(str(folder), LoadOptions(device="cpu"), lambda m: None)
    reload_seconds = time.perf_counter() - load_start
    ppl, n_eval = perplexity(folder, int(config.get("max_position_embeddings", 512)))
    made = samples(folder, args.tokens)
    english = load_wordlist()
    import train_text

    train, _ = train_text.split_corpus()
    corpus_vocab = {normalise(w) for p in train for w in words_of(p)}
    all_words = [w for s in made for w in words_of(s["text"])]
    in_english = sum(normalise(w) in english for w in all_words)
    in_either = sum(normalise(w) in english or normalise(w) in corpus_vocab for w in all_words)
    unknown = sorted({w for w in all_words if normalise(w) not in english and normalise(w) not in corpus_vocab})
    training = json.loads((folder / "training.json").read_text()) if (folder / "training.json").exists() else {}
    result = {
        "model": str(folder), "step": training.get("step"), "params": training.get("params"),
        "heldout_perplexity": round(ppl, 2), "heldout_tokens": n_eval,
        "words_generated": len(all_words),
        "real_word_share_wamerican": round(in_english / max(1, len(all_words)), 4),
        "real_word_share_wamerican_or_corpus": round(in_either / max(1, len(all_words)), 4),
        "non_words": unknown[:60],
        "sampling": BALANCED, "tokens_per_sample": args.tokens,
        "load_seconds_first": round(load_seconds, 3), "load_seconds_warm": round(reload_seconds, 3),
        "eval_seconds": round(time.perf_counter() - started, 1),
    }
    (folder / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# Samples", "",
             f"Twenty samples from the built-in model (training step {training.get('step')}), written through "
             f"Studio's text plugin with the *Balanced* preset (temperature 0.7, top-k 40, top-p 0.9, min-p 0.05, "
             f"repetition penalty 1.1), {args.tokens} new tokens each, seeds 1000-1019. The prompt is in bold.", ""]
    for s in made:
        lines += [f"**{s['prompt']}**{s['text']}", "", f"*seed {s['seed']}*", ""]
    (folder / "samples.md").write_text("\n".join(lines))
    update_card(folder / "README.md", result, lines[2:])
    print(json.dumps({k: v for k, v in result.items() if k != "non_words"}, indent=2))
    print("non-words:", ", ".join(unknown[:40]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
