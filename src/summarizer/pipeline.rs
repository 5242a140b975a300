//! Summaries of one or many documents, start to end: tokenise, chunk each text that exceeds
//! the window, summarise every chunk of every document in shared padded batches, then merge
//! each document's chunk summaries.
//!
//! The work runs in rounds. Round one summarises whole documents (those within the window) and
//! the chunks of long ones; each reduce round then summarises, for every document still
//! merging, its summaries joined in window-sized groups. Texts from different documents share
//! model batches whenever they use the same decoding settings.
//!
//! Lengths: the last pass of a document uses the caller's (or the model's) lengths. Chunk
//! summaries and intermediate reduce rounds are capped at a third of the window (see
//! `intermediate_config`), so every reduce round at least halves the number of texts. With
//! `--merge concat` there is no last pass: the capped lengths apply to each chunk and the
//! abstract is their de-duplicated concatenation.

use std::time::Instant;

use tokenizers::{Encoding, TruncationDirection};

use super::batching::Batches;
use super::options::intermediate_config;
use super::{ChunkSummary, MergePass, Progress, Summarizer, Summary, SummaryOptions};
use crate::generation::{self, GenerationConfig};
use crate::merge::{self, MergeStrategy};
use crate::text;
use crate::{Error, Result};

const DEFAULT_CHUNK_OVERLAP: usize = 1;

pub(super) struct Pipeline<'a> {
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
    batches: Batches,
}

/// One text to summarise in a round, and whose it is.
struct Job {
    doc: usize,
    text: String,
    last_pass: bool,
}

/// What one job generated: the ids (decoder start token first) and their text.
#[derive(Default)]
struct Output {
    ids: Vec<u32>,
    text: String,
}

/// A document on its way to a summary.
struct Doc {
    summary: Summary,
    /// The texts its next reduce round merges (chunk summaries, then group summaries).
    texts: Vec<String>,
    /// The ids of each chunk summary, in chunk order (until they are recorded).
    chunk_ids: Vec<Vec<u32>>,
    done: bool,
}

impl<'a> Pipeline<'a> {
    pub(super) fn new(summarizer: &'a Summarizer, options: &'a SummaryOptions) -> Result<Self> {
        let loaded = summarizer.loaded();
        let window = options.max_input_tokens.unwrap_or(loaded.defaults.window);
        let prefix_tokens = loaded
            .tokenizer
            .encode(loaded.defaults.prefix.as_str(), false)?
            .len();
        let overhead = prefix_tokens + summarizer.special_tokens();
        if window <= overhead {
            return Err(Error::InvalidOption {
                option: "--max-input-tokens",
                value: window.to_string(),
                expected: format!(
                    "must exceed the {overhead} tokens taken by the prefix and special tokens"
                ),
            });
        }
        let budget = window - overhead;
        let last = options.generation_config(&loaded.defaults);
        last.validate()?;
        let intermediate = intermediate_config(&last, budget);
        let batches = Batches::new(options, loaded.device.is_cpu());
        Ok(Self {
            summarizer,
            options,
            window,
            budget,
            last,
            intermediate,
            batches,
        })
    }

    /// Summarise every text; a text that cannot be summarised (empty, say) fails alone.
    pub(super) fn run(
        &self,
        texts: &[&str],
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<Result<Summary>>> {
        let mut docs = Vec::with_capacity(texts.len());
        let mut failures = Vec::new();
        let mut jobs = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            match self.plan(i, text, &mut jobs) {
                Ok(doc) => docs.push(doc),
                Err(e) => {
                    failures.push((i, e));
                    docs.push(Doc::finished());
                }
            }
        }
        let total = jobs.len();
        let mut done = 0;
        let outputs = self.run_jobs(&jobs, &mut docs, &mut |n| {
            done += n;
            progress(Progress::Chunks { done, total })
        })?;
        for (job, output) in jobs.iter().zip(outputs) {
            let doc = &mut docs[job.doc];
            if job.last_pass {
                doc.summary.text = output.text.clone();
                doc.chunk_ids.push(output.ids.clone());
                doc.summary.output_ids = Some(output.ids);
                doc.done = true;
            } else {
                doc.texts.push(output.text);
                doc.chunk_ids.push(output.ids);
            }
        }
        for doc in docs.iter_mut() {
            self.record_chunk_summaries(doc);
        }
        self.reduce(&mut docs, progress)?;

        let mut results: Vec<Result<Summary>> = docs.into_iter().map(|d| Ok(d.summary)).collect();
        for (i, error) in failures {
            results[i] = Err(error);
        }
        Ok(results)
    }

    /// Decide how document `doc` starts: one job for a text within the window, one job per
    /// chunk otherwise.
    fn plan(&self, doc: usize, text: &str, jobs: &mut Vec<Job>) -> Result<Doc> {
        if text.trim().is_empty() {
            return Err(Error::BadInput {
                source_name: format!("text {}", doc + 1),
                problem: "the text is empty; give an article with some words in it".into(),
            });
        }
        let offsets = self.summarizer.token_offsets(text)?;
        let chunk_tokens = self
            .options
            .chunk_tokens
            .unwrap_or(self.budget)
            .min(self.budget);
        let mut summary = Summary::empty();
        if offsets.len() <= chunk_tokens {
            summary.input_tokens = self.encode(text)?.len();
            summary.chunks.push(ChunkSummary {
                chars: (0, text.chars().count()),
                tokens: summary.input_tokens,
                summary: String::new(),
                output_ids: Vec::new(),
            });
            jobs.push(Job {
                doc,
                text: text.to_string(),
                last_pass: true,
            });
        } else {
            let overlap = self.options.chunk_overlap.unwrap_or(DEFAULT_CHUNK_OVERLAP);
            let chunks = text::chunk(text, &offsets, chunk_tokens, overlap)?;
            summary.input_tokens = offsets.len();
            for chunk in chunks {
                summary.chunks.push(ChunkSummary {
                    chars: char_range(text, chunk.bytes.clone()),
                    tokens: chunk.tokens.len(),
                    summary: String::new(),
                    output_ids: Vec::new(),
                });
                jobs.push(Job {
                    doc,
                    text: text[chunk.bytes].to_string(),
                    last_pass: false,
                });
            }
        }
        Ok(Doc {
            summary,
            texts: Vec::new(),
            chunk_ids: Vec::new(),
            done: false,
        })
    }

