#!/usr/bin/env python3
"""Parity on model shapes the committed fixtures do not have.

The fixtures pin one shape per architecture. This script builds random T5, BART and Pegasus
models with deliberately awkward shapes (head sizes that are not multiples of 8, more or fewer
heads in the decoder than the encoder, inner attention width != d_model, one-layer decoders,
odd feed-forward widths, other activations), runs transformers' generate() on them and
`precis summarize` on the same folders, and compares the summaries (greedy and beam search).

Every case runs on a short input and on a long one (as much of a multi-paragraph text as fits
the model's input window): a long input reaches what a few dozen tokens do not, such as the
encoder attention's many blocks of keys, products split over many groups of tokens and
threads, T5's far relative-position buckets and BART's and Pegasus's late positions.

It reuses the fixture tokenizers, so no download is needed. Nothing here runs in CI:

    .venv/bin/python scripts/shape_sweep.py [--precis target/release/precis] [--keep DIR]

Exit status 0 when every case matches. A case whose greedy path has a top-1/top-2 logit margin
below 1e-4 is reported as "inconclusive" instead of failing: at that margin float32 rounding can
legitimately pick the other token.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
TOKENIZER_FILES = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "generation_config.json",
]

TEXT = (
    "The river had flooded the lower town twice that spring, and the council met in the school hall "
    "to decide whether to raise the embankment or move the market uphill. Farmers argued for the "
    "embankment; shopkeepers wanted the move. After four hours the vote was tied."
)

# Sentences of a longer article; `long_text` keeps as many as the model's window holds.
LONG_SENTENCES = [
    "The regional water board published its review of the spring floods on Monday.",
    "It found that the embankment along the lower town had been built for a smaller river.",
    "Rainfall in March was the highest in sixty years, and the upland reservoirs were already full.",
    "When the sluice gates opened, the water reached the market square within two hours.",
    "Shopkeepers lost stock worth several million, and three schools closed for a fortnight.",
    "The review recommends raising the embankment by a metre and widening the flood meadows.",
    "It also proposes moving the weekly market to the old railway yard on higher ground.",
    "Farmers downstream object that wider meadows would take their best grazing land.",
    "The board says it will pay compensation at the rate set by the agricultural tribunal.",
    "Engineers estimate that the works would take three summers and cost about forty million.",
    "The national government has offered to pay half, if the county finds the rest.",
    "County councillors will vote on the plan in September, after a public consultation.",
    "Residents can read the full report in the library or on the board's website.",
    "Several of them said the warnings had come too late for anyone to move their cars.",
    "The board admitted that its text messages went out forty minutes after the gates opened.",
    "A new alert system, linked to the river gauges, is due to start next winter.",
    "Insurers have asked the board to publish the gauge readings every quarter of an hour.",
    "The mayor called the review honest and said the town could not afford another spring like it.",
    "Opposition members asked why the embankment had not been inspected since the last repair.",
    "The chief engineer answered that the inspection budget had been cut twice in ten years.",
]

# (name, fixture whose tokenizer and base config are reused, config overrides)
# T5 cases keep num_decoder_layers <= num_layers: transformers 5.24 sizes the T5 cache by the
# encoder depth and fails with an IndexError otherwise (precis does not have that limit).
CASES: list[tuple[str, str, dict]] = [
    (
        "t5-odd-heads",
        "t5-tiny",
        dict(d_model=40, d_kv=12, num_heads=5, d_ff=72, num_layers=3, num_decoder_layers=1,
             relative_attention_num_buckets=16, relative_attention_max_distance=20),
    ),
    (
        "t5-gated-silu-untied",
        "flan-t5-tiny",
        dict(d_model=56, d_kv=7, num_heads=6, d_ff=100, num_layers=2, num_decoder_layers=1,
             feed_forward_proj="gated-silu", dense_act_fn="silu", tie_word_embeddings=False),
    ),
    (
        "t5-relu-wide-heads",
        "t5-tiny",
        dict(d_model=32, d_kv=40, num_heads=2, d_ff=24, num_layers=2, num_decoder_layers=2,
             feed_forward_proj="relu"),
    ),
    (
        "bart-asymmetric",
        "bart-tiny",
        dict(d_model=60, encoder_attention_heads=5, decoder_attention_heads=3, encoder_ffn_dim=84,
             decoder_ffn_dim=44, encoder_layers=3, decoder_layers=1, scale_embedding=True,
             activation_function="gelu_new"),
    ),
    (
        "bart-relu-prenorm",
        "bart-tiny",
        dict(d_model=36, encoder_attention_heads=3, decoder_attention_heads=6, encoder_ffn_dim=50,
             decoder_ffn_dim=70, encoder_layers=1, decoder_layers=3, activation_function="relu",
             tie_word_embeddings=False),
    ),
    (
        "pegasus-odd",
        "pegasus-tiny",
        dict(d_model=44, encoder_attention_heads=4, decoder_attention_heads=2, encoder_ffn_dim=66,
             decoder_ffn_dim=30, encoder_layers=2, decoder_layers=1, activation_function="gelu"),
    ),
]

DECODING = [
    ("greedy", dict(num_beams=1)),
    ("beam4", dict(num_beams=4, length_penalty=1.0, early_stopping=True)),
]
NEW_TOKENS = 24


def build(fixture: str, overrides: dict, out: Path, seed: int) -> None:
    config = AutoConfig.from_pretrained(FIXTURES / fixture, **overrides)
    config.task_specific_params = None  # no prefix, no summarization overrides
    torch.manual_seed(seed)
    model = AutoModelForSeq2SeqLM.from_config(config).eval()
    # Random weights at the usual init scale give near-uniform logits; widen every weight so
    # the greedy path has margins far above float32 noise.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 1.0 / p.shape[-1] ** 0.5 * 1.5)
            elif "norm" in name:
                p.uniform_(0.5, 1.5)
            else:
                p.normal_(0.0, 0.1)
    model.save_pretrained(out, safe_serialization=True)
    for name in TOKENIZER_FILES:
        if (FIXTURES / fixture / name).exists():
            shutil.copy(FIXTURES / fixture / name, out / name)


def long_text(out: Path) -> tuple[str, int]:
    """As many of LONG_SENTENCES as fit the model's input window (so that precis summarises the
    text in one chunk, as transformers does), and its length in tokens."""
    config = AutoConfig.from_pretrained(out)
    window = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", 512)
    tokenizer = AutoTokenizer.from_pretrained(out)
    text, tokens = "", 0
    # Round the sentences again where a window holds more than all of them (BART's 1024).
    for sentence in LONG_SENTENCES * 4:
        longer = f"{text} {sentence}".strip()
        longer_tokens = len(tokenizer(longer).input_ids)
        if longer_tokens > window - 8:
            break
        text, tokens = longer, longer_tokens
    return text, tokens


def reference(out: Path, text: str, decoding: dict) -> tuple[str, float]:
    model = AutoModelForSeq2SeqLM.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    enc = tokenizer([text], return_tensors="pt")
    with torch.no_grad():
        result = model.generate(
            **enc,
            max_new_tokens=NEW_TOKENS,
            min_length=0,
            no_repeat_ngram_size=0,
            repetition_penalty=1.0,
            do_sample=False,
            output_scores=True,
            return_dict_in_generate=True,
            **decoding,
        )
    margin = float("inf")
    if decoding["num_beams"] == 1:
        for scores in result.scores:
            top = torch.topk(scores[0].float(), 2).values
            if torch.isfinite(top).all():
                margin = min(margin, float(top[0] - top[1]))
    text = tokenizer.decode(result.sequences[0], skip_special_tokens=True)
    return text.strip(), margin


def ours(precis: Path, out: Path, text: str, decoding: dict) -> str:
    args = [
        str(precis), "summarize", "-q", "--model", str(out), "--format", "json",
        "--max-new-tokens", str(NEW_TOKENS), "--min-length", "0", "--no-repeat-ngram-size", "0",
        "--repetition-penalty", "1.0", "--num-beams", str(decoding["num_beams"]), "-",
    ]
    if decoding["num_beams"] > 1:
        args[-1:-1] = ["--length-penalty", "1.0", "--early-stopping", "true"]
    run = subprocess.run(args, input=text, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"precis failed on {out}: {run.stderr.strip()}")
    return json.loads(run.stdout)["summary"].strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precis", type=Path, default=REPO / "target" / "release" / "precis")
    parser.add_argument("--keep", type=Path, help="write the models here instead of a temp dir")
    args = parser.parse_args()
    if not args.precis.exists():
        sys.exit(f"{args.precis} not found: build it with `cargo build --release` first")

    root = args.keep or Path(tempfile.mkdtemp(prefix="precis-sweep-"))
    failures = 0
    for seed, (name, fixture, overrides) in enumerate(CASES):
        out = root / name
        out.mkdir(parents=True, exist_ok=True)
        build(fixture, overrides, out, seed)
        long, long_tokens = long_text(out)
        texts = [("short", TEXT), (f"long ({long_tokens} tokens)", long)]
        for (length, text), (search, decoding) in itertools.product(texts, DECODING):
            label = f"{search} {length}"
            expected, margin = reference(out, text, decoding)
            got = ours(args.precis, out, text, decoding)
            if got == expected:
                status = "ok"
            elif margin < 1e-4:
                status = f"inconclusive (margin {margin:.2e})"
            else:
                status = "MISMATCH"
                failures += 1
            shown = f"{margin:.3f}" if margin != float("inf") else "-"
            print(f"{name:24} {label:26} margin {shown:>7}  {status}")
            if status == "MISMATCH":
                print(f"    transformers: {expected!r}\n    precis:       {got!r}")
    if not args.keep:
        shutil.rmtree(root)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
