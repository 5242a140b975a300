#!/usr/bin/env python3
"""Write a random model with EXACTLY the shape of a real summarisation checkpoint, for benchmarks.

    python scripts/make_bench_model.py --shape t5-small --out /tmp/bench/t5-small

Shapes: t5-small (google-t5/t5-small), flan-t5-small (google/flan-t5-small),
distilbart-cnn-12-6 (sshleifer/distilbart-cnn-12-6), and for the README's preset speed table
t5-base, flan-t5-base, bart-large-cnn, distilbart-cnn-6-6 and pegasus-cnn_dailymail (plain random
initialisation, no confidence surgery: they are only timed). The folder gets config.json (keys like the real
checkpoint's), generation_config.json, model.safetensors (float32) and a tokenizer (the tiny
fixture tokenizer; for BART re-ordered to BART's special ids <s>=0 <pad>=1 </s>=2 <unk>=3). The
weights are random, so the text is meaningless: benchmark with fixed lengths (e.g. min_new_tokens =
max_new_tokens) rather than relying on EOS. These folders are large (240 MB to 1.2 GB): never commit
them.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer, BartConfig, BartForConditionalGeneration
from transformers import PreTrainedTokenizerFast

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402

torch.set_num_threads(2)

T5_SMALL = {
    "architectures": ["T5ForConditionalGeneration"],
    "d_ff": 2048,
    "d_kv": 64,
    "d_model": 512,
    "decoder_start_token_id": 0,
    "dropout_rate": 0.1,
    "eos_token_id": 1,
    "initializer_factor": 1.0,
    "is_encoder_decoder": True,
    "layer_norm_epsilon": 1e-06,
    "model_type": "t5",
    "n_positions": 512,
    "num_heads": 8,
    "num_layers": 6,
    "output_past": True,
    "pad_token_id": 0,
    "relative_attention_num_buckets": 32,
    "task_specific_params": mf.T5_TASK_SPECIFIC_PARAMS,
    "vocab_size": 32128,
}

FLAN_T5_SMALL = {
    "architectures": ["T5ForConditionalGeneration"],
    "d_ff": 1024,
    "d_kv": 64,
    "d_model": 512,
    "decoder_start_token_id": 0,
    "dense_act_fn": "gelu_new",
    "dropout_rate": 0.1,
    "eos_token_id": 1,
    "feed_forward_proj": "gated-gelu",
    "initializer_factor": 1.0,
    "is_encoder_decoder": True,
    "is_gated_act": True,
    "layer_norm_epsilon": 1e-06,
    "model_type": "t5",
    "n_positions": 512,
    "num_decoder_layers": 8,
    "num_heads": 6,
    "num_layers": 8,
    "output_past": True,
    "pad_token_id": 0,
    "relative_attention_max_distance": 128,
    "relative_attention_num_buckets": 32,
    "task_specific_params": mf.T5_TASK_SPECIFIC_PARAMS,
    "tie_word_embeddings": False,
    "transformers_version": "4.23.1",
    "use_cache": True,
    "vocab_size": 32128,
}

# sshleifer/distilbart-cnn-12-6: BART-large width, 12 encoder / 6 decoder layers. The real config.json
# also carries generation settings at top level (num_beams, max_length, ...); transformers 5 refuses
# generation parameters in the model config, so they live in generation_config.json here.
DISTILBART_CNN_12_6 = {
    "activation_dropout": 0.0,
    "activation_function": "gelu",
    "add_bias_logits": False,
    "add_final_layer_norm": False,
    "architectures": ["BartForConditionalGeneration"],
    "attention_dropout": 0.0,
    "bos_token_id": 0,
    "classif_dropout": 0.0,
    "d_model": 1024,
    "decoder_attention_heads": 16,
    "decoder_ffn_dim": 4096,
    "decoder_layerdrop": 0.0,
    "decoder_layers": 6,
    "decoder_start_token_id": 2,
    "dropout": 0.1,
    "encoder_attention_heads": 16,
    "encoder_ffn_dim": 4096,
    "encoder_layerdrop": 0.0,
    "encoder_layers": 12,
    "eos_token_id": 2,
    "extra_pos_embeddings": 2,
    "id2label": {"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2"},
    "init_std": 0.02,
    "is_encoder_decoder": True,
    "label2id": {"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2},
    "max_position_embeddings": 1024,
    "model_type": "bart",
    "normalize_before": False,
    "normalize_embedding": True,
    "num_hidden_layers": 12,
    "output_past": True,
    "pad_token_id": 1,
    "prefix": " ",
    "scale_embedding": False,
    "static_position_embeddings": False,
    "task_specific_params": {
        "summarization": {
            "early_stopping": True,
            "length_penalty": 2.0,
            "max_length": 142,
            "min_length": 56,
            "no_repeat_ngram_size": 3,
            "num_beams": 4,
        }
    },
    "vocab_size": 50264,
}
DISTILBART_GENERATION = {
    "bos_token_id": 0,
    "decoder_start_token_id": 2,
    "early_stopping": True,
    "eos_token_id": 2,
    "forced_bos_token_id": 0,
    "forced_eos_token_id": 2,
    "length_penalty": 2.0,
    "max_length": 142,
    "min_length": 56,
    "no_repeat_ngram_size": 3,
    "num_beams": 4,
    "pad_token_id": 1,
}

T5_GENERATION = {"decoder_start_token_id": 0, "eos_token_id": 1, "pad_token_id": 0}

# The other presets' shapes (from their config.json on the Hub), for timing only.
OTHER_SHAPES = {
    "t5-base": ("t5", {**T5_SMALL, "d_model": 768, "d_ff": 3072, "num_heads": 12, "num_layers": 12}),
    "flan-t5-base": (
        "t5",
        {**FLAN_T5_SMALL, "d_model": 768, "d_ff": 2048, "num_heads": 12, "num_layers": 12, "num_decoder_layers": 12},
    ),
    "bart-large-cnn": ("bart", {**DISTILBART_CNN_12_6, "decoder_layers": 12}),
    "distilbart-cnn-6-6": ("bart", {**DISTILBART_CNN_12_6, "encoder_layers": 6, "num_hidden_layers": 6}),
    "pegasus-cnn_dailymail": (
        "pegasus",
        {
            "architectures": ["PegasusForConditionalGeneration"],
            "model_type": "pegasus",
            "vocab_size": 96103,
            "d_model": 1024,
            "encoder_layers": 16,
            "decoder_layers": 16,
            "encoder_attention_heads": 16,
            "decoder_attention_heads": 16,
            "encoder_ffn_dim": 4096,
            "decoder_ffn_dim": 4096,
            "activation_function": "relu",
            "max_position_embeddings": 1024,
            "scale_embedding": True,
            "pad_token_id": 0,
            "eos_token_id": 1,
            "decoder_start_token_id": 0,
            "forced_eos_token_id": 1,
            # Legacy keys the real checkpoint's config.json still carries (transformers ignores
            # them); CTranslate2's converter reads the first two to lay Pegasus out.
            "normalize_before": True,
            "normalize_embedding": False,
            "add_final_layer_norm": True,
            "static_position_embeddings": True,
        },
    ),
}


def make_other(shape: str, out_dir: Path, seed: int) -> None:
    """A plainly initialised model of one of OTHER_SHAPES, saved the way transformers saves it."""
    family, config = OTHER_SHAPES[shape]
    config = {k: v for k, v in copy.deepcopy(config).items() if k not in ("architectures", "task_specific_params")}
    torch.manual_seed(seed)
    model = AutoModelForSeq2SeqLM.from_config(AutoConfig.for_model(config.pop("model_type"), **config))
    model.save_pretrained(str(out_dir), safe_serialization=True)
    if family == "bart":
        save_bart_style_tokenizer(out_dir, config["vocab_size"])
    elif family == "pegasus":
        save_pegasus_style_tokenizer(out_dir, config["vocab_size"])
    else:
        mf.save_t5_tokenizer(out_dir)


def save_bart_style_tokenizer(out_dir: Path, vocab_size: int) -> None:
    """BART's special-token layout (`<s>` `<pad>` `</s>` `<unk>`, `<mask>` last) and `<s> $A </s>`."""
    save_padded_tokenizer(
        out_dir,
        vocab_size,
        head=["<s>", "<pad>", "</s>", "<unk>"],
        tail=["<mask>"],
        template=("<s> $A </s>", "<s> $A </s> </s> $B </s>", [("<s>", 0), ("</s>", 2)]),
        roles={"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>"},
    )


