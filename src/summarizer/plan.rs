//! One document's way to a summary, as steps a caller drives: [`SummaryPlan::start`] tokenises
//! and chunks the text into the passes of its first round, the caller generates them however
//! it schedules the model, and [`SummaryPlan::advance`] turns a round's outputs into the next
//! round (a reduce merge) until the summary is done.
//!
//! `precis summarize` and `precis batch` run every document's rounds together in padded batches
//! (`pipeline.rs`); `precis serve` feeds each pass to its continuous-batching scheduler. Both
//! go through these steps, so a document's summary is the same either way.
//!
//! Lengths: the last pass of a document uses the caller's (or the model's) lengths. Chunk
//! summaries and intermediate reduce rounds are capped at a third of the window (see
//! `intermediate_config`), so every reduce round at least halves the number of texts. With
//! `--merge concat` there is no last pass: the capped lengths apply to each chunk and the
//! abstract is their de-duplicated concatenation.

use tokenizers::{Encoding, TruncationDirection};

use super::options::intermediate_config;
use super::{ChunkSummary, MergePass, Summarizer, Summary, SummaryOptions};
use crate::generation::GenerationConfig;
use crate::merge::{self, MergeStrategy};
use crate::text;
use crate::{Error, Result};

const DEFAULT_CHUNK_OVERLAP: usize = 1;

/// Summarising with one set of options: the window, the chunk budget and the settings of the
/// two kinds of pass.
pub struct SummaryPlan<'a> {
    summarizer: &'a Summarizer,
    options: &'a SummaryOptions,
    /// Most tokens one encoder pass takes, special tokens and prefix included.
    window: usize,
    /// Tokens of content that fit beside the prefix and special tokens.
    budget: usize,
    /// Settings of each document's last pass.
    last: GenerationConfig,
    /// Settings of chunk summaries and intermediate reduce rounds.
    intermediate: GenerationConfig,
    /// Summarise only the first window of a long text instead of chunking it.
    truncate: bool,
}

/// One generation to run: the encoded input (prefix and special tokens included, cut to the
/// window) and which settings decode it.
#[derive(Debug, Clone, PartialEq)]
pub struct Pass {
    pub input_ids: Vec<u32>,
    /// The document's last pass (its summary), decoded with [`SummaryPlan::last_pass`]; else
    /// a chunk summary or an intermediate merge, decoded with [`SummaryPlan::intermediate`].
    pub last_pass: bool,
}

/// What generating a [`Pass`] gave.
#[derive(Debug, Clone, PartialEq)]
pub struct PassOutput {
    /// Generated ids, the decoder start token first.
    pub ids: Vec<u32>,
    /// Model time charged to the pass.
    pub seconds: f64,
}

/// A document on its way to a summary.
#[derive(Debug, Clone)]
pub struct PendingSummary {
    summary: Summary,
    /// The texts the next reduce round merges (chunk summaries, then group summaries).
    texts: Vec<String>,
    stage: Stage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for the first round: the whole text, or its chunks.
    Chunks,
    /// Waiting for a reduce round over `texts`.
    Reduce,
    Done,
}

impl PendingSummary {
    pub fn is_done(&self) -> bool {
        self.stage == Stage::Done
    }

    /// While a reduce round is pending: how many summaries it merges.
    pub fn merging(&self) -> Option<usize> {
        (self.stage == Stage::Reduce).then_some(self.texts.len())
    }

    /// The summary so far (complete once [`Self::is_done`]).
    pub fn into_summary(self) -> Summary {
        self.summary
    }
}

/// An out-of-bounds setting that `options` (checked on their own already) did not give came
/// from the model's files: say so, rather than name an option the caller never used.
fn blame_the_model(err: Error, options: &SummaryOptions) -> Error {
    match err {
        Error::InvalidOption {
            option,
            value,
            expected,
        } if !options.generation.sets(option) => Error::ModelSetting {
            option,
            value,
            expected,
        },
        other => other,
    }
}

