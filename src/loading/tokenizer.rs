//! Turns a model's tokenizer files into a `tokenizers::Tokenizer`.
//!
//! Checkpoints that ship only `vocab.json` + `merges.txt` (older BART/DistilBART repos) get the
//! tokenizer transformers builds for them (`RobertaTokenizer` in transformers 5.24,
//! models/roberta/tokenization_roberta.py): byte-level BPE, no prefix space, and
//! `<s> … </s>` around every input.

use std::path::Path;

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::roberta::RobertaProcessing;
use tokenizers::{AddedToken, Tokenizer};

use super::files::{JsonFile, ModelFiles, TokenizerFiles};
use super::sentencepiece::{SpmLayout, spm_tokenizer};
use crate::error::{Error, Result};

const BOS: &str = "<s>";
const EOS: &str = "</s>";

/// Loads the tokenizer `files` point at; errors name the file that could not be used.
pub fn load_tokenizer(files: &ModelFiles) -> Result<Tokenizer> {
    match &files.tokenizer {
        TokenizerFiles::Json(path) => {
            Tokenizer::from_file(path).map_err(|source| Error::TokenizerFile {
                path: path.clone(),
                source,
            })
        }
        TokenizerFiles::VocabMerges { vocab, merges } => byte_level_bpe(vocab, merges),
        TokenizerFiles::SentencePiece {
            model,
            tokenizer_config,
        } => {
            let layout = spm_layout(files, model, tokenizer_config.as_deref())?;
            spm_tokenizer(model, layout)
        }
    }
}

/// Which id layout a SentencePiece model gets: the architecture's (config.json `model_type`),
/// with `extra_ids` / `offset` from tokenizer_config.json when it sets them.
fn spm_layout(
    files: &ModelFiles,
    model: &Path,
    tokenizer_config: Option<&Path>,
) -> Result<SpmLayout> {
    let settings = match tokenizer_config {
        Some(path) => JsonFile::read(path)?.json,
        None => serde_json::Value::Null,
    };
    let setting = |key: &str, default: usize| {
        settings
            .get(key)
            .and_then(serde_json::Value::as_u64)
            .map_or(default, |v| v as usize)
    };
    match files.config.json.get("model_type").and_then(|t| t.as_str()) {
        Some("t5" | "mt5") => Ok(SpmLayout::T5 {
            extra_ids: setting("extra_ids", 100),
        }),
        Some("pegasus") => Ok(SpmLayout::Pegasus {
            offset: setting("offset", 103),
        }),
        other => Err(Error::InvalidFile {
            path: model.to_path_buf(),
            problem: format!(
                "is a SentencePiece model, which precis can turn into a tokenizer for T5 and \
                 Pegasus checkpoints only, and {} says model_type {}; add the model's \
                 tokenizer.json",
                files.config.path.display(),
                other.map_or("(none)".to_string(), |t| format!("'{t}'"))
            ),
        }),
    }
}

/// RoBERTa/BART byte-level BPE from its two files.
fn byte_level_bpe(vocab: &Path, merges: &Path) -> Result<Tokenizer> {
    let bpe = BPE::from_file(&path_str(vocab)?, &path_str(merges)?)
        .build()
        // The builder reads both files; blame the vocabulary, which it reads first, unless
        // that one on its own is fine.
        .map_err(|source| Error::TokenizerFile {
            path: blame_file(vocab, merges),
            source,
        })?;
    let token_id = |token: &str| {
        bpe.get_vocab()
            .get(token)
            .copied()
            .ok_or_else(|| Error::InvalidFile {
                path: vocab.to_path_buf(),
                problem: format!("has no '{token}' token, which BART-style tokenizers need"),
            })
    };
    let (bos_id, eos_id) = (token_id(BOS)?, token_id(EOS)?);
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer
        .with_pre_tokenizer(Some(ByteLevel::default().add_prefix_space(false)))
        .with_decoder(Some(ByteLevelDecoder::default()))
        .with_post_processor(Some(
            RobertaProcessing::new((EOS.to_string(), eos_id), (BOS.to_string(), bos_id))
                .trim_offsets(true)
                .add_prefix_space(false),
        ));
    // Special tokens must never be split by BPE. `<mask>` swallows the space before it, as the
    // special_tokens_map.json of BART checkpoints says (transformers 5.24 building from bare
    // vocab/merges keeps the space; summarisation input practically never contains `<mask>`).
    let specials = ["<s>", "<pad>", "</s>", "<unk>"]
        .into_iter()
        .map(|token| AddedToken::from(token, true))
        .chain(std::iter::once(
            AddedToken::from("<mask>", true).lstrip(true),
        ));
    let specials: Vec<AddedToken> = specials
        .filter(|t| tokenizer.token_to_id(&t.content).is_some())
        .collect();
    tokenizer
        .add_special_tokens(specials)
        .map_err(|source| Error::TokenizerFile {
            path: vocab.to_path_buf(),
            source,
        })?;
    Ok(tokenizer)
}

