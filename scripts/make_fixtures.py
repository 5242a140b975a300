"""Build precis's tiny-model fixtures and golden outputs.

Writes, under tests/fixtures/:
  <model>/            config.json, generation_config.json (unless the reference has none),
                      model.safetensors (float32), tokenizer.json, tokenizer_config.json
  bart-tiny-vocab-merges/  bart-tiny with vocab.json + merges.txt instead of tokenizer.json
  golden/<model>.json golden outputs recorded with Hugging Face transformers

The models are *random* but real architectures (T5 v1.0, T5 v1.1/FLAN, BART, DistilBART, Pegasus),
made "confident" (see `t5_confident_surgery` and bart_fixtures.bart_confident_surgery) so that
float noise cannot flip an argmax and parity tests are meaningful. Everything is deterministic:
fixed seeds, a frozen Unigram vocabulary (see VOCAB_FILE), a deterministically trained BPE, sorted
JSON. Rerunning the script gives byte-identical files; `--check` rebuilds everything in a temporary
folder and compares it byte for byte with tests/fixtures.

Adding an architecture means adding a `ModelSpec` to `SPECS` with a config that mirrors the real
checkpoint's config.json, a `build` function that returns the random model, a tokenizer writer and
the weights-file layout; the golden-output code is architecture-independent (it only uses
AutoModelForSeq2SeqLM + generate).

Usage:  python scripts/make_fixtures.py [--only t5-tiny] [--seed N] [--search-seeds N] [--check]
                                        [--retrain-tokenizer]
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import math
import os
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import sentencepiece
import torch
import transformers
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, pre_tokenizers, trainers, normalizers
from transformers import (
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    T5Config,
    T5ForConditionalGeneration,
    T5Tokenizer,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixture_texts import (  # noqa: E402
    MULTILINGUAL_STRINGS,
    TOKENIZATION_STRINGS,
    TRAINING_EXTRA,
    training_corpus,
)
import bart_fixtures as bf  # noqa: E402
from golden_outputs import Golden, quality  # noqa: E402
from legacy_pipeline import T5_WINDOW  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
GOLDEN = FIXTURES / "golden"

# Two threads (this machine's cores); FIXTURE_THREADS=1 when several builds share the cores.
torch.set_num_threads(int(os.environ.get("FIXTURE_THREADS", "2")))
transformers.logging.set_verbosity_error()
warnings.filterwarnings("ignore")

# Summarization defaults of google-t5/t5-small and google/flan-t5-small (config.json,
# task_specific_params["summarization"]).
T5_SUMMARIZATION = {
    "early_stopping": True,
    "length_penalty": 2.0,
    "max_length": 200,
    "min_length": 30,
    "no_repeat_ngram_size": 3,
    "num_beams": 4,
    "prefix": "summarize: ",
}
T5_TASK_SPECIFIC_PARAMS = {
    "summarization": T5_SUMMARIZATION,
    "translation_en_to_de": {
        "early_stopping": True,
        "max_length": 300,
        "num_beams": 4,
        "prefix": "translate English to German: ",
    },
    "translation_en_to_fr": {
        "early_stopping": True,
        "max_length": 300,
        "num_beams": 4,
        "prefix": "translate English to French: ",
    },
    "translation_en_to_ro": {
        "early_stopping": True,
        "max_length": 300,
        "num_beams": 4,
        "prefix": "translate English to Romanian: ",
    },
}


# ============================================================================================
# Tokenizer
# ============================================================================================

def _protobuf_fields(buf: bytes, wanted: int) -> list[bytes]:
    """Length-delimited fields number `wanted` of a serialized protobuf message (minimal reader,
    enough to pull the normalizer out of a SentencePiece ModelProto without the protobuf package)."""

    def varint(i: int) -> tuple[int, int]:
        value, shift = 0, 0
        while True:
            byte = buf[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value, i

    out, i = [], 0
    while i < len(buf):
        key, i = varint(i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, i = varint(i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            length, i = varint(i)
            if number == wanted:
                out.append(buf[i : i + length])
            i += length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
    return out


def nmt_nfkc_charsmap() -> bytes:
    """SentencePiece's built-in `nmt_nfkc` normalisation table (NFKC plus whitespace/control-char
    folding), compiled. Real T5 tokenizer.json files carry exactly this kind of `Precompiled`
    normalizer, and transformers 5's T5Tokenizer only keeps a tokenizer.json normalizer if it is
    `Precompiled` (it rebuilds the rest of the pipeline itself), so the tiny tokenizer uses it too.
    The table does not depend on the training text; we train a throwaway model only to obtain it."""
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(training_corpus()),
        model_writer=model,
        vocab_size=300,
        model_type="unigram",
        normalization_rule_name="nmt_nfkc",
        minloglevel=2,
    )
    normalizer_spec = _protobuf_fields(model.getvalue(), 3)[0]  # ModelProto.normalizer_spec
    return _protobuf_fields(normalizer_spec, 2)[0]  # NormalizerSpec.precompiled_charsmap


def train_unigram_vocab(charsmap: bytes, vocab_size: int = 1500) -> list[tuple[str, float]]:
    """Train a SentencePiece-style Unigram model with the `tokenizers` library on our own texts.
    Returns [(piece, log-prob)] with <pad>=0, </s>=1, <unk>=2 first. (The small corpus makes the
    trainer stop at ~1000 pieces whatever vocab_size asks for.)"""
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Precompiled(charsmap)
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True),
        ]
    )
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "</s>", "<unk>"],
        unk_token="<unk>",
        show_progress=False,
    )
    tok.train_from_iterator(training_corpus(), trainer)
    vocab = [(piece, float(score)) for piece, score in json.loads(tok.to_str())["model"]["vocab"]]
    assert [p for p, _ in vocab[:3]] == ["<pad>", "</s>", "<unk>"], vocab[:3]
    return vocab


_TOKENIZER_CACHE: dict[str, Any] = {}

# tokenizers' UnigramTrainer is not bit-deterministic: the same corpus gives the same pieces but in a
# different order, with scores that differ by up to ~2e-3, from one process to the next (parallel
# sums and Rust's per-process HashMap seeds). So the trained vocabulary is frozen in this file and
# only retrained on request (--retrain-tokenizer); everything downstream of it is deterministic.
VOCAB_FILE = Path(__file__).resolve().parent / "tiny_unigram_vocab.json"


def trained_vocab(retrain: bool = False) -> list[tuple[str, float]]:
    if retrain or not VOCAB_FILE.exists():
        vocab = train_unigram_vocab(nmt_nfkc_charsmap())
        with open(VOCAB_FILE, "w", encoding="utf-8") as f:
            f.write("[\n")
            f.write(",\n".join(json.dumps([p, s], ensure_ascii=False) for p, s in vocab))
            f.write("\n]\n")
    return [(p, float(s)) for p, s in json.loads(VOCAB_FILE.read_text(encoding="utf-8"))]


def t5_vocab() -> tuple[list[tuple[str, float]], bytes]:
    """Trained vocab + T5's 100 sentinel tokens appended in T5's order (<extra_id_99> first, so
    <extra_id_0> has the highest id), and the normaliser table."""
    if "t5" not in _TOKENIZER_CACHE:
        charsmap = nmt_nfkc_charsmap()
        vocab = trained_vocab()
        vocab += [(f"<extra_id_{i}>", 0.0) for i in range(99, -1, -1)]
        _TOKENIZER_CACHE["t5"] = (vocab, charsmap)
    return _TOKENIZER_CACHE["t5"]


def save_t5_tokenizer(out_dir: Path) -> None:
    """Save the tiny T5 tokenizer through transformers' own T5Tokenizer so the files are exactly what
    transformers writes (tokenizer.json + tokenizer_config.json)."""
    vocab, charsmap = t5_vocab()
    tok = T5Tokenizer(
        vocab=vocab,
        extra_ids=100,
        _spm_precompiled_charsmap=charsmap,
        model_max_length=T5_WINDOW,
    )
    tok.save_pretrained(str(out_dir))


# ============================================================================================
# Models
# ============================================================================================

@dataclass
class ModelSpec:
    name: str
    reference: str  # the real checkpoint whose files these mimic
    config: dict  # written verbatim as config.json (keys like the reference's file)
    # written verbatim as generation_config.json; None: the checkpoint ships none (old BART repos)
    generation_config: dict | None
    build: Callable[["ModelSpec", int, Any], torch.nn.Module]
    save_tokenizer: Callable[[Path], None]
    seed: int
    confidence: dict  # see t5_confident_surgery / bart_fixtures.bart_confident_surgery
    # The settings the golden generate cases start from (greedy: its min/max length and
    # no_repeat_ngram_size; beam: all of it). For T5 and BART these are the checkpoint's
    # task_specific_params["summarization"].
    summarization: dict
    # Embedding rows for a tokenizer of n tokens.
    vocab_size_for: Callable[[int], int] = field(default_factory=lambda: model_vocab_size)
    state_dict_for_file: Callable[[torch.nn.Module, bool], dict] = field(
        default_factory=lambda: t5_state_dict_for_file
    )
    tokenization_strings: list[str] = field(default_factory=lambda: list(TOKENIZATION_STRINGS))
    # A second folder with the same model but only vocab.json + merges.txt (BART)
    vocab_merges_twin: str | None = None
    variant_texts: list[str] = field(default_factory=lambda: ["science", "accents", "weather"])
    batch_texts: list[str] = field(default_factory=lambda: ["short", "accents", "business"])
    logits_texts: list[str] = field(default_factory=lambda: ["accents", "science"])


def model_vocab_size(n_tokens: int) -> int:
    """Like t5-small (32100 tokenizer entries, 32128 embedding rows): round up to a multiple of 128,
    leaving at least 16 ids that have no token."""
    return ((n_tokens + 16 + 127) // 128) * 128


def t5_confident_surgery(model: T5ForConditionalGeneration, spec: ModelSpec, calib: list) -> None:
    """Turn transformers' stock random init into a model whose greedy/beam decisions are robust.

    With the stock init a random T5 mostly copies its input token (tied embeddings dominate the
    residual stream) or repeats one token, with top-1/top-2 logit margins ~0.1, so float noise
    between implementations could flip an argmax. We therefore:
      * scale attention `q` (all self/cross attentions) by confidence["q"]: sharper attention, so
        the decoder state depends on *which* positions it attends to. Without it cross-attention
        averages the whole input and every step gets nearly the same hidden direction (~25 distinct
        tokens per 200-token output); with it outputs are diverse and input-dependent.
      * scale the residual-branch output projections, attention `o` by confidence["o"] and FFN `wo` by
        confidence["wo"], so the branches (not the token embedding) dominate the residual stream;
      * boost EOS like a bias: the final decoder states share a common direction u (mean over a
        calibration set); adding confidence["eos"] * sqrt(d_model) * u to the EOS row of the output
        projection raises the EOS logit by a roughly constant amount, so generation ends with </s>
        after a few dozen steps in some cases but not all. (For the tied T5 v1.0 model this row is
        also the </s> input embedding the encoder sees; that is harmless.)
      * scale the final decoder layer norm so the logits have std `confidence["logit_std"]` (~6) on
        the calibration set, which gives median top-1/top-2 margins around 1.
    """
    c = spec.confidence
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith((".SelfAttention.q.weight", ".EncDecAttention.q.weight")):
                param.mul_(c["q"])
            elif name.endswith((".SelfAttention.o.weight", ".EncDecAttention.o.weight")):
                param.mul_(c["o"])
            elif name.endswith(".DenseReluDense.wo.weight"):
                param.mul_(c["wo"])

        def head_inputs() -> torch.Tensor:
            captured = []
            hook = model.lm_head.register_forward_hook(lambda mod, inp, out: captured.append(inp[0]))
            try:
                for input_ids, decoder_input_ids in calib:
                    model(input_ids=input_ids, decoder_input_ids=decoder_input_ids)
            finally:
                hook.remove()
            return torch.cat([x.reshape(-1, x.shape[-1]) for x in captured])

        h = head_inputs()
        u = h.mean(0)
        u = u / u.norm()
        eos = model.config.eos_token_id
        d_model = model.config.d_model
        model.lm_head.weight[eos] += c["eos"] * math.sqrt(d_model) * u

        logits = head_inputs() @ model.lm_head.weight.T
        model.decoder.final_layer_norm.weight.mul_(c["logit_std"] / logits.std().item())


def calibration_batches(tokenizer, decoder_start: int = 0) -> list:
    """Teacher-forcing inputs used to calibrate the surgery: encoder = one training paragraph,
    decoder = another paragraph's tokens (any plausible token sequence will do)."""
    batches = []
    for i in range(0, len(TRAINING_EXTRA) - 1, 2):
        enc = tokenizer(TRAINING_EXTRA[i], return_tensors="pt").input_ids
        dec = tokenizer(TRAINING_EXTRA[i + 1], return_tensors="pt").input_ids
        dec = torch.cat([torch.full((1, 1), decoder_start, dtype=torch.long), dec[:, :-1]], dim=1)
        batches.append((enc, dec))
    return batches


