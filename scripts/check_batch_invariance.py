#!/usr/bin/env python3
"""End-to-end check that `precis batch` writes exactly what `precis summarize` writes alone.

    python3 scripts/make_bench_model.py --shape t5-small --out target/bench-models/t5-small  # once
    python3 scripts/check_batch_invariance.py --precis target/release/precis \
        --model target/bench-models/t5-small --articles 50

Writes ARTICLES articles of mixed length (the generator of `bench_serve.py`: short, medium and
long ones, the long ones chunked and merged), summarises them all with one `precis batch` run
(padded batches of different inputs, 4 beams on t5-small) and each one alone with
`precis summarize`, and compares the summaries' token ids (`output_ids` of `--format json`).
A random t5-small-shaped model has near-ties that any change in float summation order flips,
which the confident test fixtures do not; `tests/batch_invariance.rs` checks the logits' bits.
Exits 1 and names the articles when any summary differs. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serve import DECODING, make_articles  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--precis", default="target/release/precis")
    parser.add_argument("--model", required=True, help="a t5-small-shaped folder (make_bench_model.py)")
    parser.add_argument("--articles", type=int, default=50)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--flag", action="append", default=[],
                        help="an extra flag for both commands (repeat), e.g. --flag=--quantize=q8")
    args = parser.parse_args()
    flags = ["--model", args.model, *DECODING, *args.flag]
    with tempfile.TemporaryDirectory() as tmp:
        folder, out = Path(tmp) / "articles", Path(tmp) / "out"
        folder.mkdir()
        names = []
        for i, (kind, text) in enumerate(make_articles(args.articles, args.seed)):
            name = f"{kind}-{i:04d}"
            (folder / f"{name}.txt").write_text(text + "\n")
            names.append(name)
        subprocess.run([args.precis, "batch", str(folder), "-o", str(out), "-q", "--format", "json",
                        *flags], check=True)
        differing = []
        for name in names:
            batch = json.loads((out / f"{name}.txt.summary.json").read_text())
            alone = subprocess.run([args.precis, "summarize", str(folder / f"{name}.txt"), "--format",
                                    "json", *flags], check=True, capture_output=True, text=True)
            alone = json.loads(alone.stdout)
            if batch["output_ids"] != alone["output_ids"]:
                differing.append(name)
                print(f"{name}: batch {batch['summary']!r}\n{' ' * len(name)}  alone {alone['summary']!r}")
    kernels = os.environ.get("PRECIS_CPU_KERNELS", "detected")
    print(f"{len(differing)} of {len(names)} summaries differ between precis batch and precis "
          f"summarize ({args.model}, kernels {kernels}, flags {' '.join(args.flag) or 'none'})")
    sys.exit(1 if differing else 0)


if __name__ == "__main__":
    main()
