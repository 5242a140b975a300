//! ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum exactly as Google's rouge-score 0.1.2 computes them
//! (`rouge_score/rouge_scorer.py`), down to the last bit of every float: the same counts, the same
//! divisions in the same order, and for ROUGE-Lsum the same longest common subsequence picked
//! when several exist (its backtracking prefers the reference side on ties), since the summary-
//! level score depends on which one is picked.

use std::collections::HashMap;

use serde::Serialize;

use super::tokenize::tokenize;

/// Precision, recall and F1 of one ROUGE variant for one document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Score {
    pub precision: f64,
    pub recall: f64,
    pub fmeasure: f64,
}

impl Score {
    const ZERO: Score = Score {
        precision: 0.0,
        recall: 0.0,
        fmeasure: 0.0,
    };

    fn new(precision: f64, recall: f64) -> Score {
        Score {
            precision,
            recall,
            fmeasure: fmeasure(precision, recall),
        }
    }

    /// `[precision, recall, fmeasure]`, the order of rouge-score's `Score` tuple.
    pub fn to_array(self) -> [f64; 3] {
        [self.precision, self.recall, self.fmeasure]
    }

    pub fn from_array([precision, recall, fmeasure]: [f64; 3]) -> Score {
        Score {
            precision,
            recall,
            fmeasure,
        }
    }
}

/// rouge-score's `scoring.fmeasure`: the harmonic mean, 0 when both are 0.
pub fn fmeasure(precision: f64, recall: f64) -> f64 {
    if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    }
}

/// The four variants precis reports, in the order rouge-score users list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RougeType {
    Rouge1,
    Rouge2,
    RougeL,
    RougeLsum,
}

impl RougeType {
    pub const ALL: [RougeType; 4] = [
        RougeType::Rouge1,
        RougeType::Rouge2,
        RougeType::RougeL,
        RougeType::RougeLsum,
    ];

    /// The name rouge-score gives the variant.
    pub fn name(self) -> &'static str {
        match self {
            RougeType::Rouge1 => "rouge1",
            RougeType::Rouge2 => "rouge2",
            RougeType::RougeL => "rougeL",
            RougeType::RougeLsum => "rougeLsum",
        }
    }
}

/// The scores of one document, indexed by [`RougeType`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RougeScores(pub [Score; 4]);

impl RougeScores {
    pub fn get(&self, rouge_type: RougeType) -> Score {
        self.0[rouge_type as usize]
    }
}

/// As a map from rouge-score's names (`"rouge1"`, ..., `"rougeLsum"`) to scores.
impl Serialize for RougeScores {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(RougeType::ALL.len()))?;
        for rouge_type in RougeType::ALL {
            map.serialize_entry(rouge_type.name(), &self.get(rouge_type))?;
        }
        map.end()
    }
}

/// How texts are scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RougeOptions {
    /// Porter-stem tokens longer than three characters (rouge-score's `use_stemmer`).
    pub stemmer: bool,
    /// Put each sentence on its own line before ROUGE-Lsum, which otherwise takes the lines of
    /// the text as its sentences, as transformers' summarization example does with NLTK's
    /// Punkt (see [`split_sentences`]).
    pub split_sentences: bool,
}

impl Default for RougeOptions {
    /// rouge-score with `use_stemmer=True`, as transformers' summarization example scores.
    fn default() -> Self {
        RougeOptions {
            stemmer: true,
            split_sentences: false,
        }
    }
}

/// `text` with one sentence per line, for ROUGE-Lsum, as transformers' summarization example
/// prepares it: `"\n".join(nltk.sent_tokenize(text.strip()))`, with NLTK's English Punkt model
/// (see [`super::punkt`]). A sentence that spans lines keeps its line break, as there.
pub fn split_sentences(text: &str) -> String {
    let stripped = text.trim_matches(super::punkt::python_space);
    super::punkt::sentences(stripped).join("\n")
}

