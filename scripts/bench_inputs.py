"""The synthetic input ids of `precis bench`, drawn exactly as `src/cli/bench.rs` draws them.

Candidates are every id that both the tokenizer and the model know, except the tokenizer's added
(special) tokens and the model's EOS, pad and decoder start ids, in ascending order. Rows are drawn
from one SplitMix64 stream seeded with INPUT_SEED, row after row: `input_tokens - 1` candidates
(`candidates[next() % len]`), then EOS. `checksum` is the value precis reports as `input_checksum`,
so the harness can check that every engine got the same ids.

Only the `tokenizers` package is needed (no torch), so CTranslate2 workers stay lean.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer

INPUT_SEED = 0x5EED_0001
MASK64 = (1 << 64) - 1

# (eos, pad, decoder start) when config.json leaves them out, as precis's configs default them.
TOKEN_DEFAULTS = {"t5": (1, 0, None), "bart": (2, 1, 2), "pegasus": (1, 0, 0)}


class SplitMix64:
    def __init__(self, seed: int) -> None:
        self.state = seed & MASK64

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)


def decoder_spec(config: dict) -> dict:
    """vocab_size and the eos / pad / decoder start ids precis reads from config.json."""
    eos, pad, start = TOKEN_DEFAULTS.get(config.get("model_type"), (1, 0, None))
    eos = config.get("eos_token_id", eos)
    pad = config.get("pad_token_id", pad)
    start = config.get("decoder_start_token_id", start)
    return {"vocab_size": config["vocab_size"], "eos": eos, "pad": pad, "start": pad if start is None else start}


def candidate_ids(model_dir: Path) -> tuple[list[int], int]:
    """(candidate ids, eos id) for the model folder."""
    config = json.loads((model_dir / "config.json").read_text())
    spec = decoder_spec(config)
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    special = set(tokenizer.get_added_tokens_decoder())
    limit = min(tokenizer.get_vocab_size(with_added_tokens=True), spec["vocab_size"])
    reserved = {spec["eos"], spec["pad"], spec["start"]}
    return [i for i in range(limit) if i not in special and i not in reserved], spec["eos"]


def draw_rows(candidates: list[int], eos: int, batch: int, length: int) -> list[list[int]]:
    rng = SplitMix64(INPUT_SEED)
    rows = []
    for _ in range(batch):
        row = [candidates[rng.next() % len(candidates)] if candidates else eos for _ in range(length - 1)]
        rows.append(row + [eos])
    return rows


def synthetic_inputs(model_dir: Path, batch: int, length: int) -> list[list[int]]:
    candidates, eos = candidate_ids(model_dir)
    return draw_rows(candidates, eos, batch, length)


def checksum(rows: list[list[int]]) -> int:
    flat = [i for row in rows for i in row]
    return sum(token * (pos + 1) for pos, token in enumerate(flat)) & MASK64


def self_test() -> None:
    rng = SplitMix64(0)
    assert rng.next() == 0xE220A8397B1DCDAF and rng.next() == 0x6E789E6AA1B965F4
    assert checksum([[3, 4], [5]]) == 3 + 4 * 2 + 5 * 3


if __name__ == "__main__":
    self_test()
    print("bench_inputs: ok")