def build_t5(spec: ModelSpec, vocab_size: int, tokenizer) -> T5ForConditionalGeneration:
    cfg = dict(spec.config)
    cfg["vocab_size"] = vocab_size
    config = T5Config(**{k: v for k, v in cfg.items() if k not in ("architectures",)})
    torch.manual_seed(spec.seed)
    model = T5ForConditionalGeneration(config)
    if cfg.get("tie_word_embeddings", True) is False:
        # transformers 5 forces T5Config.tie_word_embeddings=True (and keeps the v1.1 behaviour via
        # `scale_decoder_outputs=False`), so T5ForConditionalGeneration starts with lm_head tied to
        # `shared`. FLAN-T5 checkpoints have a separate lm_head.weight; give ours its own tensor,
        # initialised like transformers does for an untied T5 head: N(0, initializer_factor).
        model.lm_head.weight = torch.nn.Parameter(
            torch.randn(vocab_size, config.d_model) * config.initializer_factor
        )
    model.eval()
    t5_confident_surgery(model, spec, calibration_batches(tokenizer))
    return model


def t5_state_dict_for_file(model: T5ForConditionalGeneration, tied: bool) -> dict[str, torch.Tensor]:
    """Tensors as a transformers checkpoint stores them: one copy of the embedding (`shared.weight`,
    not encoder/decoder.embed_tokens), and lm_head.weight only when it is not tied."""
    state = {}
    for name, tensor in model.state_dict().items():
        if name in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight"):
            continue
        if name == "lm_head.weight" and tied:
            continue
        state[name] = tensor.detach().to(torch.float32).contiguous().clone()
    return state