fn path_str(path: &Path) -> Result<String> {
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| Error::InvalidFile {
            path: path.to_path_buf(),
            problem: "the path is not valid UTF-8, which the tokenizers library requires"
                .to_string(),
        })
}

/// Which of the two BPE files made loading fail: the vocabulary if it is not a JSON object,
/// else the merges.
fn blame_file(vocab: &Path, merges: &Path) -> std::path::PathBuf {
    let vocab_ok = std::fs::read_to_string(vocab)
        .ok()
        .and_then(|text| {
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text).ok()
        })
        .is_some();
    if vocab_ok { merges } else { vocab }.to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loading::Weights;
    use std::path::PathBuf;

    fn files_with(tokenizer: TokenizerFiles) -> ModelFiles {
        ModelFiles {
            name: "test".into(),
            config: JsonFile {
                path: PathBuf::from("config.json"),
                json: serde_json::Value::Null,
            },
            tokenizer,
            weights: Weights::Safetensors(vec![]),
            generation_config: None,
            preset: None,
        }
    }

    /// A byte-level BPE that knows exactly "Hello" and " world" ("Ġ" marks the space).
    fn bpe_files(dir: &tempfile::TempDir, vocab_extra: &str) -> (PathBuf, PathBuf) {
        let vocab = format!(
            r#"{{"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "H": 4, "e": 5, "l": 6, "o": 7,
                "Ġ": 8, "w": 9, "r": 10, "d": 11, "He": 12, "ll": 13, "Hell": 14, "Hello": 15,
                "Ġw": 16, "or": 17, "Ġwor": 18, "Ġworl": 19, "Ġworld": 20, "<mask>": 21{vocab_extra}}}"#
        );
        let merges = "#version: 0.2\nH e\nl l\nHe ll\nHell o\nĠ w\no r\nĠw or\nĠwor l\nĠworl d\n";
        let (vocab_path, merges_path) =
            (dir.path().join("vocab.json"), dir.path().join("merges.txt"));
        std::fs::write(&vocab_path, vocab).unwrap();
        std::fs::write(&merges_path, merges).unwrap();
        (vocab_path, merges_path)
    }

    #[test]
    fn vocab_and_merges_make_a_bart_style_tokenizer() {
        let dir = tempfile::tempdir().unwrap();
        let (vocab, merges) = bpe_files(&dir, "");
        let tokenizer =
            load_tokenizer(&files_with(TokenizerFiles::VocabMerges { vocab, merges })).unwrap();
        // Expected ids from transformers 5.24's BartTokenizer over the same two files.
        for (text, ids) in [
            ("Hello world", &[0, 15, 20, 2][..]),
            ("Hello  world", &[0, 15, 8, 20, 2]),
            (" Hello", &[0, 8, 15, 2]),
        ] {
            let encoding = tokenizer.encode(text, true).unwrap();
            assert_eq!(encoding.get_ids(), ids, "{text:?}");
            assert_eq!(tokenizer.decode(encoding.get_ids(), true).unwrap(), text);
        }
        let with_mask = tokenizer.encode("Hello <mask>", true).unwrap();
        assert_eq!(
            with_mask.get_ids(),
            &[0, 15, 21, 2],
            "<mask> is special and eats its space"
        );
    }

    #[test]
    fn a_vocab_without_bos_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let (vocab, merges) = bpe_files(&dir, "");
        let text = std::fs::read_to_string(&vocab)
            .unwrap()
            .replace("\"<s>\": 0, ", "");
        std::fs::write(&vocab, text).unwrap();
        let files = files_with(TokenizerFiles::VocabMerges {
            vocab: vocab.clone(),
            merges,
        });
        match load_tokenizer(&files) {
            Err(Error::InvalidFile { path, problem }) => {
                assert_eq!(path, vocab);
                assert!(problem.contains("<s>"), "{problem}");
            }
            other => panic!("expected InvalidFile, got {other:?}"),
        }
    }

    #[test]
    fn broken_bpe_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let (vocab, merges) = bpe_files(&dir, "");
        std::fs::write(&merges, "#version: 0.2\nq z\n").unwrap();
        let files = files_with(TokenizerFiles::VocabMerges {
            vocab: vocab.clone(),
            merges: merges.clone(),
        });
        assert!(
            matches!(load_tokenizer(&files), Err(Error::TokenizerFile { ref path, .. }) if *path == merges)
        );
        std::fs::write(&vocab, "[not a vocab").unwrap();
        assert!(
            matches!(load_tokenizer(&files), Err(Error::TokenizerFile { ref path, .. }) if *path == vocab)
        );
    }

    #[test]
    fn tokenizer_json_loads_and_a_broken_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (vocab, merges) = bpe_files(&dir, "");
        let built =
            load_tokenizer(&files_with(TokenizerFiles::VocabMerges { vocab, merges })).unwrap();
        let json = dir.path().join("tokenizer.json");
        built.save(&json, false).unwrap();
        let loaded = load_tokenizer(&files_with(TokenizerFiles::Json(json.clone()))).unwrap();
        assert_eq!(
            loaded.encode("Hello world", true).unwrap().get_ids(),
            &[0, 15, 20, 2]
        );

        std::fs::write(&json, "{\"version\": ").unwrap();
        let err = load_tokenizer(&files_with(TokenizerFiles::Json(json.clone()))).unwrap_err();
        assert!(matches!(err, Error::TokenizerFile { ref path, .. } if *path == json));
        assert!(err.to_string().contains("tokenizer.json"));
    }

    /// A SentencePiece fixture folder's files, with `config` and `tokenizer_config` replaced.
    fn spiece_files(
        dir: &tempfile::TempDir,
        model: &[u8],
        config: &str,
        tokenizer_config: Option<&str>,
    ) -> ModelFiles {
        let model_path = dir.path().join("spiece.model");
        std::fs::write(&model_path, model).unwrap();
        let config_path = dir.path().join("config.json");
        std::fs::write(&config_path, config).unwrap();
        let tokenizer_config = tokenizer_config.map(|text| {
            let path = dir.path().join("tokenizer_config.json");
            std::fs::write(&path, text).unwrap();
            path
        });
        ModelFiles {
            config: JsonFile::read(&config_path).unwrap(),
            ..files_with(TokenizerFiles::SentencePiece {
                model: model_path,
                tokenizer_config,
            })
        }
    }

    fn fixture_spiece() -> Vec<u8> {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/t5-spiece/spiece.model");
        std::fs::read(path).unwrap()
    }

    #[test]
    fn sentencepiece_sentinels_and_offset_follow_tokenizer_config() {
        let dir = tempfile::tempdir().unwrap();
        let model = fixture_spiece();
        let t5 = r#"{"model_type": "t5"}"#;
        let default = load_tokenizer(&spiece_files(&dir, &model, t5, None)).unwrap();
        let none =
            load_tokenizer(&spiece_files(&dir, &model, t5, Some(r#"{"extra_ids": 0}"#))).unwrap();
        assert_eq!(
            default.get_vocab_size(true),
            none.get_vocab_size(true) + 100
        );
        assert_eq!(
            default.token_to_id("<extra_id_0>"),
            Some(default.get_vocab_size(true) as u32 - 1)
        );
        assert_eq!(none.token_to_id("<extra_id_0>"), None);

        let pegasus = r#"{"model_type": "pegasus"}"#;
        let shifted = load_tokenizer(&spiece_files(
            &dir,
            &model,
            pegasus,
            Some(r#"{"offset": 10}"#),
        ))
        .unwrap();
        // SentencePiece's <unk> is piece 2; Pegasus moves it up by the offset.
        assert_eq!(shifted.token_to_id("<unk>"), Some(12));
        assert_eq!(shifted.token_to_id("<unk_9>"), Some(11));
    }

    #[test]
    fn unusable_sentencepiece_models_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let bart = spiece_files(&dir, &fixture_spiece(), r#"{"model_type": "bart"}"#, None);
        match load_tokenizer(&bart) {
            Err(Error::InvalidFile { path, problem }) => {
                assert_eq!(path, dir.path().join("spiece.model"));
                assert!(
                    problem.contains("T5") && problem.contains("'bart'"),
                    "{problem}"
                );
            }
            other => panic!("expected InvalidFile, got {other:?}"),
        }
        let garbage = spiece_files(
            &dir,
            b"\xff\xff not protobuf",
            r#"{"model_type": "t5"}"#,
            None,
        );
        match load_tokenizer(&garbage) {
            Err(Error::InvalidFile { path, problem }) => {
                assert_eq!(path, dir.path().join("spiece.model"));
                assert!(problem.contains("not a SentencePiece model"), "{problem}");
            }
            other => panic!("expected InvalidFile, got {other:?}"),
        }
    }
}