/// Scores a prediction against a reference, as `RougeScorer(["rouge1", "rouge2", "rougeL",
/// "rougeLsum"], use_stemmer).score(reference, prediction)` does.
pub fn score(reference: &str, prediction: &str, options: RougeOptions) -> RougeScores {
    let mut vocabulary = Vocabulary::default();
    let target = vocabulary.ids(&tokenize(reference, options.stemmer));
    let predicted = vocabulary.ids(&tokenize(prediction, options.stemmer));
    let lsum_sentences = |text: &str, vocabulary: &mut Vocabulary| {
        let text = if options.split_sentences {
            split_sentences(text)
        } else {
            text.to_string()
        };
        // rouge-score: text.split("\n"), keeping every line that is not empty (a line of
        // spaces stays, with no tokens).
        text.split('\n')
            .filter(|line| !line.is_empty())
            .map(|line| vocabulary.ids(&tokenize(line, options.stemmer)))
            .collect::<Vec<_>>()
    };
    let target_sentences = lsum_sentences(reference, &mut vocabulary);
    let predicted_sentences = lsum_sentences(prediction, &mut vocabulary);
    RougeScores([
        rouge_n(&target, &predicted, 1),
        rouge_n(&target, &predicted, 2),
        rouge_l(&target, &predicted),
        rouge_lsum(&target_sentences, &predicted_sentences),
    ])
}

/// Tokens as small integers, so that n-grams and LCS tables compare numbers, not strings.
#[derive(Default)]
struct Vocabulary(HashMap<String, u32>);

impl Vocabulary {
    fn ids(&mut self, tokens: &[String]) -> Vec<u32> {
        tokens
            .iter()
            .map(|token| {
                let next = self.0.len() as u32;
                *self.0.entry(token.clone()).or_insert(next)
            })
            .collect()
    }
}

fn ngram_counts(tokens: &[u32], n: usize) -> HashMap<&[u32], usize> {
    let mut counts = HashMap::new();
    for ngram in tokens.windows(n) {
        *counts.entry(ngram).or_insert(0) += 1;
    }
    counts
}

/// `_score_ngrams`: clipped n-gram matches over the prediction's and the reference's n-grams
/// (at least 1 each, so an empty text scores 0, not NaN).
fn rouge_n(target: &[u32], prediction: &[u32], n: usize) -> Score {
    let target_counts = ngram_counts(target, n);
    let prediction_counts = ngram_counts(prediction, n);
    let overlap: usize = target_counts
        .iter()
        .map(|(ngram, count)| (*count).min(prediction_counts.get(ngram).copied().unwrap_or(0)))
        .sum();
    let target_total: usize = target_counts.values().sum();
    let prediction_total: usize = prediction_counts.values().sum();
    Score::new(
        overlap as f64 / prediction_total.max(1) as f64,
        overlap as f64 / target_total.max(1) as f64,
    )
}

/// `_lcs_table`: `table[i][j]` is the LCS length of `reference[..i]` and `candidate[..j]`.
fn lcs_table(reference: &[u32], candidate: &[u32]) -> Vec<Vec<usize>> {
    let mut table = vec![vec![0; candidate.len() + 1]; reference.len() + 1];
    for i in 1..=reference.len() {
        for j in 1..=candidate.len() {
            table[i][j] = if reference[i - 1] == candidate[j - 1] {
                table[i - 1][j - 1] + 1
            } else {
                table[i - 1][j].max(table[i][j - 1])
            };
        }
    }
    table
}

/// `_score_lcs`.
fn rouge_l(target: &[u32], prediction: &[u32]) -> Score {
    if target.is_empty() || prediction.is_empty() {
        return Score::ZERO;
    }
    let lcs = lcs_table(target, prediction)[target.len()][prediction.len()];
    Score::new(
        lcs as f64 / prediction.len() as f64,
        lcs as f64 / target.len() as f64,
    )
}

/// `lcs_ind` / `_backtrack_norec`: the positions in `reference` of one longest common
/// subsequence, the one rouge-score's backtracking finds.
fn lcs_positions(reference: &[u32], candidate: &[u32]) -> Vec<usize> {
    let table = lcs_table(reference, candidate);
    let (mut i, mut j) = (reference.len(), candidate.len());
    let mut positions = Vec::new();
    while i > 0 && j > 0 {
        if reference[i - 1] == candidate[j - 1] {
            positions.push(i - 1);
            i -= 1;
            j -= 1;
        } else if table[i][j - 1] > table[i - 1][j] {
            j -= 1;
        } else {
            i -= 1;
        }
    }
    positions.reverse();
    positions
}

