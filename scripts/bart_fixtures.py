"""BART, DistilBART and Pegasus parts of the fixture builder (used by make_fixtures.py).

* Tokenizers: a byte-level BPE trained on fixture_texts.py for BART (BART's special ids, `<mask>`
  last, RobertaProcessing), its vocab.json + merges.txt twin as older BART repos ship it, and a
  Pegasus-layout Unigram (`<pad>`=0 `</s>`=1 `<mask_1>` `<mask_2>` `<unk_2>`..`<unk_102>`, then
  the frozen tiny Unigram vocabulary) saved through transformers' own PegasusTokenizer.
* Models: random BartForConditionalGeneration / PegasusForConditionalGeneration made "confident"
  (see `bart_confident_surgery`), and the tensors a checkpoint file holds.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch
from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, trainers
from transformers import (
    AutoConfig,
    AutoModelForSeq2SeqLM,
    PegasusTokenizer,
    RobertaTokenizer,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixture_texts import training_corpus  # noqa: E402

# Byte-level BPE size: 256 byte symbols + 4 special tokens + 740 merges. <mask> comes on top.
BPE_VOCAB_SIZE = 1000
BART_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
BART_WINDOW = 1024  # tokenizer model_max_length of facebook/bart-large-cnn and distilbart-cnn-12-6
PEGASUS_OFFSET = 103  # PegasusTokenizer's offset: ids 2..104 are <mask_1>, <mask_2>, <unk_2>..<unk_102>

_CACHE: dict = {}


# ============================================================================================
# Tokenizers
# ============================================================================================

def byte_level_bpe() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train a RoBERTa/BART-style byte-level BPE on our own texts: vocabulary (with `<mask>`
    appended last, as in BART's vocab.json) and merges.

    Unlike the Unigram trainer, tokenizers' BpeTrainer is deterministic here (the same vocabulary
    and merges from separate processes: pair counts are ties-broken by token ids), so nothing is
    frozen; `make_fixtures.py --check` would catch a change."""
    if "bpe" not in _CACHE:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        trainer = trainers.BpeTrainer(
            vocab_size=BPE_VOCAB_SIZE,
            min_frequency=2,
            special_tokens=BART_SPECIALS,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(training_corpus(), trainer)
        model = json.loads(tok.to_str())["model"]
        vocab = dict(model["vocab"])
        assert [vocab[s] for s in BART_SPECIALS] == [0, 1, 2, 3], vocab
        vocab["<mask>"] = len(vocab)
        merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
        _CACHE["bpe"] = (vocab, merges)
    return _CACHE["bpe"]


def mask_token() -> AddedToken:
    """BART's `<mask>` swallows the space before it (lstrip), as in bart-large's tokenizer.json."""
    return AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True)


def save_bart_tokenizer(out_dir: Path) -> None:
    """tokenizer.json + tokenizer_config.json written by transformers' own BartTokenizer (an alias
    of RobertaTokenizer in transformers 5). tokenizer_config.json names BartTokenizer and sets
    clean_up_tokenization_spaces like facebook/bart-large-cnn's; note that the summarization
    pipeline decodes with clean_up_tokenization_spaces=False whatever the tokenizer says."""
    vocab, merges = byte_level_bpe()
    tok = RobertaTokenizer(
        vocab=dict(vocab), merges=list(merges), mask_token=mask_token(), model_max_length=BART_WINDOW
    )
    tok.save_pretrained(str(out_dir))
    path = out_dir / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "BartTokenizer"
    config["clean_up_tokenization_spaces"] = True
    write_json(path, config)


