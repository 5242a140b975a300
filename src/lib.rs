//! precis: summarise long articles with pretrained seq2seq models on CPU or GPU.
//!
//! The pipeline: [`text`] reads and cleans an article and splits it into token-bounded chunks,
//! [`generation`] drives a [`models::Seq2Seq`] model over each chunk, [`merge`] joins the chunk
//! summaries, and [`Summarizer`] ties it together around one loaded model.

pub mod batch;
pub mod device;
pub mod error;
pub mod eval;
pub mod generation;
pub mod loading;
pub mod merge;
pub mod models;
pub mod serve;
pub mod summarizer;
pub mod text;

pub use error::{Error, Fault, Result};
pub use models::Quantization;
pub use summarizer::{
    ChunkSummary, LoadOptions, MergePass, OutputOptions, Pass, PassOutput, PendingSummary,
    Progress, Summarizer, Summary, SummaryOptions, SummaryPlan, SummaryRecord,
    clean_up_tokenization,
};