impl<'a> SummaryPlan<'a> {
    /// Checks that the window leaves room for content and works out the pass settings.
    pub fn new(summarizer: &'a Summarizer, options: &'a SummaryOptions) -> Result<Self> {
        let loaded = summarizer.loaded();
        let window = options.max_input_tokens.unwrap_or(loaded.defaults.window);
        let prefix_tokens = loaded
            .tokenizer
            .encode(loaded.defaults.prefix.as_str(), false)?
            .len();
        let overhead = prefix_tokens + summarizer.special_tokens();
        if window <= overhead {
            return Err(Error::InvalidOption {
                option: "max_input_tokens",
                value: window.to_string(),
                expected: format!(
                    "must exceed the {overhead} tokens taken by the prefix and special tokens"
                ),
            });
        }
        let budget = window - overhead;
        let last = options.generation_config(&loaded.defaults);
        last.validate()
            .map_err(|err| blame_the_model(err, options))?;
        let intermediate = intermediate_config(&last, budget);
        Ok(Self {
            summarizer,
            options,
            window,
            budget,
            last,
            intermediate,
            truncate: false,
        })
    }

    /// With `truncate`, a text longer than the window is cut to its first window and
    /// summarised in one pass, as transformers' pipeline does with `truncation=True`, instead of
    /// being chunked and merged.
    pub fn truncating(mut self, truncate: bool) -> Self {
        self.truncate = truncate;
        self
    }

