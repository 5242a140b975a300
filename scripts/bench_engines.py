#!/usr/bin/env python3
"""Benchmark workers for scripts/bench.py: transformers (PyTorch) and CTranslate2 on the ids that
`precis bench` uses, each in its own process so that its peak RSS is its own.

    python scripts/bench_engines.py transformers --model DIR --batch 1 --num-beams 1 ...
    python scripts/bench_engines.py ct2 --model DIR --ct2-model DIR_CT2 --batch 8 --num-beams 4 ...

Prints one JSON object with the keys of `precis bench --format json` (encoder_ms,
decode_tokens_per_s and total_ms as median/min/max, peak_rss_mib, input_checksum, runs).

How time is split, per engine. The number that counts is the whole call (total_ms: encoder,
cross-attention keys/values and every decoder step, as a user waits for it); the phases are only
there to see where it goes, and are always taken inside that same timed call:
  transformers  encoder: a forward hook on `model.get_encoder()` times the encoder call that
                `model.generate(...)` itself makes; decode seconds = total - encoder.
  CTranslate2   has no encoder-only call. With greedy search a step callback marks when the first
                token of the batch is out; the later steps take (total - first) / (N - 1) each, so
                the encoder is first - one step and decode seconds = total - encoder (N steps).
                Beam search has no step callback: the first token is then timed by a separate
                `translate_batch` for 1 token (phases estimated; total_ms stays one call). Its
                "encoder" also holds the cross-attention key/value projection, which precis and
                transformers count in decoding.
Every engine must decode exactly N tokens per row (checked): EOS is suppressed by a minimum
length equal to the maximum, and no other logits processor is active.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_inputs  # noqa: E402


def peak_rss_mib() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def stats(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def report(args, rows, runs: list[dict], extra: dict) -> dict:
    tokens = args.batch * args.new_tokens
    decode = [tokens / ((r["generate_ms"] - r["encoder_ms"]) / 1000) for r in runs]
    return {
        "engine": args.engine,
        "model": str(args.model),
        "threads": args.threads,
        "batch": args.batch,
        "input_tokens": args.input_tokens,
        "new_tokens": args.new_tokens,
        "num_beams": args.num_beams,
        "runs": args.runs,
        "warmup": args.warmup,
        "input_checksum": bench_inputs.checksum(rows),
        "encoder_ms": stats([r["encoder_ms"] for r in runs]),
        "decode_tokens_per_s": stats(decode),
        "total_ms": stats([r["generate_ms"] for r in runs]),
        "peak_rss_mib": peak_rss_mib(),
        "runs_detail": runs,
        **extra,
    }


def timed(fn):
    started = time.perf_counter()
    out = fn()
    return out, (time.perf_counter() - started) * 1000


def bench_transformers(args, rows) -> dict:
    import torch
    import transformers
    from transformers import AutoModelForSeq2SeqLM, GenerationConfig

    torch.set_num_threads(args.threads)
    baseline = peak_rss_mib()
    dtype = getattr(torch, args.dtype)
    device = torch.device(args.device)
    model = AutoModelForSeq2SeqLM.from_pretrained(str(args.model), dtype=dtype).eval().to(device)
    # On a GPU every mark waits for the queued kernels, so that each phase holds its own work
    # (as `precis bench` synchronises after each phase).
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    marks: list[float] = []

    def mark(*_):
        sync()
        marks.append(time.perf_counter())

    spec = bench_inputs.decoder_spec(json.loads((args.model / "config.json").read_text()))
    # A fresh config replaces the checkpoint's summarisation defaults (forced BOS/EOS, n-gram
    # blocking, length penalty), so that generate runs plain greedy / beam search like precis.
    model.generation_config = GenerationConfig(
        decoder_start_token_id=spec["start"],
        eos_token_id=spec["eos"],
        pad_token_id=spec["pad"],
        max_new_tokens=args.new_tokens,
        min_new_tokens=args.new_tokens,
        num_beams=args.num_beams,
        do_sample=False,
    )
    ids = torch.tensor(rows, dtype=torch.long, device=device)
    mask = torch.ones_like(ids)
    encoder = model.get_encoder()
    # generate() calls the encoder once; the hooks time that very call.
    encoder.register_forward_pre_hook(mark)
    encoder.register_forward_hook(mark)

    def generate():
        out = model.generate(input_ids=ids, attention_mask=mask)
        sync()
        return out

    def one_run() -> dict:
        marks.clear()
        with torch.inference_mode():
            out, generate_ms = timed(generate)
        if out.shape != (args.batch, args.new_tokens + 1):
            sys.exit(f"transformers generated shape {tuple(out.shape)}, expected {(args.batch, args.new_tokens + 1)}")
        if len(marks) != 2:
            sys.exit(f"transformers: expected one encoder call inside generate, saw {len(marks) // 2}")
        return {"encoder_ms": (marks[1] - marks[0]) * 1000, "generate_ms": generate_ms}

    runs = run_all(args, one_run)
    versions = {"torch": torch.__version__, "transformers": transformers.__version__}
    extra = {"versions": versions, "baseline_rss_mib": baseline, "device": args.device, "dtype": args.dtype}
    if device.type == "cuda":
        extra["gpu"] = torch.cuda.get_device_name(device)
    return report(args, rows, runs, extra)


def bench_ct2(args, rows) -> dict:
    import ctranslate2

    baseline = peak_rss_mib()
    vocab = json.loads((args.ct2_model / "shared_vocabulary.json").read_text())
    tokens = [[vocab[i] for i in row] for row in rows]
    # CTranslate2 takes token strings: each one used must name exactly one id.
    first = {}
    for i, token in enumerate(vocab):
        first.setdefault(token, i)
    if any(first[vocab[i]] != i for row in rows for i in row):
        sys.exit("CTranslate2 vocabulary: an input id's token is not unique")
    translator = ctranslate2.Translator(
        str(args.ct2_model), device="cpu", compute_type="default", inter_threads=1, intra_threads=args.threads
    )

    def translate(n: int, callback=None):
        return translator.translate_batch(
            tokens,
            beam_size=args.num_beams,
            min_decoding_length=n,
            max_decoding_length=n,
            max_input_length=0,
            callback=callback,
        )

    def one_run() -> dict:
        if args.num_beams == 1:
            first: list[float] = []
            started = time.perf_counter()
            out = translate(args.new_tokens, lambda step: first.append(time.perf_counter()) or False)
            generate_ms = (time.perf_counter() - started) * 1000
            one_ms = (min(first) - started) * 1000
        else:
            _, one_ms = timed(lambda: translate(1))
            out, generate_ms = timed(lambda: translate(args.new_tokens))
        lengths = {len(r.hypotheses[0]) for r in out}
        if lengths != {args.new_tokens}:
            sys.exit(f"CTranslate2 generated {lengths} tokens per row, expected {args.new_tokens}")
        step_ms = (generate_ms - one_ms) / (args.new_tokens - 1)
        return {"encoder_ms": one_ms - step_ms, "generate_ms": generate_ms, "one_token_ms": one_ms}

    runs = run_all(args, one_run)
    quantization = json.loads((args.ct2_model / "config.json").read_text()).get("quantization", None)
    extra = {"versions": {"ctranslate2": ctranslate2.__version__}, "baseline_rss_mib": baseline}
    extra["compute_type"] = translator.compute_type
    if quantization:
        extra["quantization"] = quantization
    return report(args, rows, runs, extra)


def run_all(args, one_run) -> list[dict]:
    for _ in range(args.warmup):
        one_run()
    runs = []
    for i in range(args.runs):
        run = one_run()
        print(f"{args.engine} run {i + 1}/{args.runs}: {run['encoder_ms']:.1f} / {run['generate_ms']:.1f} ms", file=sys.stderr)
        runs.append(run)
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("engine", choices=["transformers", "ct2"])
    ap.add_argument("--model", type=Path, required=True, help="the Hugging Face model folder (ids come from it)")
    ap.add_argument("--ct2-model", type=Path, help="the converted CTranslate2 folder (ct2 only)")
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32", help="transformers only")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="transformers only")
    ap.add_argument("--input-tokens", type=int, default=512)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--num-beams", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if args.engine == "ct2" and (args.ct2_model is None or args.new_tokens < 2):
        ap.error("ct2 needs --ct2-model and --new-tokens >= 2")
    if args.engine == "ct2" and args.device != "cpu":
        ap.error("--device is for transformers only (CTranslate2 runs on the CPU here)")
    rows = bench_inputs.synthetic_inputs(args.model, args.batch, args.input_tokens)
    result = bench_transformers(args, rows) if args.engine == "transformers" else bench_ct2(args, rows)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