def write_vocab_merges_twin(src: Path, dst: Path) -> None:
    """The same model as `src` with the tokenizer as older BART repos (e.g. sshleifer/distilbart-*)
    ship it: vocab.json + merges.txt + special_tokens_map.json + a small tokenizer_config.json, no
    tokenizer.json. Loaders must build RoBERTa's byte-level BPE pipeline themselves."""
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for name in ("config.json", "generation_config.json", "model.safetensors"):
        if (src / name).exists():
            shutil.copyfile(src / name, dst / name)
    vocab, merges = byte_level_bpe()
    with open(dst / "vocab.json", "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(dst / "merges.txt", "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        f.writelines(f"{a} {b}\n" for a, b in merges)
    src_config = json.loads((src / "tokenizer_config.json").read_text(encoding="utf-8"))
    write_json(
        dst / "tokenizer_config.json",
        {
            "clean_up_tokenization_spaces": src_config["clean_up_tokenization_spaces"],
            "model_max_length": BART_WINDOW,
        },
    )
    write_json(
        dst / "special_tokens_map.json",
        {
            "bos_token": "<s>",
            "cls_token": "<s>",
            "eos_token": "</s>",
            "mask_token": {"content": "<mask>", "lstrip": True, "normalized": False, "rstrip": False, "single_word": False},
            "pad_token": "<pad>",
            "sep_token": "</s>",
            "unk_token": "<unk>",
        },
    )


def pegasus_vocab(unigram: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """google/pegasus-*'s layout over our Unigram pieces: `<pad>`, `</s>`, `<mask_1>`, `<mask_2>`,
    `<unk_2>`..`<unk_102>` (score -100, as transformers' PegasusConverter writes them), then the
    SentencePiece pieces from `<unk>` on (so `<unk>` is id 105, as in the real vocabulary)."""
    assert [p for p, _ in unigram[:3]] == ["<pad>", "</s>", "<unk>"] and unigram[2][1] == 0.0
    head = [("<pad>", 0.0), ("</s>", 0.0), ("<mask_1>", 0.0), ("<mask_2>", 0.0)]
    head += [(f"<unk_{i}>", -100.0) for i in range(2, PEGASUS_OFFSET)]
    return head + list(unigram[2:])


def save_pegasus_tokenizer(out_dir: Path, unigram: list[tuple[str, float]], charsmap: bytes) -> None:
    """Saved through transformers' PegasusTokenizer: nmt_nfkc `Precompiled` normaliser plus its
    collapse of space runs, Metaspace pre-tokenizer/decoder, `$A </s>` post-processor."""
    tok = PegasusTokenizer(
        vocab=pegasus_vocab(unigram),
        _spm_precompiled_charsmap=charsmap,
        offset=PEGASUS_OFFSET,
        model_max_length=BART_WINDOW,
    )
    tok.save_pretrained(str(out_dir))


# ============================================================================================
# Models
# ============================================================================================

def bart_confident_surgery(model, confidence: dict, calib: list) -> None:
    """Make a stock-initialised BART/Pegasus decide robustly (the BART-family analogue of
    make_fixtures.t5_confident_surgery).

    transformers initialises every weight with N(0, init_std=0.02): attention is then almost
    uniform, the residual branches are tiny next to the (normalised) embeddings, and the logits
    have std ~0.2, so top-1/top-2 margins are at float-noise level. We therefore:
      * scale every attention `q_proj` by confidence["q"]: sharper attention, so outputs depend on
        which input positions are attended to (diverse, input-dependent summaries);
      * scale the residual-branch output projections, attention `out_proj` by confidence["o"] and
        feed-forward `fc2` by confidence["fc2"], so the branches dominate the residual stream;
      * centre the norm that feeds the LM head (BART: the last decoder layer's final_layer_norm;
        Pegasus: decoder.layer_norm): subtract the mean of its outputs over the calibration set
        from its bias. Random feed-forwards (relu above all) leave a direction common to every
        decoder state, which would give a few tokens a large constant logit and make every
        summary repeat them; then scale its weight and bias so the logits have std
        confidence["logit_std"];
      * fill `final_logits_bias` (zeros in real checkpoints, but a buffer every checkpoint saves)
        with N(0, confidence["bias_std"]) so loaders must really add it, and raise its EOS entry by
        confidence["eos"] logits: a modest boost that makes some generations end with EOS well
        before the length cap and others run to it."""
    c = confidence
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear) and module is not model.lm_head:
                module.weight.normal_(0.0, module.in_features**-0.5)
        model.model.shared.weight.normal_(0.0, c["embed_std"])
        for name, param in model.named_parameters():
            if name.startswith("model.encoder."):
                part = "enc"
            else:
                part = "cross" if ".encoder_attn." in name else "dec"
            if name.endswith("q_proj.weight"):
                param.mul_(c[f"q_{part}"])
            elif name.endswith("out_proj.weight"):
                param.mul_(c[f"o_{part}"])
            elif name.endswith("fc2.weight"):
                param.mul_(c[f"fc2_{part}"])

        def head_inputs() -> torch.Tensor:
            captured = []
            hook = model.lm_head.register_forward_hook(lambda mod, inp, out: captured.append(inp[0]))
            try:
                for input_ids, decoder_input_ids in calib:
                    model(input_ids=input_ids, decoder_input_ids=decoder_input_ids)
            finally:
                hook.remove()
            return torch.cat([x.reshape(-1, x.shape[-1]) for x in captured])

        if model.config.model_type == "pegasus":
            head_norm = model.model.decoder.layer_norm
        else:
            head_norm = model.model.decoder.layers[-1].final_layer_norm
        head_norm.bias.sub_(head_inputs().mean(0))
        logits = head_inputs() @ model.lm_head.weight.T
        scale = c["logit_std"] / logits.std().item()
        head_norm.weight.mul_(scale)
        head_norm.bias.mul_(scale)
        bias = torch.randn(model.final_logits_bias.shape) * c["bias_std"]
        bias[0, model.config.eos_token_id] += c["eos"]
        model.final_logits_bias.copy_(bias)


def build_bart_family(spec, vocab_size: int, tokenizer, calib: list):
    """A random BART/Pegasus of `spec.config` (read the way from_pretrained reads config.json),
    seeded by spec.seed, made confident."""
    cfg = {k: v for k, v in spec.config.items() if k != "architectures"}
    cfg["vocab_size"] = vocab_size
    config = AutoConfig.for_model(**cfg)
    torch.manual_seed(spec.seed)
    model = AutoModelForSeq2SeqLM.from_config(config)
    model.eval()
    bart_confident_surgery(model, spec.confidence, calib)
    return model


def bart_state_dict_for_file(model, tied: bool) -> dict[str, torch.Tensor]:
    """Tensors as BART/Pegasus checkpoints store them: the token embedding once
    (`model.shared.weight`; the encoder/decoder copies and the tied lm_head are not saved),
    `final_logits_bias`, and for Pegasus no `embed_positions` (the sinusoid tables are rebuilt on
    load, as with google/pegasus-*)."""
    skip = {"model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight"}
    if tied:
        skip.add("lm_head.weight")
    state = {}
    for name, tensor in model.state_dict().items():
        if name in skip:
            continue
        if model.config.model_type == "pegasus" and name.endswith("embed_positions.weight"):
            continue
        state[name] = tensor.detach().to(torch.float32).contiguous().clone()
    return state


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True, ensure_ascii=False)
        f.write("\n")
