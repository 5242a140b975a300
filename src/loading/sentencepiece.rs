//! Tokenizers for checkpoints that ship only a SentencePiece `spiece.model` (older T5 and
//! Pegasus repos), built the way transformers 5.24 builds them from that file
//! (`T5Tokenizer` / `PegasusTokenizer` in models/t5 and models/pegasus): a Unigram model over
//! the pieces and their scores, SentencePiece's precompiled normalisation rules, `▁` word
//! boundaries and `</s>` after every input.
//!
//! The ids must be the ones the model was trained with, so the two layouts differ:
//! * T5 keeps SentencePiece's ids and appends the sentinels `<extra_id_99>` … `<extra_id_0>`.
//! * Pegasus puts `<pad>`, `</s>`, `<mask_1>`, `<mask_2>` and `<unk_2>` … `<unk_{offset-1}>`
//!   first and shifts every other piece by `offset` (103) from its SentencePiece id.

use std::path::Path;

use prost::Message;
use tokenizers::decoders::metaspace::Metaspace as MetaspaceDecoder;
use tokenizers::models::unigram::Unigram;
use tokenizers::normalizers::{NormalizerWrapper, Precompiled, Replace, Sequence};
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::pre_tokenizers::sequence::Sequence as PreSequence;
use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

use crate::error::{Error, Result};

/// The parts of SentencePiece's `ModelProto` (sentencepiece_model.proto) that a tokenizer needs.
#[derive(Clone, PartialEq, Message)]
struct ModelProto {
    #[prost(message, repeated, tag = "1")]
    pieces: Vec<Piece>,
    #[prost(message, optional, tag = "2")]
    trainer_spec: Option<TrainerSpec>,
    #[prost(message, optional, tag = "3")]
    normalizer_spec: Option<NormalizerSpec>,
}

#[derive(Clone, PartialEq, Message)]
struct Piece {
    #[prost(string, optional, tag = "1")]
    piece: Option<String>,
    #[prost(float, optional, tag = "2")]
    score: Option<f32>,
}

#[derive(Clone, PartialEq, Message)]
struct TrainerSpec {
    /// Unigram = 1; BPE, word and char models are not what T5 or Pegasus use.
    #[prost(int32, optional, tag = "3")]
    model_type: Option<i32>,
    #[prost(int32, optional, tag = "40")]
    unk_id: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
struct NormalizerSpec {
    #[prost(bytes = "vec", optional, tag = "2")]
    precompiled_charsmap: Option<Vec<u8>>,
}

const UNIGRAM: i32 = 1;
const PAD: &str = "<pad>";
const EOS: &str = "</s>";

/// A model family's vocabulary: pieces with scores in id order, the id of `<unk>`, and the
/// tokens that are never split.
struct Vocabulary {
    pieces: Vec<(String, f64)>,
    unk_id: usize,
    specials: Vec<String>,
}

/// How a model family lays its ids over the SentencePiece vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpmLayout {
    /// T5: SentencePiece ids, then `extra_ids` sentinels in reverse order.
    T5 { extra_ids: usize },
    /// Pegasus: special tokens below `offset`, pieces (from the third on) shifted up by it.
    Pegasus { offset: usize },
}

/// Builds the tokenizer for `model` (a `spiece.model`) with the ids of `layout`.
pub(crate) fn spm_tokenizer(model: &Path, layout: SpmLayout) -> Result<Tokenizer> {
    let invalid = |problem: String| Error::InvalidFile {
        path: model.to_path_buf(),
        problem,
    };
    let bytes = std::fs::read(model).map_err(|source| Error::Io {
        path: model.to_path_buf(),
        source,
    })?;
    let proto = ModelProto::decode(bytes.as_slice()).map_err(|e| {
        invalid(format!(
            "is not a SentencePiece model ({e}); download it again or use tokenizer.json"
        ))
    })?;
    let trainer = proto.trainer_spec.clone().unwrap_or_default();
    if trainer.model_type.unwrap_or(UNIGRAM) != UNIGRAM {
        return Err(invalid(
            "is not a Unigram SentencePiece model, which T5 and Pegasus tokenizers are".into(),
        ));
    }
    let pieces: Vec<(String, f64)> = proto
        .pieces
        .iter()
        .map(|p| {
            (
                p.piece.clone().unwrap_or_default(),
                f64::from(p.score.unwrap_or(0.0)),
            )
        })
        .collect();
    let spm_unk = usize::try_from(trainer.unk_id.unwrap_or(0)).unwrap_or(0);
    if pieces.len() < 3 || spm_unk >= pieces.len() {
        return Err(invalid(format!(
            "has {} pieces and unk_id {spm_unk}; expected <pad>, </s>, <unk> and a vocabulary",
            pieces.len()
        )));
    }
    let Vocabulary {
        pieces: vocab,
        unk_id,
        specials,
    } = layout.vocabulary(pieces, spm_unk).map_err(&invalid)?;

    let unigram = Unigram::from(vocab, Some(unk_id), false)
        .map_err(|e| invalid(format!("cannot become a Unigram vocabulary: {e}")))?;
    let mut tokenizer = Tokenizer::new(unigram);
    let charsmap = proto
        .normalizer_spec
        .and_then(|spec| spec.precompiled_charsmap)
        .filter(|map| !map.is_empty());
    let normalizer = layout.normalizer(charsmap.as_deref()).map_err(&invalid)?;
    tokenizer
        .with_normalizer(normalizer)
        .map_err(|source| Error::TokenizerFile {
            path: model.to_path_buf(),
            source,
        })?;
    tokenizer.with_pre_tokenizer(Some(layout.pre_tokenizer()));
    tokenizer.with_decoder(Some(MetaspaceDecoder::new(
        '▁',
        PrependScheme::Always,
        true,
    )));
    let specials: Vec<AddedToken> = specials
        .into_iter()
        .map(|token| AddedToken::from(token, true))
        .collect();
    tokenizer
        .add_special_tokens(specials)
        .map_err(|source| Error::TokenizerFile {
            path: model.to_path_buf(),
            source,
        })?;
    let eos_id = tokenizer
        .token_to_id(EOS)
        .ok_or_else(|| invalid(format!("has no '{EOS}' piece")))?;
    let post = TemplateProcessing::builder()
        .try_single(format!("$A {EOS}"))
        .and_then(|b| b.try_pair(layout.pair_template()))
        .map_err(|e| invalid(format!("post-processor: {e}")))?
        .special_tokens(vec![(EOS, eos_id)])
        .build()
        .map_err(|e| invalid(format!("post-processor: {e}")))?;
    tokenizer.with_post_processor(Some(post));
    Ok(tokenizer)
}

