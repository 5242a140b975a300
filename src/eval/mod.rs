//! Measuring summaries: ROUGE exactly as Google's rouge-score 0.1.2 computes it (its tokenizer,
//! NLTK's Porter stemmer, ROUGE-Lsum, the bootstrap interval) with sentences split as NLTK's
//! Punkt splits them, summary statistics, and reading predictions and references. `precis eval`
//! is the command-line front end.
//!
//! ```
//! use precis::eval::{RougeOptions, RougeType, score};
//! let scores = score("The cat sat on the mat.", "A cat sat on a mat.", RougeOptions::default());
//! assert_eq!(scores.get(RougeType::Rouge1).recall, 4.0 / 6.0);
//! ```
//!
//! Crates checked first: `rougers` 0.2 gives identical scores on the golden corpus, but pins
//! exact versions of `unicode-normalization` and ICU crates that precis and its dependencies
//! already use in newer versions, so it cannot share their build; and it has no bootstrap.

pub mod bootstrap;
pub mod data;
mod porter;
pub mod punkt;
pub mod report;
mod rouge;
pub mod stats;
mod tokenize;

pub use bootstrap::{Interval, NumpyLegacyRandom, interval};
pub use porter::stem;
pub use report::{Aggregate, BootstrapOptions, DocResult, aggregate};
pub use rouge::{RougeOptions, RougeScores, RougeType, Score, fmeasure, score, split_sentences};
pub use stats::{SummaryStats, summary_stats};
pub use tokenize::tokenize;