def save_pegasus_style_tokenizer(out_dir: Path, vocab_size: int) -> None:
    """Pegasus's special-token layout (`<pad>` 0, `</s>` 1, the two mask tokens, `<unk>`) and `$A </s>`."""
    save_padded_tokenizer(
        out_dir,
        vocab_size,
        head=["<pad>", "</s>", "<mask_1>", "<mask_2>", "<unk>"],
        tail=[],
        template=("$A </s>", "$A $B </s>", [("</s>", 1)]),
        roles={
            "eos_token": "</s>",
            "unk_token": "<unk>",
            "pad_token": "<pad>",
            "mask_token": "<mask_2>",
            "additional_special_tokens": ["<mask_1>"],
        },
    )


def save_padded_tokenizer(
    out_dir: Path, vocab_size: int, head: list[str], tail: list[str], template: tuple, roles: dict
) -> None:
    """The tiny Unigram vocab between the special tokens `head` and `tail`, padded to
    `vocab_size` with filler pieces no text produces (CTranslate2's converter wants exactly one
    token per row of the model's embedding, as a real tokenizer has)."""
    vocab, charsmap = mf.t5_vocab()
    pieces = [(p, s) for p, s in vocab[3:] if not p.startswith("<extra_id_")]
    vocab = [(token, 0.0) for token in head] + pieces
    vocab += [(f"<filler_{i}>", -100.0) for i in range(vocab_size - len(tail) - len(vocab))]
    vocab += [(token, 0.0) for token in tail]
    tok = Tokenizer(models.Unigram(vocab, unk_id=head.index("<unk>"), byte_fallback=False))
    tok.normalizer = normalizers.Precompiled(charsmap)
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    single, pair, special_tokens = template
    tok.post_processor = processors.TemplateProcessing(single=single, pair=pair, special_tokens=special_tokens)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=1024, **roles)
    wrapped.save_pretrained(str(out_dir))


