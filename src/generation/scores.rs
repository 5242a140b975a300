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
    let max = max_ignoring_nan(row);
    let sum: f64 = row.iter().map(|&x| f64::from((x - max).exp())).sum();
    let log_sum = sum.ln() as f32;
    for x in row.iter_mut() {
        *x = (*x - max) - log_sum;
    }
}

/// The largest value, skipping NaN (a fold with `f32::max` from -inf, as before: -inf for a row
/// of NaN). Taken in [`BLOCK`] independent lanes, which the compiler vectorises: a maximum does
/// not depend on the order it is taken in.
fn max_ignoring_nan(row: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; BLOCK];
    let blocks = row.chunks_exact(BLOCK);
    let rest = blocks.remainder();
    for block in blocks {
        for (lane, &x) in lanes.iter_mut().zip(block) {
            *lane = lane.max(x);
        }
    }
    lanes
        .into_iter()
        .chain(rest.iter().copied())
        .fold(f32::NEG_INFINITY, f32::max)
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
    let mut best = TopK::new(k);
    for (i, x) in values.into_iter().enumerate() {
        best.offer(i, x);
    }
    best.into_sorted()
}

/// [`top_k`] fed in pieces: values are offered in increasing index order.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    /// At most `k` entries, best first.
    best: Vec<(usize, f32)>,
}

/// Values checked together by [`TopK::offer_shifted`] before any of them is looked at alone.
const BLOCK: usize = 16;

impl TopK {
    pub fn new(k: usize) -> Self {
        Self {
            k,
            best: Vec::with_capacity(k + 1),
        }
    }

    /// Offers `x` as the value at `index`, after every lower index.
    #[inline]
    pub fn offer(&mut self, index: usize, x: f32) {
        if self.k == 0 || (self.best.len() == self.k && !ranks_before(x, self.best[self.k - 1].1)) {
            return;
        }
        // After every kept value that `x` does not beat, so equal values stay in index order.
        let at = self
            .best
            .partition_point(|&(_, kept)| !ranks_before(x, kept));
        self.best.insert(at, (index, x));
        self.best.truncate(self.k);
    }

    /// Offers `values[j] + shift` (rounded in f32) as the value at `first + j`, for every `j`.
    ///
    /// Once `k` values are kept, almost no value of a long row enters: each block of values is
    /// first compared with the worst kept one in a single vectorisable pass, and only a block
    /// with a value that ranks before it is offered value by value. The result is the same as
    /// offering every value.
    pub fn offer_shifted(&mut self, first: usize, values: &[f32], shift: f32) {
        for (b, block) in values.chunks(BLOCK).enumerate() {
            let full = self.k > 0 && self.best.len() == self.k;
            if full {
                let bar = self.best[self.k - 1].1;
                let enters = block
                    .iter()
                    .fold(false, |any, &v| any | ranks_before(v + shift, bar));
                if !enters {
                    continue;
                }
            }
            for (j, &v) in block.iter().enumerate() {
                self.offer(first + b * BLOCK + j, v + shift);
            }
        }
    }

    /// The kept values with their indices, best first.
    pub fn into_sorted(self) -> Vec<(usize, f32)> {
        self.best
    }
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
    fn the_lane_wise_maximum_is_the_folded_one() {
        let mut row: Vec<f32> = (0..37u32).map(|i| ((i * 13) % 17) as f32 - 20.0).collect();
        row[33] = -1.5;
        let folded = |r: &[f32]| r.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        assert_eq!(max_ignoring_nan(&row), -1.5);
        row[5] = f32::NAN;
        assert_eq!(max_ignoring_nan(&row), folded(&row));
        assert_eq!(max_ignoring_nan(&[f32::NAN; 20]), f32::NEG_INFINITY);
        assert_eq!(max_ignoring_nan(&[]), f32::NEG_INFINITY);
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
    fn offering_shifted_rows_in_blocks_matches_offering_every_value() {
        // Rows longer than a block with a ragged end, ties across rows and blocks, NaN and
        // infinities; each row shifted by its own score, as beam search does.
        let row: Vec<f32> = (0..41u32)
            .map(|i| ((i * 29 + 5) % 11) as f32 * 0.25)
            .collect();
        let mut odd = row.clone();
        odd[3] = f32::NAN;
        odd[20] = f32::INFINITY;
        odd[39] = f32::NEG_INFINITY;
        let rows = [(row.clone(), 0.0f32), (odd, -0.5), (row, 1.0)];
        for k in [0, 1, 3, 8, 130] {
            let mut streamed = TopK::new(k);
            let mut first = 0;
            for (values, shift) in &rows {
                streamed.offer_shifted(first, values, *shift);
                first += values.len();
            }
            let each = rows
                .iter()
                .flat_map(|(values, shift)| values.iter().map(move |v| v + shift));
            let want = top_k(each, k);
            let got = streamed.into_sorted();
            let bits = |v: &[(usize, f32)]| -> Vec<(usize, u32)> {
                v.iter().map(|&(i, x)| (i, x.to_bits())).collect()
            };
            assert_eq!(bits(&got), bits(&want), "k = {k}");
        }
    }

    #[test]
    fn top_k_ranks_nan_first_and_neg_inf_last() {
        let values = [f32::NEG_INFINITY, 1.0, f32::NAN, f32::NEG_INFINITY];
        let got: Vec<usize> = top_k(values, 4).into_iter().map(|(i, _)| i).collect();
        assert_eq!(got, vec![2, 1, 0, 3]);
    }
}
