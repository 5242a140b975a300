#!/usr/bin/env python3
"""Cross-check the `pipeline` section of the golden files against the real summarization pipeline.

transformers 5 removed pipeline("summarization"); make_fixtures.py therefore emulates the last
transformers 4 pipeline with 5.x's generate(). This script runs the *real* pipeline of transformers
4.57.x on the fixture folders and compares: the generation parameters it ends up with, the prefix,
the token ids and the summary text of every case.

It needs transformers 4.57 next to the fixtures venv's torch, e.g.:

    .venv/bin/pip install --target /tmp/tf4 transformers==4.57.6 tokenizers==0.22.2 \
        huggingface-hub==0.36.2 requests
    PYTHONPATH=/tmp/tf4 .venv/bin/python scripts/check_legacy_pipeline.py [bart-tiny ...]

Exit status 0 when everything matches. Nothing here is needed by CI.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import torch
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from legacy_pipeline import GLOBAL_GENERATION_DEFAULTS  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "fixtures" / "golden"

torch.set_num_threads(2)
warnings.filterwarnings("ignore")


def main() -> int:
    if not transformers.__version__.startswith("4."):
        print(f"needs transformers 4.x, found {transformers.__version__} (see the docstring)")
        return 2
    failures = 0
    only = sys.argv[1:]  # model names; all golden files when none
    for path in sorted(GOLDEN.glob("*.json")):
        if only and path.stem not in only:
            continue
        golden = json.loads(path.read_text(encoding="utf-8"))
        section = golden["pipeline"]
        model_dir = REPO / golden["model_dir"]
        # transformers 4 cannot read the tokenizer_config.json that transformers 5 writes (it falls
        # back to the sentencepiece T5Tokenizer, which needs spiece.model), so the tokenizer is
        # loaded straight from tokenizer.json: same tokenization, same decode. (T5, BART and
        # Pegasus all name their end, unknown and padding tokens like this.)
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        tokenizer = transformers.PreTrainedTokenizerFast(
            tokenizer_file=str(model_dir / "tokenizer.json"),
            eos_token="</s>",
            unk_token="<unk>",
            pad_token="<pad>",
            model_max_length=config.get("max_position_embeddings") or config.get("n_positions") or 512,
        )
        pipe = transformers.pipeline("summarization", model=str(model_dir), tokenizer=tokenizer, device=-1)
        gen = pipe.generation_config
        # Every tracked parameter, so a setting the emulation left out (say a forced BOS token
        # from a legacy config key) shows up as a mismatch too.
        used = {k: getattr(gen, k) for k in GLOBAL_GENERATION_DEFAULTS}
        want = {k: section["effective_params"].get(k, default) for k, default in GLOBAL_GENERATION_DEFAULTS.items()}
        print(f"{path.name}: transformers {transformers.__version__}, prefix={pipe.prefix!r}")
        print(f"  pipeline generation_config (diff): {gen.to_diff_dict()}")
        # 4.57 keeps prefix None when neither the task nor the config names one (used as "").
        if used != want or (pipe.prefix or "") != section["prefix"]:
            print(f"  MISMATCH params: pipeline {used} vs golden {want}")
            failures += 1
        for case in section["cases"]:
            ids = pipe(case["text"], return_tensors=True)[0]["summary_token_ids"]
            ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
            text = pipe(case["text"])[0]["summary_text"]
            ok = ids == case["output_ids"] and text == case["summary"]
            print(f"  {case['case']:>10}: {'ok' if ok else 'MISMATCH'} ({len(ids)} ids)")
            if not ok:
                failures += 1
                print(f"    pipeline: {ids}\n    golden  : {case['output_ids']}")
                print(f"    pipeline text: {text!r}\n    golden text  : {case['summary']!r}")
    print("all match" if not failures else f"{failures} mismatches")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
