//! Confidence intervals like rouge-score's `scoring.BootstrapAggregator`: resample the documents
//! with replacement many times, take the mean of each resample, and report the 2.5th, 50th and
//! 97.5th percentiles of those means (NumPy's default linear interpolation) as low, mid, high.
//!
//! The resamples are an input ([`interval`] takes them), so the same resamples give the same
//! interval to the last bit as the Python code. [`NumpyLegacyRandom`] draws them exactly as
//! `np.random.seed(seed)` followed by rouge-score's `np.random.choice(np.arange(n), size=n)`
//! calls would (MT19937 and NumPy's masked rejection sampling), so that with the same seed precis
//! and Python agree without exchanging indices.

use rand_mt::Mt;
use serde::Serialize;

use super::rouge::Score;

/// rouge-score's default number of resamples.
pub const DEFAULT_SAMPLES: usize = 1000;
/// rouge-score's default confidence.
pub const DEFAULT_CONFIDENCE: f64 = 0.95;

/// The bounds of a bootstrap interval on the mean, per measure (`AggregateScore`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub low: Score,
    pub mid: Score,
    pub high: Score,
}

/// The interval of the mean of `scores` over `resamples` (each a list of document indices, as
/// many as there are documents); `None` when there are no documents or no resamples.
///
/// # Panics
/// Never on valid input; an index outside `scores` is a caller bug and panics.
pub fn interval<I>(scores: &[Score], resamples: I, confidence: f64) -> Option<Interval>
where
    I: IntoIterator<Item = Vec<usize>>,
{
    if scores.is_empty() {
        return None;
    }
    let mut means: [Vec<f64>; 3] = Default::default();
    for sample in resamples {
        // np.mean(matrix[sample], axis=0): a plain running sum down the rows, then one division.
        let mut sums = [0.0f64; 3];
        for &doc in &sample {
            let row = scores[doc].to_array();
            for (sum, value) in sums.iter_mut().zip(row) {
                *sum += value;
            }
        }
        for (column, sum) in means.iter_mut().zip(sums) {
            column.push(sum / sample.len() as f64);
        }
    }
    if means[0].is_empty() {
        return None;
    }
    // As rouge-score: q = 100 * [delta, 0.5, 1 - delta], which np.percentile divides by 100.
    let delta = (1.0 - confidence) / 2.0;
    let quantiles = [100.0 * delta, 100.0 * 0.5, 100.0 * (1.0 - delta)].map(|q| q / 100.0);
    for column in &mut means {
        column.sort_by(f64::total_cmp);
    }
    let bound = |quantile: f64| {
        Score::from_array([0, 1, 2].map(|measure| percentile(&means[measure], quantile)))
    };
    Some(Interval {
        low: bound(quantiles[0]),
        mid: bound(quantiles[1]),
        high: bound(quantiles[2]),
    })
}

/// `np.percentile(values, 100 * quantile)` with the default "linear" method, on sorted values.
fn percentile(sorted: &[f64], quantile: f64) -> f64 {
    let n = sorted.len();
    let virtual_index = (n - 1) as f64 * quantile;
    let (below, above, gamma) = if virtual_index >= (n - 1) as f64 {
        // NumPy points both neighbours at the last value (index -1) here.
        (n - 1, n - 1, virtual_index + 1.0)
    } else {
        let floor = virtual_index.floor();
        (floor as usize, floor as usize + 1, virtual_index - floor)
    };
    lerp(sorted[below], sorted[above], gamma)
}

/// NumPy's `_lerp`, which interpolates from the nearer end for accuracy.
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// NumPy's legacy global generator (`np.random.seed`, `np.random.choice`), enough of it to draw
/// bootstrap resamples exactly as rouge-score does.
pub struct NumpyLegacyRandom {
    mt: Mt,
}

impl NumpyLegacyRandom {
    /// `np.random.seed(seed)` for an integer seed (MT19937's `init_genrand`).
    pub fn new(seed: u32) -> Self {
        NumpyLegacyRandom { mt: Mt::new(seed) }
    }

    /// `np.random.choice(np.arange(n), size=n)`: `n` indices below `n`, with replacement.
    pub fn resample(&mut self, n: usize) -> Vec<usize> {
        (0..n).map(|_| self.below(n)).collect()
    }

    /// A uniform integer in `0..n` by NumPy's legacy masked rejection: draw 32 bits, keep the
    /// bits of the smallest all-ones mask covering `n - 1`, retry above it. Draws nothing when
    /// `n` is 1, as NumPy does. Resample sizes beyond `u32` are not needed for documents.
    fn below(&mut self, n: usize) -> usize {
        let max = (n - 1) as u32;
        if max == 0 {
            return 0;
        }
        let mask = u32::MAX >> max.leading_zeros();
        loop {
            let value = self.mt.next_u32() & mask;
            if value <= max {
                return value as usize;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(values: &[f64]) -> Vec<Score> {
        values
            .iter()
            .map(|&v| Score::from_array([v, v, v]))
            .collect()
    }

    #[test]
    fn percentiles_interpolate_like_numpy() {
        let sorted = [1.0, 2.0, 4.0, 8.0];
        // np.percentile([1, 2, 4, 8], [0, 25, 50, 100]) == [1, 1.75, 3, 8]
        assert_eq!(percentile(&sorted, 0.0), 1.0);
        assert_eq!(percentile(&sorted, 0.25), 1.75);
        assert_eq!(percentile(&sorted, 0.5), 3.0);
        assert_eq!(percentile(&sorted, 1.0), 8.0);
    }

    #[test]
    fn interval_of_identical_resamples_is_their_mean() {
        let docs = scores(&[0.0, 0.5, 1.0]);
        let resamples = vec![vec![0, 1, 2]; 5];
        let interval = interval(&docs, resamples, 0.95).expect("documents");
        assert_eq!(interval.low.fmeasure, 0.5);
        assert_eq!(interval.high.fmeasure, 0.5);
        assert!(super::interval(&[], vec![vec![0]], 0.95).is_none());
        assert!(super::interval(&docs, Vec::<Vec<usize>>::new(), 0.95).is_none());
    }

    #[test]
    fn one_document_draws_nothing() {
        let mut random = NumpyLegacyRandom::new(42);
        assert_eq!(random.resample(1), [0]);
        // The stream is untouched: the next draw equals a fresh generator's first.
        assert_eq!(random.resample(7), NumpyLegacyRandom::new(42).resample(7));
    }
}
