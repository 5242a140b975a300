"""transformers 4.57's summarization pipeline settings, which the golden `pipeline` sections
emulate with transformers 5's generate() (used by golden_outputs.py, and by
check_legacy_pipeline.py, which runs under transformers 4 and therefore imports nothing of
transformers from here)."""

from __future__ import annotations

import json
from pathlib import Path

# Legacy summarization pipeline (transformers <= 4.57, removed in 5.x: see `Golden.pipeline`).
# Its generation config: the pipeline default GenerationConfig(max_new_tokens=256, num_beams=4),
# merged with the model's generation config, then task_specific_params["summarization"] applied on
# top (without "prefix", which became the text prefix); see `legacy_pipeline_settings`. Verified by
# scripts/check_legacy_pipeline.py.
LEGACY_PIPELINE_DEFAULTS = {"max_new_tokens": 256, "num_beams": 4}
DECODE_KWARGS = {"skip_special_tokens": True, "clean_up_tokenization_spaces": False}

# GenerationConfig() defaults of the parameters the pipeline emulation tracks.
GLOBAL_GENERATION_DEFAULTS = {
    "early_stopping": False,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    "length_penalty": 1.0,
    "max_length": 20,
    "max_new_tokens": None,
    "min_length": 0,
    "no_repeat_ngram_size": 0,
    "num_beams": 1,
    "repetition_penalty": 1.0,
}

# transformers 4.57 config-class defaults that end up in the generation config of a checkpoint
# without generation_config.json (GenerationConfig.from_model_config reads every attribute of the
# model config, class defaults included): BartConfig(forced_eos_token_id=2),
# PegasusConfig(forced_eos_token_id=1). transformers 5 builds that generation config from the keys
# of config.json only (plus the force_bos_token_to_be_generated conversion).
LEGACY_CONFIG_CLASS_DEFAULTS = {
    "t5": {},
    "bart": {"bos_token_id": 0, "forced_eos_token_id": 2},
    "pegasus": {"forced_eos_token_id": 1},
}

T5_WINDOW = 512  # n_positions / tokenizer model_max_length of t5-small


def legacy_model_generation_config(model_dir: Path) -> dict:
    """The model's generation config as transformers 4.57 loaded it: generation_config.json when
    the checkpoint has one, else built from the model config, class defaults included. 4.57's
    BartConfig also turned the old `force_bos_token_to_be_generated: true` of the CNN checkpoints
    (sshleifer/distilbart-cnn-*) into forced_bos_token_id = bos_token_id (5.24's GenerationConfig
    still does that, but drops the class defaults)."""
    generation_file = model_dir / "generation_config.json"
    if generation_file.exists():
        return json.loads(generation_file.read_text(encoding="utf-8"))
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    model_type = config["model_type"]
    settings = {**LEGACY_CONFIG_CLASS_DEFAULTS[model_type], **{k: v for k, v in config.items() if v is not None}}
    if model_type == "bart" and settings.get("forced_bos_token_id") is None:
        if config.get("force_bos_token_to_be_generated", False):
            settings["forced_bos_token_id"] = settings["bos_token_id"]
    return settings


def legacy_pipeline_settings(model_dir: Path) -> tuple[str, dict]:
    """(prefix, generate() parameters) of transformers 4.57's summarization pipeline for the
    checkpoint in model_dir (4.57 pipelines/base.py, Pipeline.__init__):
      1. `_prepare_generation_config(GenerationConfig(max_new_tokens=256, num_beams=4),
         use_model_defaults=True)`: a model value replaces a pipeline value only where the pipeline's
         is still the global default (so num_beams stays 4 whatever the model says);
      2. max_new_tokens=256 is dropped when the result has a max_length other than 20;
      3. task_specific_params["summarization"] is applied on top; its "prefix" (else config.prefix)
         becomes the text prefix."""
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    model = legacy_model_generation_config(model_dir)
    effective = dict(LEGACY_PIPELINE_DEFAULTS)
    for key, default in GLOBAL_GENERATION_DEFAULTS.items():
        value = model.get(key)
        if value is not None and value != default and effective.get(key, default) == default:
            effective[key] = value
    if effective.get("max_new_tokens") == LEGACY_PIPELINE_DEFAULTS["max_new_tokens"]:
        if effective.get("max_length", GLOBAL_GENERATION_DEFAULTS["max_length"]) != 20:
            del effective["max_new_tokens"]
    task = dict((config.get("task_specific_params") or {}).get("summarization", {}))
    prefix = task.pop("prefix") if "prefix" in task else (config.get("prefix") or "")
    effective.update(task)
    return prefix, effective


def model_window(model_dir: Path) -> int:
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    return config.get("max_position_embeddings") or config.get("n_positions") or T5_WINDOW