# The two tiny T5s. Dimensions are tiny; everything else (key names, values that are not sizes)
# follows the reference checkpoint's config.json. t5-small's file omits feed_forward_proj,
# relative_attention_max_distance, num_decoder_layers and tie_word_embeddings, so ours does too: a
# loader must apply the defaults (relu, 128, = num_layers, true).
SPECS: dict[str, ModelSpec] = {}

SPECS["t5-tiny"] = ModelSpec(
    name="t5-tiny",
    reference="google-t5/t5-small",
    config={
        "architectures": ["T5ForConditionalGeneration"],
        "d_ff": 128,
        "d_kv": 16,
        "d_model": 64,
        "decoder_start_token_id": 0,
        "dropout_rate": 0.1,
        "eos_token_id": 1,
        "initializer_factor": 1.0,
        "is_encoder_decoder": True,
        "layer_norm_epsilon": 1e-06,
        "model_type": "t5",
        "n_positions": 512,
        "num_heads": 4,
        "num_layers": 2,
        "output_past": True,
        "pad_token_id": 0,
        "relative_attention_num_buckets": 32,
        "task_specific_params": T5_TASK_SPECIFIC_PARAMS,
        "vocab_size": None,  # filled in from the tokenizer
    },
    generation_config={
        "_from_model_config": True,
        "decoder_start_token_id": 0,
        "eos_token_id": 1,
        "pad_token_id": 0,
        "transformers_version": "4.27.0.dev0",
    },
    build=build_t5,
    save_tokenizer=save_t5_tokenizer,
    seed=4,  # chosen with --search-seeds (see the README)
    confidence={"q": 8.0, "o": 8.0, "wo": 1.0, "eos": 0.75, "logit_std": 6.0},
    summarization=T5_SUMMARIZATION,
)

