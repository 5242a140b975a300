//! From per-document results to the figures `precis eval` reports for one variant: the mean of
//! each ROUGE score, its bootstrap interval, and the means of the summary statistics.

use serde::Serialize;

use super::bootstrap::{self, Interval, NumpyLegacyRandom};
use super::rouge::{RougeScores, RougeType, Score};
use super::stats::SummaryStats;

/// One scored document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocResult {
    pub id: String,
    #[serde(flatten)]
    pub rouge: RougeScores,
    #[serde(flatten)]
    pub stats: SummaryStats,
    /// Model time spent on this document, when precis summarised it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
}

/// How the interval is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BootstrapOptions {
    /// Resamples per ROUGE variant; 0 skips the interval.
    pub samples: usize,
    pub confidence: f64,
    /// As `np.random.seed(seed)` before rouge-score's `BootstrapAggregator.aggregate()`.
    pub seed: u32,
}

impl Default for BootstrapOptions {
    fn default() -> Self {
        BootstrapOptions {
            samples: bootstrap::DEFAULT_SAMPLES,
            confidence: bootstrap::DEFAULT_CONFIDENCE,
            seed: 42,
        }
    }
}

/// One ROUGE variant over all documents.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RougeAggregate {
    /// The mean of the per-document scores, equal to `np.mean` of them to the last bit.
    pub mean: Score,
    /// rouge-score's `BootstrapAggregator` result; its `mid` is what Hugging Face `evaluate`
    /// reports as "the" score.
    pub interval: Option<Interval>,
}

/// The figures of one variant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aggregate {
    pub documents: usize,
    pub rouge1: RougeAggregate,
    pub rouge2: RougeAggregate,
    #[serde(rename = "rougeL")]
    pub rouge_l: RougeAggregate,
    #[serde(rename = "rougeLsum")]
    pub rouge_lsum: RougeAggregate,
    /// Mean summary length in words.
    pub words: Option<f64>,
    /// Mean tokens generated per document, when precis made the summaries.
    pub tokens: Option<f64>,
    /// Mean source words per summary word, over documents whose source is known.
    pub compression: Option<f64>,
    /// Mean share of novel 1- to 4-grams, over documents whose source is known.
    pub novel_ngrams: [Option<f64>; 4],
}

impl Aggregate {
    pub fn rouge(&self, rouge_type: RougeType) -> &RougeAggregate {
        match rouge_type {
            RougeType::Rouge1 => &self.rouge1,
            RougeType::Rouge2 => &self.rouge2,
            RougeType::RougeL => &self.rouge_l,
            RougeType::RougeLsum => &self.rouge_lsum,
        }
    }
}

/// Aggregates `docs`. The resamples come from one generator seeded once, drawn for rouge1,
/// rouge2, rougeL, rougeLsum in turn, as rouge-score draws them for a scorer of those types.
pub fn aggregate(docs: &[DocResult], options: &BootstrapOptions) -> Aggregate {
    let mut random = NumpyLegacyRandom::new(options.seed);
    let [rouge1, rouge2, rouge_l, rouge_lsum] = RougeType::ALL.map(|rouge_type| {
        let scores: Vec<Score> = docs.iter().map(|d| d.rouge.get(rouge_type)).collect();
        let resamples = (0..options.samples).map(|_| random.resample(scores.len()));
        RougeAggregate {
            mean: mean_score(&scores),
            interval: bootstrap::interval(&scores, resamples, options.confidence),
        }
    });
    Aggregate {
        documents: docs.len(),
        rouge1,
        rouge2,
        rouge_l,
        rouge_lsum,
        words: mean(docs.iter().map(|d| Some(d.stats.words as f64))),
        tokens: mean(docs.iter().map(|d| d.stats.tokens.map(|t| t as f64))),
        compression: mean(docs.iter().map(|d| d.stats.compression)),
        novel_ngrams: [0, 1, 2, 3].map(|n| {
            mean(
                docs.iter()
                    .map(|d| d.stats.novel_ngrams.and_then(|shares| shares[n])),
            )
        }),
    }
}

fn mean_score(scores: &[Score]) -> Score {
    let column = |pick: fn(&Score) -> f64| mean(scores.iter().map(|s| Some(pick(s))));
    Score {
        precision: column(|s| s.precision).unwrap_or(0.0),
        recall: column(|s| s.recall).unwrap_or(0.0),
        fmeasure: column(|s| s.fmeasure).unwrap_or(0.0),
    }
}

/// The mean of the values present, as `np.mean` computes it; `None` when none is.
fn mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let values: Vec<f64> = values.flatten().collect();
    (!values.is_empty()).then(|| numpy_sum(&values) / values.len() as f64)
}

/// NumPy's pairwise summation of a contiguous float64 array (`pairwise_sum_DOUBLE`): blocks of
/// at most 128 summed in eight interleaved lanes, halves (cut at a multiple of 8) added
/// recursively. Its rounding differs from a running sum, and users compare against `np.mean`.
fn numpy_sum(values: &[f64]) -> f64 {
    const BLOCK: usize = 128;
    let n = values.len();
    if n < 8 {
        return values.iter().fold(0.0, |sum, v| sum + v);
    }
    if n <= BLOCK {
        let mut lanes = [0.0f64; 8];
        lanes.copy_from_slice(&values[..8]);
        let whole = n - n % 8;
        for block in values[8..whole].chunks_exact(8) {
            for (lane, v) in lanes.iter_mut().zip(block) {
                *lane += v;
            }
        }
        let r = lanes;
        let sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        return values[whole..].iter().fold(sum, |sum, v| sum + v);
    }
    let half = n / 2 - (n / 2) % 8;
    numpy_sum(&values[..half]) + numpy_sum(&values[half..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{RougeOptions, score, summary_stats};

    fn doc(id: &str, reference: &str, prediction: &str, source: Option<&str>) -> DocResult {
        DocResult {
            id: id.into(),
            rouge: score(reference, prediction, RougeOptions::default()),
            stats: summary_stats(prediction, source, None),
            seconds: None,
        }
    }

    #[test]
    fn means_cover_the_documents_that_have_each_figure() {
        let docs = [
            doc(
                "a",
                "the cat sat",
                "the cat sat",
                Some("the cat sat on the mat"),
            ),
            doc("b", "the dog ran", "a bird flew", None),
        ];
        let aggregate = aggregate(&docs, &BootstrapOptions::default());
        assert_eq!(aggregate.documents, 2);
        assert_eq!(aggregate.rouge1.mean.fmeasure, 0.5);
        assert_eq!(aggregate.words, Some(3.0));
        // Only "a" has a source: 6 words for 3.
        assert_eq!(aggregate.compression, Some(2.0));
        assert_eq!(aggregate.novel_ngrams[0], Some(0.0));
        assert_eq!(aggregate.tokens, None);
        let interval = aggregate.rouge1.interval.expect("interval");
        assert!(interval.low.fmeasure <= interval.mid.fmeasure);
        assert!(interval.mid.fmeasure <= interval.high.fmeasure);
    }

    #[test]
    fn no_samples_no_interval_and_per_doc_json_names_the_variants() {
        let docs = [doc("a", "x y", "x", None)];
        let options = BootstrapOptions {
            samples: 0,
            ..BootstrapOptions::default()
        };
        assert_eq!(aggregate(&docs, &options).rouge_l.interval, None);
        let json = serde_json::to_value(&docs[0]).expect("json");
        assert_eq!(json["rouge1"]["recall"], 0.5);
        assert_eq!(json["rougeLsum"]["precision"], 1.0);
        assert_eq!(json["words"], 1);
        assert!(json.get("seconds").is_none());
    }
}