    pub fn summarizer(&self) -> &'a Summarizer {
        self.summarizer
    }

    /// The settings of a document's last pass.
    pub fn last_pass(&self) -> &GenerationConfig {
        &self.last
    }

    /// The settings of chunk summaries and intermediate merges.
    pub fn intermediate(&self) -> &GenerationConfig {
        &self.intermediate
    }

    /// The settings that decode `pass`.
    pub fn config(&self, pass: &Pass) -> &GenerationConfig {
        if pass.last_pass {
            &self.last
        } else {
            &self.intermediate
        }
    }

    /// Starts summarising `text`, the `number`th input (from 1, for messages): one pass for a
    /// text within the window, one per chunk otherwise.
    pub fn start(&self, number: usize, text: &str) -> Result<(PendingSummary, Vec<Pass>)> {
        if text.trim().is_empty() {
            return Err(Error::Input {
                source_name: format!("text {number}"),
                problem: crate::text::InputProblem::Empty,
                source: None,
            });
        }
        let offsets = self.summarizer.token_offsets(text)?;
        let chunk_tokens = self
            .options
            .chunk_tokens
            .unwrap_or(self.budget)
            .min(self.budget);
        let mut summary = Summary::empty();
        let mut passes = Vec::new();
        if offsets.len() <= chunk_tokens || self.truncate {
            let input_ids = self.encode(text)?.get_ids().to_vec();
            summary.input_tokens = input_ids.len();
            summary.chunks.push(chunk_summary(
                self.kept_chars(text, &offsets),
                input_ids.len(),
            ));
            passes.push(Pass {
                input_ids,
                last_pass: true,
            });
        } else {
            let overlap = self.options.chunk_overlap.unwrap_or(DEFAULT_CHUNK_OVERLAP);
            let chunks = text::chunk(text, &offsets, chunk_tokens, overlap)?;
            summary.input_tokens = offsets.len();
            for chunk in chunks {
                let chars = char_range(text, chunk.bytes.clone());
                summary
                    .chunks
                    .push(chunk_summary(chars, chunk.tokens.len()));
                passes.push(Pass {
                    input_ids: self.encode(&text[chunk.bytes])?.get_ids().to_vec(),
                    last_pass: false,
                });
            }
        }
        let pending = PendingSummary {
            summary,
            texts: Vec::new(),
            stage: Stage::Chunks,
        };
        Ok((pending, passes))
    }

    /// Takes the outputs of the passes [`Self::start`] or the last `advance` returned (all of
    /// them, in order) and returns the next round's passes: none once the summary is done.
    pub fn advance(
        &self,
        pending: &mut PendingSummary,
        outputs: Vec<PassOutput>,
    ) -> Result<Vec<Pass>> {
        let summary = &mut pending.summary;
        let mut texts = Vec::with_capacity(outputs.len());
        for output in &outputs {
            // The first id is the decoder start token, not generated.
            summary.output_tokens += output.ids.len().saturating_sub(1);
            summary.seconds += output.seconds;
            texts.push(self.summarizer.decode(&output.ids)?);
        }
        let mut ids: Vec<Vec<u32>> = outputs.into_iter().map(|o| o.ids).collect();
        match pending.stage {
            Stage::Chunks => {
                for ((chunk, text), ids) in summary.chunks.iter_mut().zip(&texts).zip(&ids) {
                    chunk.summary = text.clone();
                    chunk.output_ids = ids.clone();
                }
                if summary.chunks.len() == 1 {
                    return Ok(finish(pending, texts, ids.pop()));
                }
                if self.options.merge == MergeStrategy::Concat {
                    // No single generation wrote this abstract, so it has no output ids.
                    let joined = vec![merge::concat(&texts)];
                    return Ok(finish(pending, joined, None));
                }
            }
            Stage::Reduce => {
                summary.merge_passes.push(MergePass {
                    inputs: pending.texts.len(),
                    outputs: texts.len(),
                });
                if texts.len() == 1 {
                    return Ok(finish(pending, texts, ids.pop()));
                }
            }
            Stage::Done => return Ok(Vec::new()),
        }
        pending.stage = Stage::Reduce;
        pending.texts = texts;
        self.reduce_round(&pending.texts)
    }

    /// The characters of `text` a single pass reads: all of them, unless the window cuts it.
    fn kept_chars(&self, text: &str, offsets: &[(usize, usize)]) -> (usize, usize) {
        if offsets.len() <= self.budget {
            return (0, text.chars().count());
        }
        let end = offsets[self.budget.saturating_sub(1)].1;
        char_range(text, 0..end)
    }

    /// The joined groups of one reduce round over `texts`; a single group is the document's
    /// last pass.
    fn reduce_round(&self, texts: &[String]) -> Result<Vec<Pass>> {
        let tokenizer = &self.summarizer.loaded().tokenizer;
        let counts = texts
            .iter()
            .map(|t| Ok(tokenizer.encode(t.as_str(), false)?.len() + 1))
            .collect::<Result<Vec<_>>>()?;
        let mut groups = merge::reduce_groups(&counts, self.budget);
        if groups.len() == texts.len() && texts.len() > 1 {
            // Every summary alone fills the window (decoded text can re-tokenise longer than
            // it was generated): pair them up anyway; truncation trims the excess.
            groups = (0..texts.len())
                .step_by(2)
                .map(|i| i..(i + 2).min(texts.len()))
                .collect();
        }
        let last_pass = groups.len() == 1;
        groups
            .into_iter()
            .map(|g| {
                let joined = merge::concat(&texts[g]);
                Ok(Pass {
                    input_ids: self.encode(&joined)?.get_ids().to_vec(),
                    last_pass,
                })
            })
            .collect()
    }

    /// `prefix + text`, tokenised with the model's special tokens and cut to the window the
    /// way transformers truncates: content is dropped from the end, special tokens stay.
    fn encode(&self, text: &str) -> Result<Encoding> {
        let loaded = self.summarizer.loaded();
        let tokenizer = &loaded.tokenizer;
        let input = format!("{}{}", loaded.defaults.prefix, text);
        let mut encoding = tokenizer.encode(input.as_str(), false)?;
        let special = self.summarizer.special_tokens();
        if encoding.len() + special > self.window {
            tracing::debug!(
                "input of {} tokens cut to the {}-token window",
                encoding.len() + special,
                self.window
            );
            encoding.truncate(self.window - special, 0, TruncationDirection::Right);
        }
        Ok(tokenizer.post_process(encoding, None, true)?)
    }
}

/// The document is done: `texts` holds its one abstract, written by `ids` when one
/// generation wrote it.
fn finish(
    pending: &mut PendingSummary,
    mut texts: Vec<String>,
    ids: Option<Vec<u32>>,
) -> Vec<Pass> {
    pending.summary.text = texts.pop().unwrap_or_default();
    pending.summary.output_ids = ids;
    pending.texts.clear();
    pending.stage = Stage::Done;
    Vec::new()
}

fn chunk_summary(chars: (usize, usize), tokens: usize) -> ChunkSummary {
    ChunkSummary {
        chars,
        tokens,
        summary: String::new(),
        output_ids: Vec::new(),
    }
}

/// Byte range → character range, for reporting positions to people and JSON consumers.
fn char_range(text: &str, bytes: std::ops::Range<usize>) -> (usize, usize) {
    let start = text[..bytes.start].chars().count();
    (start, start + text[bytes].chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_ranges_count_characters_not_bytes() {
        let text = "héllo wörld";
        let start = text.find('w').unwrap();
        assert_eq!(char_range(text, start..text.len()), (6, 11));
        assert_eq!(char_range(text, 0..text.len()), (0, 11));
    }
}