def write_json(path: Path, obj) -> None:
    mf.write_json(path, obj)


def make_t5(shape: str, out_dir: Path, seed: int) -> None:
    config = copy.deepcopy(T5_SMALL if shape == "t5-small" else FLAN_T5_SMALL)
    spec = mf.ModelSpec(
        name=shape,
        reference=shape,
        config=config,
        generation_config=T5_GENERATION,
        build=mf.build_t5,
        save_tokenizer=mf.save_t5_tokenizer,
        seed=seed,
        # The fixtures' surgery (diverse outputs), without the EOS boost: benchmarks want long outputs.
        confidence={"q": 8.0, "o": 8.0, "wo": 1.0, "eos": 0.0, "logit_std": 6.0},
        summarization=mf.T5_SUMMARIZATION,
    )
    mf.save_t5_tokenizer(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(out_dir))
    model = mf.build_t5(spec, config["vocab_size"], tokenizer)
    tied = config.get("tie_word_embeddings", True) is not False
    save_file(mf.t5_state_dict_for_file(model, tied), str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    write_json(out_dir / "config.json", config)
    write_json(out_dir / "generation_config.json", T5_GENERATION)


def make_bart(out_dir: Path, seed: int) -> None:
    config = copy.deepcopy(DISTILBART_CNN_12_6)
    save_bart_style_tokenizer(out_dir, config["vocab_size"])
    torch.manual_seed(seed)
    model = BartForConditionalGeneration(BartConfig(**{k: v for k, v in config.items() if k != "architectures"}))
    state = {}
    for name, tensor in model.state_dict().items():
        # BART checkpoints store the embedding once (model.shared.weight); lm_head is tied to it.
        if name in ("model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight", "lm_head.weight"):
            continue
        state[name] = tensor.detach().to(torch.float32).contiguous().clone()
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    write_json(out_dir / "config.json", config)
    write_json(out_dir / "generation_config.json", DISTILBART_GENERATION)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    shapes = ["t5-small", "flan-t5-small", "distilbart-cnn-12-6", *OTHER_SHAPES]
    ap.add_argument("--shape", required=True, choices=shapes)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-verify", action="store_true", help="skip reloading the folder in transformers")
    args = ap.parse_args()
    out = args.out.resolve()
    if mf.REPO in out.parents and (mf.REPO / "tests") in out.parents:
        sys.exit("refusing to write a benchmark model under tests/ (it must never be committed)")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if args.shape == "distilbart-cnn-12-6":
        make_bart(out, args.seed)
    elif args.shape in OTHER_SHAPES:
        make_other(args.shape, out, args.seed)
    else:
        make_t5(args.shape, out, args.seed)
    if not args.no_verify:
        model = AutoModelForSeq2SeqLM.from_pretrained(str(out)).eval()
        tok = AutoTokenizer.from_pretrained(str(out))
        n = sum(p.numel() for p in model.parameters())
        enc = tok(["summarize: a short test sentence about bridges and rivers."], return_tensors="pt")
        with torch.no_grad():
            ids = model.generate(**enc, num_beams=1, max_new_tokens=8, min_new_tokens=8)
        print(f"{args.shape}: {n / 1e6:.1f}M parameters, vocab {model.config.vocab_size}, generate ok: {ids.tolist()}")
    total = sum(f.stat().st_size for f in out.iterdir())
    print(f"wrote {out} ({total / 2**20:.0f} MiB): {sorted(p.name for p in out.iterdir())}")


if __name__ == "__main__":
    main()
