//! Numeric helpers over one row of scores: log-softmax, argmax and a tie-stable top-k.
//!
//! They rank the way torch does where torch defines it: NaN counts as the largest value, and
//! argmax returns the first maximum. For top-k ties (which torch leaves unspecified) the lower
//! index wins, so results are at least deterministic.

use std::cmp::Ordering;

/// Whether `a` ranks strictly before `b` in a descending order that puts NaN first.
fn ranks_before(a: f32, b: f32) -> bool {
    (a.is_nan() && !b.is_nan()) || a > b
}

/// Descending comparison with NaN first; equal values compare equal (so sorts stay stable).
pub fn descending(a: f32, b: f32) -> Ordering {
    if ranks_before(a, b) {
        Ordering::Less
    } else if ranks_before(b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

/// Replace logits by log-probabilities in place, in f32 like transformers, as `(x - max) - ln Σ`.
/// The sum is accumulated in f64: torch's vectorised f32 sum depends on the CPU's SIMD width, so
/// no fixed order reproduces it everywhere, and the most accurate sum is the closest on average.
pub fn log_softmax_in_place(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = row.iter().map(|&x| f64::from((x - max).exp())).sum();
    let log_sum = sum.ln() as f32;
    for x in row.iter_mut() {
        *x = (*x - max) - log_sum;
    }
}

/// Index of the first largest value (NaN counting as largest), as `torch.argmax`.
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate().skip(1) {
        if ranks_before(x, row[best]) {
            best = i;
        }
    }
    best
}

/// The `k` largest values with their indices, best first; ties keep index order.
///
/// Streams once over `values` keeping a sorted buffer of `k`, which beats sorting when, as in
/// beam search, `k` is a handful and `values` spans beams × vocabulary.
pub fn top_k(values: impl IntoIterator<Item = f32>, k: usize) -> Vec<(usize, f32)> {
    let mut best: Vec<(usize, f32)> = Vec::with_capacity(k + 1);
    if k == 0 {
        return best;
    }
    for (i, x) in values.into_iter().enumerate() {
        if best.len() == k && !ranks_before(x, best[k - 1].1) {
            continue;
        }
        // After every kept value that `x` does not beat, so equal values stay in index order.
        let at = best.partition_point(|&(_, kept)| !ranks_before(x, kept));
        best.insert(at, (i, x));
        best.truncate(k);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_softmax_normalises() {
        let mut row = vec![1.0f32, 2.0, 3.0, f32::NEG_INFINITY];
        log_softmax_in_place(&mut row);
        let total: f32 = row.iter().map(|x| x.exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
        assert_eq!(row[3], f32::NEG_INFINITY);
        // Shifting logits leaves log-probabilities unchanged.
        let mut shifted = vec![101.0f32, 102.0, 103.0, f32::NEG_INFINITY];
        log_softmax_in_place(&mut shifted);
        for (a, b) in row.iter().zip(&shifted) {
            assert!(a == b || (a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn argmax_takes_first_maximum_and_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[1.0, f32::NAN, 3.0]), 1);
        assert_eq!(argmax(&[f32::NEG_INFINITY; 3]), 0);
    }

    #[test]
    fn top_k_is_sorted_and_stable() {
        let values = [0.5f32, 2.0, -1.0, 2.0, 0.5, 3.0];
        assert_eq!(
            top_k(values, 4),
            vec![(5, 3.0), (1, 2.0), (3, 2.0), (0, 0.5)]
        );
        assert_eq!(top_k(values, 0), vec![]);
        assert_eq!(top_k(values, 10).len(), values.len());
    }

    #[test]
    fn top_k_matches_a_stable_sort() {
        // Many ties: values drawn from a small set.
        let values: Vec<f32> = (0..200u32).map(|i| ((i * 37 + 11) % 7) as f32).collect();
        let mut sorted: Vec<(usize, f32)> = values.iter().copied().enumerate().collect();
        sorted.sort_by(|a, b| descending(a.1, b.1));
        for k in [1, 5, 31, 200] {
            assert_eq!(top_k(values.iter().copied(), k), sorted[..k].to_vec());
        }
    }

    #[test]
    fn top_k_ranks_nan_first_and_neg_inf_last() {
        let values = [f32::NEG_INFINITY, 1.0, f32::NAN, f32::NEG_INFINITY];
        let got: Vec<usize> = top_k(values, 4).into_iter().map(|(i, _)| i).collect();
        assert_eq!(got, vec![2, 1, 0, 3]);
    }
}