/// `_summary_level_lcs` (section 3.2 of the ROUGE paper, with ROUGE 1.5.5's guard against
/// counting a token more often than it occurs on either side).
fn rouge_lsum(target: &[Vec<u32>], prediction: &[Vec<u32>]) -> Score {
    let target_len: usize = target.iter().map(Vec::len).sum();
    let prediction_len: usize = prediction.iter().map(Vec::len).sum();
    if target_len == 0 || prediction_len == 0 {
        return Score::ZERO;
    }
    let mut target_left = token_counts(target);
    let mut prediction_left = token_counts(prediction);
    let mut hits = 0usize;
    for sentence in target {
        for token in union_lcs(sentence, prediction) {
            let (Some(t), Some(p)) = (target_left.get_mut(&token), prediction_left.get_mut(&token))
            else {
                continue;
            };
            if *t > 0 && *p > 0 {
                hits += 1;
                *t -= 1;
                *p -= 1;
            }
        }
    }
    Score::new(
        hits as f64 / prediction_len as f64,
        hits as f64 / target_len as f64,
    )
}

fn token_counts(sentences: &[Vec<u32>]) -> HashMap<u32, usize> {
    let mut counts = HashMap::new();
    for &token in sentences.iter().flatten() {
        *counts.entry(token).or_insert(0) += 1;
    }
    counts
}

/// `_union_lcs`: the tokens of `reference` in the union of its LCS with each candidate sentence,
/// in reference order.
fn union_lcs(reference: &[u32], candidates: &[Vec<u32>]) -> Vec<u32> {
    let mut positions: Vec<usize> = candidates
        .iter()
        .flat_map(|candidate| lcs_positions(reference, candidate))
        .collect();
    positions.sort_unstable();
    positions.dedup();
    positions.into_iter().map(|i| reference[i]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> RougeOptions {
        RougeOptions {
            stemmer: false,
            split_sentences: false,
        }
    }

    #[test]
    fn rouge_score_readme_example() {
        let scores = score(
            "The quick brown fox jumps over the lazy dog",
            "The quick brown dog jumps on the log.",
            RougeOptions::default(),
        );
        assert_eq!(
            scores.get(RougeType::Rouge1).to_array(),
            [0.75, 0.6666666666666666, 0.7058823529411765]
        );
        assert_eq!(
            scores.get(RougeType::RougeL).to_array(),
            [0.625, 0.5555555555555556, 0.5882352941176471]
        );
    }

    #[test]
    fn empty_texts_score_zero() {
        for (reference, prediction) in [("", "a b"), ("a b", ""), ("", ""), ("?!", "...")] {
            let scores = score(reference, prediction, plain());
            assert_eq!(
                scores,
                RougeScores::default(),
                "{reference:?} {prediction:?}"
            );
        }
    }

    #[test]
    fn repeated_ngrams_are_clipped() {
        // Reference has "no" 5 times, prediction twice: 2 matches of 2 predicted, of 5.
        let scores = score("no no no no no", "no no", plain());
        assert_eq!(scores.get(RougeType::Rouge1).to_array()[..2], [1.0, 0.4]);
    }

    #[test]
    fn lsum_uses_lines_and_counts_each_token_once() {
        let reference = "the cat sat\nthe dog ran";
        let one_line = "the dog ran the cat sat";
        let lines = "the dog ran\nthe cat sat";
        let l = score(reference, one_line, plain()).get(RougeType::RougeL);
        let lsum_one = score(reference, one_line, plain()).get(RougeType::RougeLsum);
        let lsum_lines = score(reference, lines, plain()).get(RougeType::RougeLsum);
        assert_eq!(l.recall, 0.5);
        assert_eq!(lsum_one.recall, 1.0);
        assert_eq!(lsum_lines.recall, 1.0);
        // Repeating the prediction's sentence cannot match a reference token twice.
        let repeated = score("a b", "a b\na b", plain()).get(RougeType::RougeLsum);
        assert_eq!(repeated.to_array()[..2], [0.5, 1.0]);
    }

    #[test]
    fn split_sentences_puts_each_sentence_on_a_line() {
        assert_eq!(
            split_sentences("One here. Two there!  Three?\n\nFour"),
            "One here.\nTwo there!\nThree?\nFour"
        );
        assert_eq!(split_sentences("  "), "");
        // Punkt knows abbreviations (UAX #29 splits after "Mr.").
        assert_eq!(split_sentences(" Mr. Smith left. "), "Mr. Smith left.");
    }
}
