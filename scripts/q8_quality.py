#!/usr/bin/env python3
"""How often `--quantize q8` and `--dtype bf16` give the float32 summary, on a small *trained* model.

Random models, like the test fixtures, amplify any change to their weights: rounding them to
8 bits changes every fixture summary after a few tokens, which says nothing about trained
checkpoints. This script trains a small T5 (fixture tokenizer, d_model 128) for a few minutes
on a toy summarisation task (the summary of a shuffled document is its first sentence), saves
it, and runs `precis summarize` on held-out documents in float32 and with each of `--quantize
q8` and `--dtype bf16` (bfloat16 products on the CPU), greedy and beam-4. It prints, per
variant, the parity-of-text rate and the word agreement with float32.

    cargo build --release
    .venv/bin/python scripts/q8_quality.py [--steps 1500] [--docs 60] [--out target/q8-model]
    # train once, then compare binaries on the same model:
    .venv/bin/python scripts/q8_quality.py --train-only
    .venv/bin/python scripts/q8_quality.py --reuse --precis path/to/precis

Nothing here runs in CI.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import torch
from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
from fixture_texts import training_corpus  # noqa: E402

TOKENIZER_DIR = REPO / "tests" / "fixtures" / "t5-tiny"
# The precis options of each variant compared with float32.
VARIANTS = {"q8": ["--quantize", "q8"], "bf16": ["--dtype", "bf16"]}


def sentences() -> list[str]:
    out = []
    for text in training_corpus():
        out += [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 4]
    return out


def document(rng: random.Random, pool: list[str]) -> tuple[str, str]:
    picked = rng.sample(pool, rng.randint(3, 6))
    return " ".join(picked), picked[0]


def split(rng: random.Random) -> tuple[list[str], list[str]]:
    """(held-out, training) sentences."""
    pool = sentences()
    rng.shuffle(pool)
    return pool[: len(pool) // 5], pool[len(pool) // 5 :]


def train(out: Path, steps: int, seed: int) -> None:
    torch.manual_seed(seed)
    rng = random.Random(seed)
    _, train_pool = split(rng)
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
    config = T5Config(
        vocab_size=1152, d_model=128, d_kv=32, num_heads=4, d_ff=512, num_layers=3,
        num_decoder_layers=3, feed_forward_proj="gated-gelu", dropout_rate=0.0,
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
    )  # fmt: skip
    model = T5ForConditionalGeneration(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    for step in range(steps):
        batch = [document(rng, train_pool) for _ in range(16)]
        enc = tokenizer([d for d, _ in batch], return_tensors="pt", padding=True, truncation=True, max_length=256)
        labels = tokenizer([s for _, s in batch], return_tensors="pt", padding=True).input_ids
        labels[labels == tokenizer.pad_token_id] = -100
        loss = model(**enc, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step % 100 == 0:
            print(f"step {step}: loss {loss.item():.3f}", flush=True)
    model.eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def summarize(precis: Path, model: Path, text: str, extra: list[str]) -> str:
    args = [str(precis), "summarize", "-q", "--model", str(model), "--format", "json", *extra, "-"]
    run = subprocess.run(args, input=text, capture_output=True, text=True, check=True)
    return json.loads(run.stdout)["summary"].strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--precis", type=Path, default=REPO / "target" / "release" / "precis")
    ap.add_argument("--out", type=Path, default=REPO / "target" / "q8-model")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--docs", type=int, default=60)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--reuse", action="store_true", help="summarise with the model already at --out (trained by an earlier run with the same --steps and --seed)")
    ap.add_argument("--train-only", action="store_true", help="train and save the model, summarise nothing")
    ap.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=sorted(VARIANTS, reverse=True))
    args = ap.parse_args()
    torch.set_num_threads(2)
    if not (args.reuse and args.out.exists()):
        if args.out.exists():
            shutil.rmtree(args.out)
        train(args.out, args.steps, args.seed)
    if args.train_only:
        return 0
    held_out, _ = split(random.Random(args.seed))
    rng = random.Random(args.seed + 1)
    docs = [document(rng, held_out) for _ in range(args.docs)]
    for label, search in [("greedy", ["--num-beams", "1"]), ("beam-4", ["--num-beams", "4"])]:
        base = ["--max-new-tokens", "48", "--min-length", "0", "--no-repeat-ngram-size", "0", *search]
        float32 = [summarize(args.precis, args.out, text, base) for text, _ in docs]
        correct = sum(f32 == first for f32, (_, first) in zip(float32, docs))
        print(f"{label}: float32 solves the task on {correct}/{len(docs)} documents")
        for variant in args.variants:
            same = agree = total = 0
            for f32, (text, _) in zip(float32, docs):
                other = summarize(args.precis, args.out, text, [*base, *VARIANTS[variant]])
                same += f32 == other
                a, b = f32.split(), other.split()
                agree += sum(x == y for x, y in zip(a, b))
                total += max(len(a), len(b))
            print(
                f"{label}: {variant} summary == float32 summary for {same}/{len(docs)} documents; "
                f"words agreeing {agree}/{total}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