# FLAN-T5 (T5 v1.1): gated-gelu, untied lm_head, no d_model**-0.5 rescaling before the head, and
# like flan-t5-small (6 heads x 64 = 384 != d_model 512) an attention inner dim != d_model
# (3 x 16 = 48 != 64). num_decoder_layers (2) differs from num_layers (3) so loaders must read it.
# (The other way round, more decoder than encoder layers, breaks transformers 5.24's generate(): its
# decoder cache is sized by num_layers and raises IndexError.)
SPECS["flan-t5-tiny"] = ModelSpec(
    name="flan-t5-tiny",
    reference="google/flan-t5-small",
    config={
        "architectures": ["T5ForConditionalGeneration"],
        "d_ff": 128,
        "d_kv": 16,
        "d_model": 64,
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
        "num_decoder_layers": 2,
        "num_heads": 3,
        "num_layers": 3,
        "output_past": True,
        "pad_token_id": 0,
        "relative_attention_max_distance": 128,
        "relative_attention_num_buckets": 32,
        "task_specific_params": T5_TASK_SPECIFIC_PARAMS,
        "tie_word_embeddings": False,
        "transformers_version": "4.23.1",
        "use_cache": True,
        "vocab_size": None,
    },
    generation_config={
        "decoder_start_token_id": 0,
        "eos_token_id": 1,
        "pad_token_id": 0,
        "transformers_version": "4.27.0.dev0",
    },
    build=build_t5,
    save_tokenizer=save_t5_tokenizer,
    seed=0,  # chosen with --search-seeds (see the README)
    confidence={"q": 8.0, "o": 8.0, "wo": 1.0, "eos": 1.0, "logit_std": 6.0},
    summarization=T5_SUMMARIZATION,
)


