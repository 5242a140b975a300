//! precis's ROUGE against Google's rouge-score 0.1.2 and NLTK 3.10.4, to the last bit: the golden
//! file is written by `scripts/rouge_goldens.py` (scores as Python repr strings, read back
//! exactly). Every pair of the corpus with and without the stemmer, the `--split-sentences`
//! cases (split by NLTK's Punkt), every stemmer edge case, the tokenizer on every corpus text and on every Unicode code
//! point, and the bootstrap interval given the same resamples (and the same seed).

use std::collections::BTreeSet;

use precis::eval::{
    self, BootstrapOptions, DocResult, NumpyLegacyRandom, RougeOptions, RougeType, Score,
};
use serde_json::Value;

fn golden() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/golden/rouge.json"
    );
    let text = std::fs::read_to_string(path).expect("golden file");
    serde_json::from_str(&text).expect("golden JSON")
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {value}"))
}

/// A score as the golden writes it: `[precision, recall, fmeasure]` as repr strings.
fn golden_score(value: &Value) -> Score {
    let parse = |i: usize| -> f64 {
        let repr = value[i].as_str().expect("repr string");
        repr.parse().expect("a float")
    };
    Score::from_array([parse(0), parse(1), parse(2)])
}

fn assert_same(got: Score, want: Score, what: &str) {
    let bits = |s: Score| s.to_array().map(f64::to_bits);
    assert_eq!(
        bits(got),
        bits(want),
        "{what}: got {got:?}, rouge-score {want:?}"
    );
}

fn options(stemmer: bool, split_sentences: bool) -> RougeOptions {
    RougeOptions {
        stemmer,
        split_sentences,
    }
}

fn check_pairs(pairs: &Value, split_sentences: bool) -> usize {
    let mut checked = 0;
    for pair in pairs.as_array().expect("pairs") {
        for (name, stemmer) in [("plain", false), ("stemmed", true)] {
            let scores = eval::score(
                text(pair, "reference"),
                text(pair, "prediction"),
                options(stemmer, split_sentences),
            );
            for rouge_type in RougeType::ALL {
                let want = golden_score(&pair["scores"][name][rouge_type.name()]);
                let what = format!("{} {name} {}", pair["id"], rouge_type.name());
                assert_same(scores.get(rouge_type), want, &what);
                checked += 1;
            }
        }
    }
    checked
}

#[test]
fn every_corpus_pair_scores_as_rouge_score_with_and_without_the_stemmer() {
    let golden = golden();
    assert_eq!(golden["versions"]["rouge_score"], "0.1.2");
    let checked = check_pairs(&golden["pairs"], false);
    assert!(checked >= 30 * 8, "{checked}");
}

#[test]
fn split_sentences_gives_the_expected_lines_and_their_scores() {
    let golden = golden();
    let pairs = &golden["split_pairs"];
    // Scores first: the last pairs score differently when sentences are split otherwise.
    check_pairs(pairs, true);
    for pair in pairs.as_array().expect("split pairs") {
        for side in ["reference", "prediction"] {
            let lines: Vec<&str> = pair[format!("{side}_sentences")]
                .as_array()
                .expect("sentences")
                .iter()
                .map(|s| s.as_str().expect("sentence"))
                .collect();
            assert_eq!(eval::split_sentences(text(pair, side)), lines.join("\n"));
        }
    }
}

#[test]
fn the_stemmer_agrees_with_nltk_on_every_edge_case() {
    let golden = golden();
    let stems = golden["stems"].as_array().expect("stems");
    let mut wrong = Vec::new();
    for entry in stems {
        let (word, want) = (text_at(entry, 0), text_at(entry, 1));
        let got = eval::stem(word);
        if got != want {
            wrong.push(format!("{word}: {got} (NLTK {want})"));
        }
    }
    assert!(stems.len() > 5000, "{}", stems.len());
    assert!(
        wrong.is_empty(),
        "{} of {}: {wrong:#?}",
        wrong.len(),
        stems.len()
    );
}

fn text_at(value: &Value, i: usize) -> &str {
    value[i].as_str().expect("string")
}

#[test]
fn the_tokenizer_agrees_on_every_corpus_text() {
    let golden = golden();
    for entry in golden["tokens"].as_array().expect("tokens") {
        for (name, stemmer) in [("plain", false), ("stemmed", true)] {
            let want: Vec<&str> = entry[name]
                .as_array()
                .expect("token list")
                .iter()
                .map(|t| t.as_str().expect("token"))
                .collect();
            assert_eq!(eval::tokenize(text(entry, "text"), stemmer), want, "{name}");
        }
    }
}

#[test]
fn only_the_code_points_python_lowercases_to_ascii_make_tokens() {
    let golden = golden();
    let want: BTreeSet<u32> = golden["lowercase_to_ascii"]
        .as_array()
        .expect("code points")
        .iter()
        .map(|entry| entry[0].as_u64().expect("code point") as u32)
        .collect();
    let got: BTreeSet<u32> = (0x80..=0x10FFFFu32)
        .filter_map(char::from_u32)
        .filter(|c| !eval::tokenize(&c.to_string(), false).is_empty())
        .map(u32::from)
        .collect();
    assert_eq!(got, want);
    assert_eq!(eval::tokenize("İ\u{212A}", false), ["i", "k"]);
}