impl SpmLayout {
    /// The Unigram vocabulary, its unknown-token id, and the tokens that are never split.
    fn vocabulary(
        self,
        pieces: Vec<(String, f64)>,
        spm_unk: usize,
    ) -> std::result::Result<Vocabulary, String> {
        match self {
            SpmLayout::T5 { extra_ids } => {
                let sentinels: Vec<String> = (0..extra_ids)
                    .rev()
                    .map(|i| format!("<extra_id_{i}>"))
                    .collect();
                let mut specials =
                    vec![PAD.to_string(), EOS.to_string(), pieces[spm_unk].0.clone()];
                specials.extend(sentinels.iter().cloned());
                let mut vocab = pieces;
                vocab.extend(sentinels.into_iter().map(|s| (s, 0.0)));
                Ok(Vocabulary {
                    pieces: vocab,
                    unk_id: spm_unk,
                    specials,
                })
            }
            SpmLayout::Pegasus { offset } => {
                if spm_unk < 2 {
                    return Err(format!(
                        "has <unk> at id {spm_unk}; Pegasus models keep <pad> and </s> there"
                    ));
                }
                if offset < 2 {
                    return Err(format!(
                        "cannot take a Pegasus offset of {offset} (tokenizer_config.json): \
                         ids 0-3 are <pad>, </s>, <mask_1> and <mask_2>"
                    ));
                }
                let mut specials = vec![PAD, EOS, "<mask_1>", "<mask_2>"]
                    .into_iter()
                    .map(str::to_string)
                    .collect::<Vec<_>>();
                let mut vocab: Vec<(String, f64)> =
                    specials.iter().map(|s| (s.clone(), 0.0)).collect();
                for i in 2..offset {
                    let token = format!("<unk_{i}>");
                    vocab.push((token.clone(), -100.0));
                    specials.push(token);
                }
                specials.push(pieces[spm_unk].0.clone());
                // The first two pieces are SentencePiece's own <pad> and </s>, already placed;
                // piece i >= 2 lands at i + offset.
                vocab.extend(pieces.into_iter().skip(2));
                Ok(Vocabulary {
                    pieces: vocab,
                    unk_id: spm_unk + offset,
                    specials,
                })
            }
        }
    }

    fn normalizer(
        self,
        charsmap: Option<&[u8]>,
    ) -> std::result::Result<Option<NormalizerWrapper>, String> {
        let precompiled = charsmap
            .map(|map| {
                Precompiled::from(map)
                    .map(NormalizerWrapper::from)
                    .map_err(|e| format!("has unreadable normalisation rules: {e}"))
            })
            .transpose()?;
        Ok(match self {
            SpmLayout::T5 { .. } => precompiled,
            SpmLayout::Pegasus { .. } => {
                let spaces = Replace::new(
                    tokenizers::normalizers::replace::ReplacePattern::Regex(" {2,}".into()),
                    " ",
                )
                .map_err(|e| format!("space normaliser: {e}"))?;
                Some(NormalizerWrapper::from(Sequence::new(
                    precompiled.into_iter().chain([spaces.into()]).collect(),
                )))
            }
        })
    }

    fn pre_tokenizer(self) -> PreTokenizerWrapper {
        let metaspace = Metaspace::new('▁', PrependScheme::Always, true);
        match self {
            SpmLayout::T5 { .. } => {
                PreSequence::new(vec![WhitespaceSplit.into(), metaspace.into()]).into()
            }
            SpmLayout::Pegasus { .. } => metaspace.into(),
        }
    }

    fn pair_template(self) -> String {
        match self {
            SpmLayout::T5 { .. } => format!("$A {EOS} $B {EOS}"),
            SpmLayout::Pegasus { .. } => format!("$A $B {EOS}"),
        }
    }
}
