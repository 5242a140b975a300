//! Facts about a summary besides ROUGE: its length, how much shorter than its source it is, and
//! how abstractive it is (the share of its n-grams that never occur in the source, as reported
//! for CNN/DailyMail and XSum by See et al. 2017 and Narayan et al. 2018).

use std::collections::HashSet;

use serde::Serialize;
use unicode_segmentation::UnicodeSegmentation;

use super::tokenize::tokenize;

/// The n-gram sizes of [`SummaryStats::novel_ngrams`].
pub const NOVEL_NGRAM_SIZES: [usize; 4] = [1, 2, 3, 4];

/// Statistics of one summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryStats {
    /// Words by Unicode's word boundaries (UAX #29), which counts CJK characters one by one.
    pub words: usize,
    /// Tokens of the model that made it, when precis made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<usize>,
    /// Source words per summary word, when the source is known and the summary has words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<f64>,
    /// For n = 1..4: the share of the summary's n-grams (counted with repeats, on rouge-score's
    /// unstemmed tokens) absent from the source, when the source is known and the summary has
    /// n-grams of that size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub novel_ngrams: Option<[Option<f64>; 4]>,
}

/// Statistics of `summary`, made from `source` when it is known.
pub fn summary_stats(summary: &str, source: Option<&str>, tokens: Option<usize>) -> SummaryStats {
    let words = word_count(summary);
    let compression = source
        .filter(|_| words > 0)
        .map(|source| word_count(source) as f64 / words as f64);
    let novel_ngrams = source.map(|source| novel_shares(summary, source));
    SummaryStats {
        words,
        tokens,
        compression,
        novel_ngrams,
    }
}

pub fn word_count(text: &str) -> usize {
    text.unicode_words().count()
}

fn novel_shares(summary: &str, source: &str) -> [Option<f64>; 4] {
    let summary = tokenize(summary, false);
    let source = tokenize(source, false);
    NOVEL_NGRAM_SIZES.map(|n| {
        let known: HashSet<&[String]> = source.windows(n).collect();
        let ngrams: Vec<&[String]> = summary.windows(n).collect();
        if ngrams.is_empty() {
            return None;
        }
        let novel = ngrams
            .iter()
            .filter(|ngram| !known.contains(*ngram))
            .count();
        Some(novel as f64 / ngrams.len() as f64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extractive_summary_has_no_novel_ngrams() {
        let source = "The council met on Monday. It approved the new budget for schools.";
        let stats = summary_stats("It approved the new budget.", Some(source), Some(7));
        assert_eq!(stats.words, 5);
        assert_eq!(stats.tokens, Some(7));
        assert_eq!(stats.compression, Some(12.0 / 5.0));
        assert_eq!(
            stats.novel_ngrams,
            Some([Some(0.0), Some(0.0), Some(0.0), Some(0.0)])
        );
    }

    #[test]
    fn novel_ngrams_count_repeats_and_new_orders() {
        // Unigrams: "budget" new (1 of 4). Bigrams: "schools approved", "approved budget",
        // "budget schools" are all new (3 of 3).
        let stats = summary_stats(
            "schools approved budget schools",
            Some("approved the schools"),
            None,
        );
        let novel = stats.novel_ngrams.expect("source given");
        assert_eq!(novel[0], Some(0.25));
        assert_eq!(novel[1], Some(1.0));
        assert_eq!(novel[3], Some(1.0));
        let short = summary_stats("schools", Some("approved the schools"), None);
        assert_eq!(short.novel_ngrams.expect("source")[1], None);
    }

    #[test]
    fn without_a_source_only_lengths() {
        let stats = summary_stats("東京 meeting, twice.", None, None);
        assert_eq!(stats.words, 4);
        assert_eq!((stats.compression, stats.novel_ngrams), (None, None));
        assert_eq!(summary_stats("", Some("x y"), None).compression, None);
    }
}