/// The per-document scores the golden bootstrap aggregated: stemmed, corpus order.
fn bootstrap_docs(golden: &Value) -> Vec<DocResult> {
    golden["pairs"]
        .as_array()
        .expect("pairs")
        .iter()
        .map(|pair| DocResult {
            id: text(pair, "id").to_string(),
            rouge: eval::RougeScores(
                RougeType::ALL.map(|t| golden_score(&pair["scores"]["stemmed"][t.name()])),
            ),
            stats: eval::summary_stats(text(pair, "prediction"), None, None),
            seconds: None,
        })
        .collect()
}

fn golden_interval(value: &Value) -> eval::Interval {
    eval::Interval {
        low: golden_score(&value["low"]),
        mid: golden_score(&value["mid"]),
        high: golden_score(&value["high"]),
    }
}

#[test]
fn the_bootstrap_interval_matches_rouge_score_given_the_same_resamples() {
    let golden = golden();
    let bootstrap = &golden["bootstrap"];
    let docs = bootstrap_docs(&golden);
    for rouge_type in RougeType::ALL {
        let resamples: Vec<Vec<usize>> = bootstrap["indices"][rouge_type.name()]
            .as_array()
            .expect("resamples")
            .iter()
            .map(|sample| {
                let indices = sample.as_array().expect("indices");
                indices
                    .iter()
                    .map(|i| i.as_u64().expect("index") as usize)
                    .collect()
            })
            .collect();
        assert_eq!(resamples.len(), 200);
        let scores: Vec<Score> = docs.iter().map(|d| d.rouge.get(rouge_type)).collect();
        let got = eval::interval(&scores, resamples, 0.95).expect("documents");
        let want = golden_interval(&bootstrap["aggregate"][rouge_type.name()]);
        for (bound, g, w) in [
            ("low", got.low, want.low),
            ("mid", got.mid, want.mid),
            ("high", got.high, want.high),
        ] {
            assert_same(g, w, &format!("{} {bound}", rouge_type.name()));
        }
    }
}

#[test]
fn the_seeded_resamples_are_numpys_and_give_rouge_score_s_interval() {
    let golden = golden();
    let bootstrap = &golden["bootstrap"];
    let seed = bootstrap["seed"].as_u64().expect("seed") as u32;
    let docs = bootstrap_docs(&golden);
    let mut random = NumpyLegacyRandom::new(seed);
    for rouge_type in RougeType::ALL {
        for sample in bootstrap["indices"][rouge_type.name()]
            .as_array()
            .expect("resamples")
        {
            let want: Vec<usize> = sample
                .as_array()
                .expect("indices")
                .iter()
                .map(|i| i.as_u64().expect("index") as usize)
                .collect();
            assert_eq!(random.resample(docs.len()), want, "{}", rouge_type.name());
        }
    }
    let options = BootstrapOptions {
        samples: 200,
        confidence: 0.95,
        seed,
    };
    let aggregate = eval::aggregate(&docs, &options);
    for rouge_type in RougeType::ALL {
        let got = aggregate.rouge(rouge_type).interval.expect("interval");
        let want = golden_interval(&bootstrap["aggregate"][rouge_type.name()]);
        assert_same(got.mid, want.mid, rouge_type.name());
        assert_same(got.low, want.low, rouge_type.name());
        assert_same(got.high, want.high, rouge_type.name());
    }
}

#[test]
fn percentiles_interpolate_as_numpy_on_both_sides_of_the_midpoint() {
    let golden = golden();
    for case in golden["percentiles"].as_array().expect("percentile cases") {
        let values = case_values(case);
        let want = golden_score(&case["percentiles"]).to_array();
        let scores: Vec<Score> = values.iter().map(|&v| Score::from_array([v; 3])).collect();
        // Resamples of one document each: their means are the values themselves.
        let resamples = (0..values.len()).map(|i| vec![i]);
        let got = eval::interval(&scores, resamples, 0.95).expect("values");
        let got = [got.low.recall, got.mid.recall, got.high.recall];
        assert_eq!(
            got.map(f64::to_bits),
            want.map(f64::to_bits),
            "{} values",
            values.len()
        );
    }
}

fn case_values(case: &Value) -> Vec<f64> {
    let values = case["values"].as_array().expect("values");
    values
        .iter()
        .map(|v| v.as_str().expect("repr").parse().expect("float"))
        .collect()
}

#[test]
fn the_mean_is_numpys_to_the_last_bit() {
    let golden = golden();
    let options = BootstrapOptions {
        samples: 0,
        ..BootstrapOptions::default()
    };
    for case in golden["percentiles"].as_array().expect("cases") {
        let values = case_values(case);
        let want: f64 = text(case, "mean").parse().expect("float");
        let docs: Vec<DocResult> = values
            .iter()
            .map(|&v| DocResult {
                id: String::new(),
                rouge: eval::RougeScores([Score::from_array([v; 3]); 4]),
                stats: eval::summary_stats("", None, None),
                seconds: None,
            })
            .collect();
        let got = eval::aggregate(&docs, &options).rouge_lsum.mean.fmeasure;
        assert_eq!(
            got.to_bits(),
            want.to_bits(),
            "np.mean of {} values",
            values.len()
        );
    }
}