# ============================================================================================
# BART, DistilBART and Pegasus (tokenizers, surgery and file layout in bart_fixtures.py)
# ============================================================================================

def build_bart(spec: ModelSpec, vocab_size: int, tokenizer) -> torch.nn.Module:
    calib = calibration_batches(tokenizer, spec.config["decoder_start_token_id"])
    return bf.build_bart_family(spec, vocab_size, tokenizer, calib)


def save_pegasus_tokenizer(out_dir: Path) -> None:
    bf.save_pegasus_tokenizer(out_dir, trained_vocab(), nmt_nfkc_charsmap())


def bart_vocab_size(n_tokens: int) -> int:
    """Like facebook/bart-large-cnn (50265 tokenizer entries, vocab_size 50264): `<mask>`, the
    last token, has no embedding row. Summaries never contain it."""
    return n_tokens - 1


# facebook/bart-large-cnn's summarization settings (config.json top level, task_specific_params
# and generation_config.json all say the same).
BART_CNN_SUMMARIZATION = {
    "early_stopping": True,
    "length_penalty": 2.0,
    "max_length": 142,
    "min_length": 56,
    "no_repeat_ngram_size": 3,
    "num_beams": 4,
}
BART_LABELS = {
    "id2label": {"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2"},
    "label2id": {"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2},
}
# Residual-branch scales etc. (see bart_fixtures.bart_confident_surgery). "enc" is the encoder's
# layers, "dec" the decoder's self-attention and feed-forward, "cross" its encoder attention.
BART_CONFIDENCE = {
    "embed_std": 0.125,
    "q_enc": 2.0, "o_enc": 0.5, "fc2_enc": 0.5,
    "q_dec": 2.0, "o_dec": 0.5, "fc2_dec": 0.5,
    "q_cross": 6.0, "o_cross": 3.0,
    "logit_std": 8.0, "bias_std": 0.5, "eos": 9.0,
}
# The golden generate cases use bart-large-cnn's settings with half its lengths (each case decodes
# up to 71 tokens, not 142), to keep regeneration quick; config.json and the pipeline section keep
# the real 56/142.
BART_CASE_SETTINGS = {**BART_CNN_SUMMARIZATION, "min_length": 28, "max_length": 71}
BART_FAMILY = {
    "state_dict_for_file": bf.bart_state_dict_for_file,
    "tokenization_strings": TOKENIZATION_STRINGS + MULTILINGUAL_STRINGS,
}

# facebook/bart-large-cnn in miniature: 12/12 layers -> 2/2, d_model 1024 -> 64, same keys,
# generation settings both in config.json (top level and task_specific_params) and in
# generation_config.json, forced BOS <s> after the </s> decoder start, forced EOS at max_length.
SPECS["bart-tiny"] = ModelSpec(
    name="bart-tiny",
    reference="facebook/bart-large-cnn",
    config={
        "_num_labels": 3,
        "activation_dropout": 0.0,
        "activation_function": "gelu",
        "add_final_layer_norm": False,
        "architectures": ["BartForConditionalGeneration"],
        "attention_dropout": 0.0,
        "bos_token_id": 0,
        "classif_dropout": 0.0,
        "classifier_dropout": 0.0,
        "d_model": 64,
        "decoder_attention_heads": 4,
        "decoder_ffn_dim": 128,
        "decoder_layerdrop": 0.0,
        "decoder_layers": 2,
        "decoder_start_token_id": 2,
        "dropout": 0.1,
        "encoder_attention_heads": 4,
        "encoder_ffn_dim": 128,
        "encoder_layerdrop": 0.0,
        "encoder_layers": 2,
        "eos_token_id": 2,
        "force_bos_token_to_be_generated": True,
        "forced_bos_token_id": 0,
        "forced_eos_token_id": 2,
        "gradient_checkpointing": False,
        "init_std": 0.02,
        "is_encoder_decoder": True,
        "max_position_embeddings": 1024,
        "model_type": "bart",
        "normalize_before": False,
        "num_hidden_layers": 2,
        "output_past": True,
        "pad_token_id": 1,
        "scale_embedding": False,
        "task_specific_params": {"summarization": BART_CNN_SUMMARIZATION},
        "transformers_version": "4.7.0.dev0",
        "use_cache": True,
        "vocab_size": None,
        **BART_CNN_SUMMARIZATION,
        **BART_LABELS,
    },
    generation_config={
        "_from_model_config": True,
        "bos_token_id": 0,
        "decoder_start_token_id": 2,
        "eos_token_id": 2,
        "forced_bos_token_id": 0,
        "forced_eos_token_id": 2,
        "pad_token_id": 1,
        "transformers_version": "4.27.0.dev0",
        **BART_CNN_SUMMARIZATION,
    },
    build=build_bart,
    save_tokenizer=bf.save_bart_tokenizer,
    seed=0,
    confidence=BART_CONFIDENCE,
    summarization=BART_CASE_SETTINGS,
    vocab_size_for=bart_vocab_size,
    vocab_merges_twin="bart-tiny-vocab-merges",
    **BART_FAMILY,
)

# sshleifer/distilbart-cnn-12-6 in miniature: more encoder than decoder layers (12/6 -> 4/2), a
# narrower model than bart-tiny (d_model 48, head_dim 12), and the checkpoint's old-style config:
# no generation_config.json, generation settings at the top level of config.json, prefix " ",
# no forced_bos_token_id / forced_eos_token_id but `force_bos_token_to_be_generated: true`, which
# transformers 4.57's BartConfig turned into forced_bos_token_id=0 (its class default supplied
# forced_eos_token_id=2). transformers 5.24's GenerationConfig still converts the flag but has no
# class default, so the golden *generate* cases (plain 5.24 generate()) force BOS but not EOS,
# while the *pipeline* section (4.57 semantics) forces both.
SPECS["distilbart-tiny"] = ModelSpec(
    name="distilbart-tiny",
    reference="sshleifer/distilbart-cnn-12-6",
    config={
        "_num_labels": 3,
        "activation_dropout": 0.0,
        "activation_function": "gelu",
        "add_bias_logits": False,
        "add_final_layer_norm": False,
        "architectures": ["BartForConditionalGeneration"],
        "attention_dropout": 0.0,
        "bos_token_id": 0,
        "classif_dropout": 0.0,
        "d_model": 48,
        "decoder_attention_heads": 4,
        "decoder_ffn_dim": 96,
        "decoder_layerdrop": 0.0,
        "decoder_layers": 2,
        "decoder_start_token_id": 2,
        "dropout": 0.1,
        "encoder_attention_heads": 4,
        "encoder_ffn_dim": 96,
        "encoder_layerdrop": 0.0,
        "encoder_layers": 4,
        "eos_token_id": 2,
        "extra_pos_embeddings": 2,
        "force_bos_token_to_be_generated": True,
        "init_std": 0.02,
        "is_encoder_decoder": True,
        "max_position_embeddings": 1024,
        "model_type": "bart",
        "normalize_before": False,
        "normalize_embedding": True,
        "num_hidden_layers": 4,
        "output_past": True,
        "pad_token_id": 1,
        "prefix": " ",
        "replacing_rate": 0,
        "scale_embedding": False,
        "static_position_embeddings": False,
        "student_decoder_layers": None,
        "student_encoder_layers": None,
        "task_specific_params": {"summarization": BART_CNN_SUMMARIZATION},
        "vocab_size": None,
        **BART_CNN_SUMMARIZATION,
        **BART_LABELS,
    },
    generation_config=None,
    build=build_bart,
    save_tokenizer=bf.save_bart_tokenizer,
    seed=0,
    confidence=BART_CONFIDENCE,
    summarization=BART_CASE_SETTINGS,
    vocab_size_for=bart_vocab_size,
    variant_texts=["weather", "science", "accents"],
    batch_texts=["weather", "short", "history"],
    logits_texts=["science", "short"],
    **BART_FAMILY,
)

# summarization_* entries like those of google/pegasus-* config.json files (a subset): none is
# plain "summarization", so the pipeline applies none of them.
PEGASUS_TASKS = {
    f"summarization_{name}": {"length_penalty": lp, "max_length": ml, "max_position_embeddings": mp}
    for name, lp, ml, mp in [
        ("aeslc", 0.6, 32, 512),
        ("cnn_dailymail", 0.8, 128, 1024),
        ("gigaword", 0.6, 32, 128),
        ("xsum", 0.6, 64, 512),
    ]
}

# google/pegasus-cnn_dailymail in miniature (its 1024-token window; pegasus-xsum's 512 would cut
# the longest golden text): pre-norm layers with final stack norms, sinusoidal positions (not
# stored in the weights file), scale_embedding, relu, pad = decoder start = 0, eos = forced eos = 1,
# and its generation_config.json (num_beams 8, which the pipeline's 4 beams override).
SPECS["pegasus-tiny"] = ModelSpec(
    name="pegasus-tiny",
    reference="google/pegasus-cnn_dailymail",
    config={
        "activation_dropout": 0.1,
        "activation_function": "relu",
        "add_bias_logits": False,
        "add_final_layer_norm": True,
        "architectures": ["PegasusForConditionalGeneration"],
        "attention_dropout": 0.1,
        "classif_dropout": 0.0,
        "classifier_dropout": 0.0,
        "d_model": 64,
        "decoder_attention_heads": 4,
        "decoder_ffn_dim": 128,
        "decoder_layerdrop": 0.0,
        "decoder_layers": 2,
        "decoder_start_token_id": 0,
        "dropout": 0.1,
        "encoder_attention_heads": 4,
        "encoder_ffn_dim": 128,
        "encoder_layerdrop": 0.0,
        "encoder_layers": 2,
        "eos_token_id": 1,
        "extra_pos_embeddings": 1,
        "force_bos_token_to_be_generated": False,
        "forced_eos_token_id": 1,
        "gradient_checkpointing": False,
        "init_std": 0.02,
        "is_encoder_decoder": True,
        "length_penalty": 0.8,
        "max_length": 128,
        "max_position_embeddings": 1024,
        "model_type": "pegasus",
        "normalize_before": True,
        "normalize_embedding": False,
        "num_beams": 8,
        "num_hidden_layers": 2,
        "pad_token_id": 0,
        "scale_embedding": True,
        "static_position_embeddings": True,
        "task_specific_params": PEGASUS_TASKS,
        "use_cache": True,
        "vocab_size": None,
        **BART_LABELS,
    },
    generation_config={
        "decoder_start_token_id": 0,
        "eos_token_id": 1,
        "forced_eos_token_id": 1,
        "length_penalty": 0.8,
        "max_length": 128,
        "num_beams": 8,
        "pad_token_id": 0,
        "transformers_version": "4.27.0.dev0",
    },
    build=build_bart,
    save_tokenizer=save_pegasus_tokenizer,
    seed=0,
    confidence={
        "embed_std": 0.125,
        "q_enc": 2.0, "o_enc": 0.5, "fc2_enc": 0.5,
        "q_dec": 3.0, "o_dec": 10.0, "fc2_dec": 10.0,
        "q_cross": 8.0, "o_cross": 30.0,
        "logit_std": 8.0, "bias_std": 0.5, "eos": 9.0,
    },
    # generate cases: the checkpoint's beams and length penalty, a shorter cap, a minimum length
    summarization={
        "early_stopping": True,
        "length_penalty": 0.8,
        "max_length": 96,
        "min_length": 16,
        "no_repeat_ngram_size": 3,
        "num_beams": 8,
    },
    vocab_size_for=lambda n: n,  # 96103 = 96000 SentencePiece pieces + 103, one row each
    **BART_FAMILY,
)


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True, ensure_ascii=False)
        f.write("\n")


