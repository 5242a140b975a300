"""Golden outputs of transformers' `generate()` on a hash-defined toy model.

The toy model's next-token logits are a pure function of (seed, the input row's real tokens, the
decoder prefix), computed identically here and by `MockModel` in `src/generation/mock.rs`. Running
transformers' own greedy and beam search on it pins precis' generation semantics (length penalty,
early stopping, processor order, finished beams) without needing a real model.

Run: python scripts/mock_generation_parity.py > src/generation/testdata/mock_parity.json
"""

import json
import sys

import numpy as np
import torch
import transformers
from transformers import GenerationConfig, T5Config, T5ForConditionalGeneration
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput

MASK = (1 << 64) - 1
PAD, EOS, START = 0, 1, 0


def mix(z):
    """splitmix64's finaliser: a cheap, well-spread 64-bit hash step."""
    z = (z + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def mock_logits(seed, row, prefix, vocab, eos_bias):
    h = mix(seed)
    for t in row:
        h = mix(h ^ t)
    h = mix(h ^ 0xFFFF_FFFF)
    for t in prefix:
        h = mix(h ^ t)
    out = np.empty(vocab, dtype=np.float64)
    for v in range(vocab):
        u = mix(h ^ (v + 0x1_0000_0000)) >> 11  # 53 random bits
        out[v] = u / float(1 << 53) * 8.0 - 4.0
    # EOS grows likelier with length so hypotheses of several lengths compete.
    out[EOS] += eos_bias * len(prefix)
    return out.astype(np.float32)


class Mock(T5ForConditionalGeneration):
    """A T5 shell whose forward ignores its weights and returns `mock_logits`."""

    seed = 0
    eos_bias = 0.0

    def forward(self, decoder_input_ids=None, encoder_outputs=None, **kwargs):
        hidden = encoder_outputs[0]
        mask = kwargs["attention_mask"]
        vocab = self.config.vocab_size
        rows = []
        for b in range(decoder_input_ids.shape[0]):
            row = [int(t) for t, m in zip(hidden[b, :, 0].tolist(), mask[b].tolist()) if m]
            prefix = decoder_input_ids[b].tolist()
            rows.append(mock_logits(self.seed, row, prefix, vocab, self.eos_bias))
        logits = torch.from_numpy(np.stack(rows))[:, None, :]
        return Seq2SeqLMOutput(logits=logits)


def run_case(model, case):
    rows = case["inputs"]
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [PAD] * (width - len(r)) for r in rows], dtype=torch.float32)
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    model.seed, model.eos_bias = case["seed"], case["eos_bias"]
    model.config.vocab_size = case["vocab"]
    cfg = dict(case["config"])
    gen = GenerationConfig(
        decoder_start_token_id=START, eos_token_id=EOS, pad_token_id=PAD, do_sample=False, use_cache=False, **cfg
    )
    out = model.generate(
        encoder_outputs=BaseModelOutput(last_hidden_state=ids[:, :, None]),
        attention_mask=mask,
        generation_config=gen,
    )
    result = []
    for seq in out.tolist():
        # Rows are padded to a common length (beam search pads with EOS when pad is 0); keep each
        # row up to and including its first generated EOS.
        cut = seq.index(EOS, 1) + 1 if EOS in seq[1:] else len(seq)
        result.append(seq[:cut])
    return result


def cases():
    inputs = [[5, 7, 9], [3, 4], [11, 2, 6, 8], [9]]
    base = dict(vocab=12, eos_bias=0.25, inputs=inputs)
    configs = []
    for nb in (1, 2, 3, 4):
        for lp in (1.0, 0.0, 2.0, -1.5):
            for es in (False, True, "never"):
                if nb == 1 and (lp != 1.0 or es is not False):
                    continue
                configs.append(dict(num_beams=nb, length_penalty=lp, early_stopping=es, max_length=9))
    configs += [
        dict(num_beams=3, max_length=12, no_repeat_ngram_size=2),
        dict(num_beams=3, max_length=10, repetition_penalty=1.7),
        dict(num_beams=1, max_length=10, repetition_penalty=1.7),
        dict(num_beams=1, max_length=10, no_repeat_ngram_size=1),
        dict(num_beams=3, max_length=10, min_length=6),
        dict(num_beams=1, max_length=10, min_new_tokens=4),
        dict(num_beams=2, max_new_tokens=5, forced_bos_token_id=7, forced_eos_token_id=EOS),
        dict(num_beams=1, max_new_tokens=5, forced_bos_token_id=7, forced_eos_token_id=EOS),
        dict(num_beams=4, max_length=3),
        dict(num_beams=4, max_length=2),
        dict(num_beams=3, max_length=11, repetition_penalty=1.3, no_repeat_ngram_size=3, min_length=4, length_penalty=0.6),
    ]
    out = []
    for seed in (1, 2, 3):
        for i, cfg in enumerate(configs):
            out.append(dict(base, seed=seed, name=f"seed{seed}-{i}", config=cfg))
    # A model that rarely ends on its own: beams reach max_length.
    out.append(dict(base, seed=4, eos_bias=-1.0, name="no-eos", config=dict(num_beams=3, max_length=8)))
    out.append(dict(base, seed=5, eos_bias=1.0, name="eager-eos", config=dict(num_beams=4, max_length=8, early_stopping=True)))
    return out


def main():
    torch.manual_seed(0)
    tiny = T5Config(vocab_size=12, d_model=4, d_ff=4, d_kv=2, num_layers=1, num_heads=1,
                    decoder_start_token_id=START, eos_token_id=EOS, pad_token_id=PAD)
    model = Mock(tiny).eval()
    results = []
    with torch.no_grad():
        for case in cases():
            case["expected"] = run_case(model, case)
            results.append(case)
    json.dump({"transformers": transformers.__version__, "cases": results}, sys.stdout, indent=None)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