    /// After round one: chunk summaries (text and ids) go into the report; `concat` finishes
    /// here, with no `output_ids`, since no single generation wrote its abstract.
    fn record_chunk_summaries(&self, doc: &mut Doc) {
        let ids = std::mem::take(&mut doc.chunk_ids);
        for (chunk, ids) in doc.summary.chunks.iter_mut().zip(ids) {
            chunk.output_ids = ids;
        }
        if doc.done {
            if let [only] = doc.summary.chunks.as_mut_slice() {
                only.summary = doc.summary.text.clone();
            }
            return;
        }
        for (chunk, text) in doc.summary.chunks.iter_mut().zip(&doc.texts) {
            chunk.summary = text.clone();
        }
        if self.options.merge == MergeStrategy::Concat {
            doc.summary.text = merge::concat(&doc.texts);
            doc.done = true;
        }
    }

    /// Reduce rounds until every document has one abstract.
    fn reduce(&self, docs: &mut [Doc], progress: &mut dyn FnMut(Progress)) -> Result<()> {
        loop {
            let mut jobs = Vec::new();
            for (i, doc) in docs.iter().enumerate().filter(|(_, d)| !d.done) {
                progress(Progress::Merging {
                    inputs: doc.texts.len(),
                });
                for (text, last_pass) in self.reduce_round(&doc.texts)? {
                    jobs.push(Job {
                        doc: i,
                        text,
                        last_pass,
                    });
                }
            }
            if jobs.is_empty() {
                return Ok(());
            }
            let outputs = self.run_jobs(&jobs, docs, &mut |_| {})?;
            let mut next: Vec<Vec<Output>> = docs.iter().map(|_| Vec::new()).collect();
            for (job, output) in jobs.iter().zip(outputs) {
                next[job.doc].push(output);
            }
            for (doc, outputs) in docs.iter_mut().zip(next).filter(|(d, _)| !d.done) {
                doc.summary.merge_passes.push(MergePass {
                    inputs: doc.texts.len(),
                    outputs: outputs.len(),
                });
                if let [only] = outputs.as_slice() {
                    doc.summary.text = only.text.clone();
                    doc.summary.output_ids = Some(only.ids.clone());
                    doc.done = true;
                }
                doc.texts = outputs.into_iter().map(|o| o.text).collect();
            }
        }
    }

    /// The joined groups of one reduce round over `texts`, each flagged when it is the
    /// document's last pass (a single group).
    fn reduce_round(&self, texts: &[String]) -> Result<Vec<(String, bool)>> {
        let counts = texts
            .iter()
            .map(|t| {
                Ok(self
                    .summarizer
                    .loaded()
                    .tokenizer
                    .encode(t.as_str(), false)?
                    .len()
                    + 1)
            })
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
        Ok(groups
            .into_iter()
            .map(|g| (merge::concat(&texts[g]), last_pass))
            .collect())
    }

    /// Summarise `jobs` (last passes and intermediate ones in separate batches, since they
    /// decode differently), returning outputs in job order and charging time and tokens to
    /// each job's document.
    fn run_jobs(
        &self,
        jobs: &[Job],
        docs: &mut [Doc],
        on_batch: &mut dyn FnMut(usize),
    ) -> Result<Vec<Output>> {
        let encoded = jobs
            .iter()
            .map(|job| Ok(self.encode(&job.text)?.get_ids().to_vec()))
            .collect::<Result<Vec<_>>>()?;
        let loaded = self.summarizer.loaded();
        let mut outputs: Vec<Output> = jobs.iter().map(|_| Output::default()).collect();
        for last_pass in [true, false] {
            let config = if last_pass {
                &self.last
            } else {
                &self.intermediate
            };
            let members: Vec<usize> = (0..jobs.len())
                .filter(|&i| jobs[i].last_pass == last_pass)
                .collect();
            for batch in self.batches.split(&members, |i| encoded[i].len()) {
                let started = Instant::now();
                let rows: Vec<&[u32]> = batch.iter().map(|&i| encoded[i].as_slice()).collect();
                let pad = loaded.model.spec().pad_token_id;
                let (ids, mask) = generation::pad_batch(&rows, pad, &loaded.device)?;
                let sequences = generation::generate(loaded.model.as_ref(), &ids, &mask, config)?;
                let share = started.elapsed().as_secs_f64() / batch.len() as f64;
                for (&i, sequence) in batch.iter().zip(&sequences) {
                    let summary = &mut docs[jobs[i].doc].summary;
                    // The first id is the decoder start token, not generated.
                    summary.output_tokens += sequence.len().saturating_sub(1);
                    summary.seconds += share;
                    outputs[i] = Output {
                        text: self.summarizer.decode(sequence)?,
                        ids: sequence.clone(),
                    };
                }
                on_batch(batch.len());
            }
        }
        Ok(outputs)
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

impl Doc {
    /// A placeholder for a document that failed before any work.
    fn finished() -> Self {
        Self {
            summary: Summary::empty(),
            texts: Vec::new(),
            chunk_ids: Vec::new(),
            done: true,
        }
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
