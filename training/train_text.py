"""Train Studio's embedded default text model (``assets/models/text-default/``).

A small Llama-architecture causal LM with a byte-level BPE tokenizer, trained from scratch on
Jane Austen's six completed novels.  The texts are public domain; they are taken from the
Debian package ``r-cran-janeaustenr`` (the CRAN package *janeaustenr*, MIT licence), which
this script reads through ``Rscript``::

    apt-get install r-cran-janeaustenr          # pulls in r-base-core
    nice -n 15 .venv/bin/python training/train_text.py            # fresh run
    nice -n 15 .venv/bin/python training/train_text.py --resume   # go on from the last checkpoint
    .venv/bin/python training/train_text.py --export-only         # re-export the last checkpoint

Everything is seeded.  Checkpoints (model, optimiser, step, RNG states) go to
``training/runs/text/``; every checkpoint is also exported (safetensors, float16) to the
assets folder, so a stopped run always leaves a usable model behind.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_DIR = ROOT / "training" / "runs" / "text"
ASSET_DIR = ROOT / "assets" / "models" / "text-default"
CORPUS = RUN_DIR / "corpus"

BOOKS_R = r"""
suppressMessages(library(janeaustenr))
b <- austen_books()
for (name in levels(b$book)) {
  f <- file.path(Sys.getenv("OUT_DIR"), paste0(gsub("[^A-Za-z]+", "_", name), ".txt"))
  writeLines(as.character(b$text[b$book == name]), f, useBytes = TRUE)
}
"""

SPECIALS = ["<|endoftext|>", "<|pad|>"]


# ---------------------------------------------------------------------------- corpus

def extract_books() -> list[Path]:
    """Write one plain-text file per novel (from the R package) and return their paths."""
    CORPUS.mkdir(parents=True, exist_ok=True)
    existing = sorted(CORPUS.glob("*.txt"))
    if len(existing) == 6:
        return existing
    if shutil.which("Rscript") is None:
        sys.exit("Rscript not found: apt-get install r-cran-janeaustenr")
    subprocess.run(["Rscript", "-e", BOOKS_R], check=True, env={**os.environ, "OUT_DIR": str(CORPUS)})
    return sorted(CORPUS.glob("*.txt"))


def paragraphs(path: Path) -> list[str]:
    """Join hard-wrapped lines into paragraphs; drop the emphasis underscores."""
    out, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            if current:
                out.append(" ".join(current))
                current = []
            continue
        current.append(line)
    if current:
        out.append(" ".join(current))
    cleaned = []
    for p in out:
        p = p.replace("_", "")
        p = re.sub(r"\s+", " ", p).strip()
        if p:
            cleaned.append(p)
    return cleaned


def split_corpus(held_out: float = 0.05) -> tuple[list[str], list[str]]:
    """Train / held-out paragraphs: the last ``held_out`` share of every novel is held out."""
    train, valid = [], []
    for path in extract_books():
        paras = paragraphs(path)
        cut = int(len(paras) * (1 - held_out))
        train += paras[:cut]
        valid += paras[cut:]
    return train, valid


# ---------------------------------------------------------------------------- tokenizer

def build_tokenizer(train: list[str], vocab_size: int, out_dir: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, min_frequency=2,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(train, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>",
                                   eos_token="<|endoftext|>", pad_token="<|pad|>",
                                   unk_token=None, model_max_length=512)
    fast.save_pretrained(out_dir)
    return fast


def load_tokenizer(out_dir: Path):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(out_dir)


def encode_all(tok, paras: list[str]):
    import torch
    eos = tok.convert_tokens_to_ids("<|endoftext|>")
    ids: list[int] = []
    batch = 512
    for i in range(0, len(paras), batch):
        for row in tok(paras[i:i + batch], add_special_tokens=False)["input_ids"]:
            ids.extend(row)
            ids.append(eos)  # paragraph separator: the model learns to end a paragraph
    return torch.tensor(ids, dtype=torch.long)


# ---------------------------------------------------------------------------- model

def make_config(tok, args):
    from transformers import LlamaConfig
    eos = tok.convert_tokens_to_ids("<|endoftext|>")
    return LlamaConfig(vocab_size=len(tok), hidden_size=args.hidden, intermediate_size=args.ffn,
                       num_hidden_layers=args.layers, num_attention_heads=args.heads,
                       num_key_value_heads=args.heads, max_position_embeddings=512,
                       rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=eos,
                       eos_token_id=eos, pad_token_id=tok.pad_token_id, rope_theta=10000.0)


def lr_at(step: int, args) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = min(1.0, (step - args.warmup) / max(1, args.steps - args.warmup))
    return args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * progress))


def evaluate(model, data, block: int, batches: int = 40) -> float:
    """Mean held-out cross-entropy (nats/token) over up to ``batches`` contiguous windows."""
    import torch
    model.eval()
    losses = []
    with torch.no_grad():
        n = (len(data) - 1) // block
        starts = [i * block for i in range(n)][: batches * 8]
        for i in range(0, len(starts), 8):
            xs = torch.stack([data[s:s + block] for s in starts[i:i + 8]])
            ys = torch.stack([data[s + 1:s + 1 + block] for s in starts[i:i + 8]])
            out = model(input_ids=xs, labels=None)
            logits = out.logits
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), ys.reshape(-1))
            losses.append(loss.item())
    model.train()
    return sum(losses) / max(1, len(losses))


def export(model, tok, meta: dict) -> None:
    """Write the float16 safetensors model + tokenizer to the assets folder (atomically)."""
    import torch
    tmp = ASSET_DIR.with_name(ASSET_DIR.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    half = type(model)(model.config)
    half.load_state_dict(model.state_dict())
    half = half.to(torch.float16)
    half.config.dtype = "float16"
    half.generation_config.do_sample = True
    half.generation_config.temperature = 0.8
    half.generation_config.top_p = 0.95
    half.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    (tmp / "training.json").write_text(json.dumps(meta, indent=2) + "\n")
    card = ASSET_DIR / "README.md"
    if card.exists():
        shutil.copy2(card, tmp / "README.md")
    for extra in ("eval.json", "samples.md"):
        if (ASSET_DIR / extra).exists():
            shutil.copy2(ASSET_DIR / extra, tmp / extra)
    old = ASSET_DIR.with_name(ASSET_DIR.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if ASSET_DIR.exists():
        ASSET_DIR.rename(old)
    for path in tmp.iterdir():
        path.chmod(0o644)
    tmp.rename(ASSET_DIR)
    shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resume", action="store_true", help="continue from training/runs/text/last.pt")
    ap.add_argument("--export-only", action="store_true", help="export the last checkpoint and stop")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--ffn", type=int, default=704)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--block", type=int, default=None, help="training context in tokens (default 128; "
                    "may be changed on --resume, e.g. to train longer positions)")
    ap.add_argument("--batch", type=int, default=None, help="windows per step (default 16; may change on --resume)")
    ap.add_argument("--steps", type=int, default=6000, help="length of the cosine schedule")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr", type=float, default=1e-4)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--max-minutes", type=float, default=0, help="stop (and export) after this long; 0 = no limit")
    ap.add_argument("--ckpt-every", type=int, default=250)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    fresh_defaults = {"block": 128, "batch": 16}

    import torch
    torch.set_num_threads(args.threads)
    from transformers import LlamaForCausalLM

    RUN_DIR.mkdir(parents=True, exist_ok=True)
    ckpt_path = RUN_DIR / "last.pt"
    tok_dir = RUN_DIR / "tokenizer"

    train_paras, valid_paras = split_corpus()
    if (args.resume or args.export_only) and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        saved = state["args"]
        for key in ("seed", "vocab", "hidden", "ffn", "layers", "heads"):
            setattr(args, key, saved[key])
        for key in ("block", "batch"):
            if getattr(args, key) is None:
                setattr(args, key, saved[key])
        tok = load_tokenizer(tok_dir)
    else:
        if args.resume or args.export_only:
            print("no checkpoint to resume; starting fresh", flush=True)
        state = None
        for key, value in fresh_defaults.items():
            if getattr(args, key) is None:
                setattr(args, key, value)
        random.seed(args.seed)
        torch.manual_seed(args.seed)
        tok = build_tokenizer(train_paras, args.vocab, tok_dir)

    config = make_config(tok, args)
    torch.manual_seed(args.seed)
    model = LlamaForCausalLM(config)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    step = 0
    gen = torch.Generator().manual_seed(args.seed)
    history: list[dict] = []
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step = state["step"]
        gen.set_state(state["gen"])
        history = state.get("history", [])
    n_params = sum(p.numel() for p in model.parameters())

    def meta() -> dict:
        return {"step": step, "params": n_params, "args": vars(args), "history": history[-20:],
                "corpus": "Jane Austen's six novels (r-cran-janeaustenr), last 5% of each held out"}

    if args.export_only:
        export(model, tok, meta())
        print(f"exported step {step} to {ASSET_DIR}")
        return 0

    train = encode_all(tok, train_paras)
    valid = encode_all(tok, valid_paras)
    print(f"params {n_params/1e6:.2f}M  train tokens {len(train):,}  held-out tokens {len(valid):,}  "
          f"step {step}", flush=True)

    def save() -> None:
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "gen": gen.get_state(),
                    "args": vars(args), "history": history}, tmp)
        os.replace(tmp, ckpt_path)
        export(model, tok, meta())

    model.train()
    t0 = time.time()
    tokens_seen = 0
    window = []
    while step < args.steps:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args)
        starts = torch.randint(0, len(train) - args.block - 1, (args.batch,), generator=gen)
        xs = torch.stack([train[s:s + args.block] for s in starts])
        ys = torch.stack([train[s + 1:s + 1 + args.block] for s in starts])
        logits = model(input_ids=xs).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), ys.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens_seen += xs.numel()
        window.append(loss.item())
        if step % 50 == 0:
            elapsed = time.time() - t0
            print(f"step {step}  loss {sum(window)/len(window):.3f}  lr {lr_at(step, args):.2e}  "
                  f"{tokens_seen/elapsed:.0f} tok/s  {elapsed/60:.1f} min", flush=True)
            window = []
        done_time = args.max_minutes and (time.time() - t0) / 60 >= args.max_minutes
        if step % args.ckpt_every == 0 or step == args.steps or done_time:
            val = evaluate(model, valid, args.block)
            history.append({"step": step, "val_loss": round(val, 4), "val_ppl": round(math.exp(val), 2)})
            print(f"  held-out loss {val:.3f}  perplexity {math.exp(val):.1f}", flush=True)
            save()
        if done_time:
            print("time limit reached; checkpoint saved (resume with --resume)", flush=True)
            break
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
