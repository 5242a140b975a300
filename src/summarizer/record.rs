//! The JSON record of one summary: what `precis summarize --format json` prints for each input
//! and what `precis serve` answers on `POST /summarize`.

use serde::Serialize;

use super::{ChunkSummary, MergePass, Summarizer, Summary};
use crate::device;
use crate::text::{self, Document};

/// One summarised input with the facts about how it was made.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SummaryRecord {
    /// The input's name (a file, `-` for standard input); absent in server answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub summary: String,
    /// The summary's token ids as transformers' pipeline returns them (`summary_token_ids`);
    /// `null` when `concat` joined several chunk summaries.
    pub output_ids: Option<Vec<u32>>,
    /// The model as given to `--model`.
    pub model: String,
    pub device: String,
    pub input_tokens: usize,
    pub output_tokens: usize,
    pub seconds: f64,
    pub tokens_per_second: f64,
    pub chunk_count: usize,
    /// What the chunks' `chars` ranges count: `input` (the input's characters as given) or
    /// `cleaned_text` (HTML, whose cleaned text is then in `cleaned_text`).
    pub chunk_chars_of: String,
    pub chunks: Vec<ChunkSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleaned_text: Option<String>,
    pub merge_passes: Vec<MergePass>,
}

impl SummaryRecord {
    /// The record of `summary`, made of `document` (whose cleaned text the model read was
    /// `cleaned`); its source is the document's name.
    pub fn new(
        document: &Document,
        cleaned: &str,
        summarizer: &Summarizer,
        summary: Summary,
    ) -> Self {
        let (chunks, cleaned_text) = located_chunks(document, cleaned, &summary);
        Self {
            source: Some(document.name.clone()),
            output_ids: summary.output_ids,
            model: summarizer.name().to_string(),
            device: device::describe(summarizer.device()),
            input_tokens: summary.input_tokens,
            output_tokens: summary.output_tokens,
            seconds: summary.seconds,
            tokens_per_second: summary.output_tokens as f64 / summary.seconds.max(1e-9),
            chunk_count: summary.chunks.len(),
            chunk_chars_of: if cleaned_text.is_some() {
                "cleaned_text"
            } else {
                "input"
            }
            .to_string(),
            chunks,
            cleaned_text,
            merge_passes: summary.merge_passes,
            summary: summary.text,
        }
    }
}

/// The summary's chunks with their ranges in the input as given where cleaning kept a
/// correspondence (plain text, Markdown); else (HTML) in the cleaned text, which is returned
/// to go in the record.
fn located_chunks(
    document: &Document,
    cleaned: &str,
    summary: &Summary,
) -> (Vec<ChunkSummary>, Option<String>) {
    let ranges: Vec<(usize, usize)> = summary.chunks.iter().map(|c| c.chars).collect();
    let mut chunks = summary.chunks.clone();
    match text::source_ranges(document, &ranges) {
        Some(mapped) => {
            for (chunk, chars) in chunks.iter_mut().zip(mapped) {
                chunk.chars = chars;
            }
            (chunks, None)
        }
        None => (chunks, Some(cleaned.to_string())),
    }
}
