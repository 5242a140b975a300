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

use super::files::{ModelFiles, TokenizerFiles};
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
            config: PathBuf::from("config.json"),
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
}
