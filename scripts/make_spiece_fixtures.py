#!/usr/bin/env python3
"""SentencePiece-only tokenizer fixtures: `spiece.model` as older T5 and Pegasus repos ship it.

Trains a small Unigram SentencePiece model on fixture_texts.py (T5's special ids: <pad>=0,
</s>=1, <unk>=2, NFKC rules), writes it into tests/fixtures/t5-spiece and
tests/fixtures/pegasus-spiece next to a config.json naming the architecture, and records what
transformers builds from those folders (ids with special tokens, and the decoded text) in
tests/fixtures/golden/spiece.json.

transformers reads spiece.model through protobuf, so the venv needs it on top of
requirements-fixtures.txt (it is listed there):

    .venv/bin/python scripts/make_spiece_fixtures.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import sentencepiece as spm
from transformers import AutoTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixture_texts import CASES, MULTILINGUAL_STRINGS, TOKENIZATION_STRINGS, training_corpus  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
VOCAB_SIZE = 600

# (folder, model_type, tokenizer class transformers picks)
FOLDERS = [
    ("t5-spiece", "t5", "T5Tokenizer"),
    ("pegasus-spiece", "pegasus", "PegasusTokenizer"),
]

EXTRA_STRINGS = [
    "A sentinel <extra_id_0> and <extra_id_99> in the text.",
    "Pegasus masks: <mask_1> and <mask_2>, and <unk_5>.",
    "Two  spaces,   three, and\n\nblank lines.",
]


def train(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text("\n".join(training_corpus()), encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_prefix=str(Path(tmp) / "spiece"),
            vocab_size=VOCAB_SIZE,
            model_type="unigram",
            pad_id=0,
            eos_id=1,
            unk_id=2,
            bos_id=-1,
            normalization_rule_name="nmt_nfkc",
            character_coverage=1.0,
            num_threads=1,
            minloglevel=2,
        )
        out.write_bytes((Path(tmp) / "spiece.model").read_bytes())


def main() -> None:
    model_bytes = None
    golden: dict = {"transformers_version": __import__("transformers").__version__, "folders": {}}
    texts = [text for _, text in CASES] + TOKENIZATION_STRINGS + MULTILINGUAL_STRINGS + EXTRA_STRINGS
    for folder, model_type, tokenizer_class in FOLDERS:
        out = FIXTURES / folder
        out.mkdir(parents=True, exist_ok=True)
        if model_bytes is None:
            train(out / "spiece.model")
            model_bytes = (out / "spiece.model").read_bytes()
        else:
            (out / "spiece.model").write_bytes(model_bytes)
        (out / "config.json").write_text(json.dumps({"model_type": model_type}, indent=2) + "\n")
        (out / "tokenizer_config.json").write_text(
            json.dumps({"tokenizer_class": tokenizer_class, "model_max_length": 512}, indent=2) + "\n"
        )
        tokenizer = AutoTokenizer.from_pretrained(out)
        assert type(tokenizer).__name__ == tokenizer_class, type(tokenizer).__name__
        cases = []
        for text in texts:
            ids = tokenizer(text).input_ids
            decoded = tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
            cases.append({"text": text, "ids": ids, "decoded": decoded})
        golden["folders"][folder] = {
            "vocab_size": len(tokenizer),
            "unk_id": tokenizer.unk_token_id,
            "eos_id": tokenizer.eos_token_id,
            "cases": cases,
        }
    path = FIXTURES / "golden" / "spiece.json"
    path.write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
