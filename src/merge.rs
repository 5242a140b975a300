//! Joining chunk summaries into one abstract.
//!
//! `concat` keeps the chunk summaries in order and drops sentences that repeat an earlier one
//! (chunks overlap, so neighbouring summaries often restate the same fact). `reduce` summarises
//! the joined summaries again; [`reduce_groups`] decides which summaries go into one pass so
//! that each group fits the model's window.

use std::collections::HashSet;
use std::ops::Range;

use crate::text::sentence_ranges;

/// How chunk summaries become one abstract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeStrategy {
    /// Summarise the joined chunk summaries again, recursively, until one abstract remains.
    #[default]
    Reduce,
    /// Join the chunk summaries in order, dropping repeated sentences.
    Concat,
}

impl std::str::FromStr for MergeStrategy {
    type Err = crate::Error;

    fn from_str(value: &str) -> crate::Result<Self> {
        match value {
            "reduce" => Ok(Self::Reduce),
            "concat" => Ok(Self::Concat),
            _ => Err(crate::Error::InvalidOption {
                option: "merge",
                value: value.to_string(),
                expected: "one of: reduce, concat".to_string(),
            }),
        }
    }
}

/// Two sentences whose word sets overlap at least this much (Jaccard) count as one.
const NEAR_DUPLICATE: f64 = 0.8;

/// Lower-case alphanumeric words: what decides whether two sentences say the same thing.
fn words(sentence: &str) -> Vec<String> {
    sentence
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn jaccard(a: &HashSet<String>, b: &HashSet<String>) -> f64 {
    let union = a.union(b).count();
    if union == 0 {
        return 1.0;
    }
    a.intersection(b).count() as f64 / union as f64
}

/// Join `summaries` in order with a space, dropping every sentence that repeats (exactly or
/// nearly, ignoring case and punctuation) a sentence kept before it.
pub fn concat(summaries: &[String]) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let mut seen: Vec<HashSet<String>> = Vec::new();
    for summary in summaries {
        for range in sentence_ranges(summary) {
            let sentence = summary[range].trim();
            let bag: HashSet<String> = words(sentence).into_iter().collect();
            if sentence.is_empty() {
                continue;
            }
            if seen
                .iter()
                .any(|earlier| jaccard(earlier, &bag) >= NEAR_DUPLICATE)
            {
                continue;
            }
            kept.push(sentence);
            seen.push(bag);
        }
    }
    kept.join(" ")
}

/// Split consecutive summaries into groups whose token counts add up to at most `budget`, each
/// to be summarised in one reduce pass. A summary larger than the budget forms a group alone
/// (the caller truncates it). Groups are never empty and cover every index in order.
pub fn reduce_groups(token_counts: &[usize], budget: usize) -> Vec<Range<usize>> {
    let mut groups = Vec::new();
    let mut start = 0;
    let mut used = 0;
    for (i, &count) in token_counts.iter().enumerate() {
        if i > start && used + count > budget {
            groups.push(start..i);
            start = i;
            used = 0;
        }
        used += count;
    }
    if start < token_counts.len() {
        groups.push(start..token_counts.len());
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_keeps_order_and_drops_repeats() {
        let summaries = vec![
            "The council approved the budget. Taxes will rise.".to_string(),
            "the council approved the budget! Schools get new roofs.".to_string(),
            "Schools get new roofs. Parking fees fall.".to_string(),
        ];
        assert_eq!(
            concat(&summaries),
            "The council approved the budget. Taxes will rise. Schools get new roofs. Parking fees fall."
        );
    }

    #[test]
    fn concat_drops_near_duplicates_only() {
        let summaries = vec![
            "The river flooded the old town on Monday night.".to_string(),
            "The river flooded the old town on Monday.".to_string(),
            "The river was calm on Tuesday.".to_string(),
        ];
        let merged = concat(&summaries);
        assert_eq!(
            merged,
            "The river flooded the old town on Monday night. The river was calm on Tuesday."
        );
    }

    #[test]
    fn concat_of_nothing_is_empty() {
        assert_eq!(concat(&[]), "");
        assert_eq!(concat(&["   ".to_string()]), "");
    }

    #[test]
    fn groups_pack_consecutive_summaries_within_budget() {
        assert_eq!(
            reduce_groups(&[100, 100, 100, 100, 100], 250),
            vec![0..2, 2..4, 4..5]
        );
        assert_eq!(reduce_groups(&[100, 100], 200), vec![0..2]);
        assert_eq!(reduce_groups(&[], 100), Vec::<Range<usize>>::new());
    }

    #[test]
    fn an_oversized_summary_forms_its_own_group() {
        assert_eq!(reduce_groups(&[50, 400, 50], 100), vec![0..1, 1..2, 2..3]);
    }

    #[test]
    fn merge_strategy_parses_and_names_bad_values() {
        assert_eq!(
            "concat".parse::<MergeStrategy>().unwrap(),
            MergeStrategy::Concat
        );
        let err = "mean".parse::<MergeStrategy>().unwrap_err().to_string();
        assert!(
            err.contains("merge") && err.contains("mean") && err.contains("reduce"),
            "{err}"
        );
    }
}