def write_model_dir(spec: ModelSpec, out_dir: Path) -> None:
    """Create tokenizer, model and config files for one spec in out_dir."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    spec.save_tokenizer(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(out_dir))
    vocab_size = spec.vocab_size_for(len(tokenizer))
    model = spec.build(spec, vocab_size, tokenizer)
    tied = spec.config.get("tie_word_embeddings", True) is not False
    state = spec.state_dict_for_file(model, tied)
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    cfg = dict(spec.config)
    cfg["vocab_size"] = vocab_size
    write_json(out_dir / "config.json", cfg)
    if spec.generation_config is not None:
        write_json(out_dir / "generation_config.json", spec.generation_config)

    # Round trip: the folder must load in transformers to exactly the tensors we built.
    reloaded = AutoModelForSeq2SeqLM.from_pretrained(str(out_dir)).eval()
    ours = model.state_dict()
    for name, tensor in reloaded.state_dict().items():
        if not torch.equal(tensor, ours[name]):
            raise SystemExit(f"{spec.name}: {name} differs after reload")
    head, embedding = reloaded.get_output_embeddings().weight, reloaded.get_input_embeddings().weight
    same_head = head.data_ptr() == embedding.data_ptr()
    if same_head != tied:
        raise SystemExit(f"{spec.name}: lm_head tying after reload is {same_head}, expected {tied}")
    if reloaded.config.model_type == "t5" and reloaded.config.scale_decoder_outputs != tied:
        raise SystemExit(f"{spec.name}: scale_decoder_outputs={reloaded.config.scale_decoder_outputs}")
    if spec.vocab_merges_twin:
        bf.write_vocab_merges_twin(out_dir, out_dir.parent / spec.vocab_merges_twin)


def make(spec: ModelSpec, out_root: Path) -> dict:
    model_dir = out_root / spec.name
    write_model_dir(spec, model_dir)
    g = Golden(spec, model_dir)
    golden = g.build()
    return {"golden": golden, "quality": quality(golden, g.eos), "report": g.report, "model_dir": model_dir}


def describe(q: dict) -> str:
    def num(x):
        return "none" if x is None else f"{x:.2e}"

    return (
        f"min margins: greedy {num(q['greedy_min_margin'])}, beam {num(q['beam_min_margin'])}, "
        f"pipeline {num(q['pipeline_min_margin'])}; largest float64 gap {num(q['largest_float64_gap'])}"
    )


def rel(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", choices=sorted(SPECS), help="build only these models")
    ap.add_argument("--out", type=Path, default=FIXTURES, help="fixtures root (default tests/fixtures)")
    ap.add_argument("--search-seeds", type=int, default=0, metavar="N", help="try seeds 0..N-1 and report")
    ap.add_argument("--retrain-tokenizer", action="store_true", help=f"retrain {VOCAB_FILE.name} first")
    ap.add_argument("--check", action="store_true", help="rebuild in a temp dir and compare with --out")
    ap.add_argument("--seed", type=int, help="use this seed instead of the spec's (to try one)")
    ap.add_argument(
        "--numeric-only",
        action="store_true",
        help="rewrite only the encoder and logits sections of the golden files, from the model folders under --out",
    )
    args = ap.parse_args()
    if args.seed is not None:
        for name in args.only or list(SPECS):
            SPECS[name].seed = args.seed
    if args.retrain_tokenizer:
        trained_vocab(retrain=True)
    names = args.only or list(SPECS)

    if args.numeric_only:
        for name in names:
            path = args.out / "golden" / f"{name}.json"
            golden = json.loads(path.read_text(encoding="utf-8"))
            g = Golden(SPECS[name], args.out / name)
            golden["encoder"], golden["logits"] = g.encoder(), g.logits()
            write_json(path, golden)
            print(f"[{name}] rewrote the encoder and logits sections of {rel(path)}")
        return

    if args.search_seeds:
        for name in names:
            for seed in range(args.search_seeds):
                spec = copy.deepcopy(SPECS[name])
                spec.seed = seed
                with tempfile.TemporaryDirectory() as tmp:
                    r = make(spec, Path(tmp))
                q = r["quality"]
                print(f"{name} seed={seed}: {describe(q)}, {len(r['report'])} report lines", flush=True)
        return

    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            for name in names:
                r = make(SPECS[name], tmp)
                write_json(tmp / "golden" / f"{name}.json", r["golden"])
            differ = []
            for name in names:
                folders = [name] + ([SPECS[name].vocab_merges_twin] if SPECS[name].vocab_merges_twin else [])
                paths = [p for folder in folders for p in sorted((tmp / folder).iterdir())]
                for path in paths + [tmp / "golden" / f"{name}.json"]:
                    committed = args.out / path.relative_to(tmp)
                    if not committed.exists() or committed.read_bytes() != path.read_bytes():
                        differ.append(str(committed))
            print("identical" if not differ else f"differ: {differ}")
            raise SystemExit(1 if differ else 0)

    for name in names:
        spec = SPECS[name]
        r = make(spec, args.out)
        q = r["quality"]
        golden = r["golden"]
        for line in r["report"]:
            print(f"[{name}] {line}")
        print(f"[{name}] {describe(q)}")
        print(f"[{name}] cases ending with EOS before the length cap: {q['eos_before_max']}")
        print(f"[{name}] pipeline: {golden['pipeline']['transformers_pipeline_error']}")
        if len(q["eos_before_max"]) < 3:
            raise SystemExit(f"{name} (seed {spec.seed}): fewer than 3 generate cases end with EOS before the cap")
        write_json(args.out / "golden" / f"{name}.json", golden)
        twin = f" (and its twin {spec.vocab_merges_twin})" if spec.vocab_merges_twin else ""
        print(f"[{name}] wrote {rel(r['model_dir'])}{twin} and {rel(args.out / 'golden' / (name + '.json'))}")


if __name__ == "__main__":
    main()
