//! Grouping texts into padded model batches: longest first, so that a batch holds similar
//! lengths and little compute goes to padding, capped by rows and by padded tokens.

use super::SummaryOptions;

const CPU_ROWS: usize = 8;
const GPU_ROWS: usize = 32;

#[derive(Debug, Clone, Copy)]
pub(super) struct Batches {
    max_rows: usize,
    /// Most padded tokens (rows × longest row) per batch.
    max_tokens: Option<usize>,
}

impl Batches {
    pub(super) fn new(options: &SummaryOptions, cpu: bool) -> Self {
        let default_rows = if cpu { CPU_ROWS } else { GPU_ROWS };
        Self {
            max_rows: options.batch_size.unwrap_or(default_rows).max(1),
            max_tokens: options.batch_tokens,
        }
    }

    /// Splits `items` into batches, longest first by `len`. A batch always takes at least one
    /// item, even one longer than the token cap.
    pub(super) fn split(&self, items: &[usize], len: impl Fn(usize) -> usize) -> Vec<Vec<usize>> {
        let mut sorted = items.to_vec();
        // Stable, so equal lengths keep their order and runs are reproducible.
        sorted.sort_by_key(|&i| std::cmp::Reverse(len(i)));
        let mut batches: Vec<Vec<usize>> = Vec::new();
        let mut current: Vec<usize> = Vec::new();
        for item in sorted {
            // Sorted longest first, so the batch's first item sets its padded width.
            let width = current.first().map_or(len(item), |&first| len(first));
            let over_tokens = self
                .max_tokens
                .is_some_and(|cap| (current.len() + 1) * width > cap);
            if !current.is_empty() && (current.len() == self.max_rows || over_tokens) {
                batches.push(std::mem::take(&mut current));
            }
            current.push(item);
        }
        if !current.is_empty() {
            batches.push(current);
        }
        batches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batches(rows: usize, tokens: Option<usize>) -> Batches {
        Batches {
            max_rows: rows,
            max_tokens: tokens,
        }
    }

    #[test]
    fn longest_first_and_row_cap() {
        let lens = [5, 50, 20, 40];
        let split = batches(2, None).split(&[0, 1, 2, 3], |i| lens[i]);
        assert_eq!(split, vec![vec![1, 3], vec![2, 0]]);
    }

    #[test]
    fn token_cap_counts_padding() {
        let lens = [100, 90, 10, 10];
        // 2 × 100 = 200 fits, a third row would pad to 300.
        let split = batches(8, Some(200)).split(&[0, 1, 2, 3], |i| lens[i]);
        assert_eq!(split, vec![vec![0, 1], vec![2, 3]]);
    }

    #[test]
    fn an_item_over_the_token_cap_still_runs_alone() {
        let lens = [500, 10];
        let split = batches(8, Some(100)).split(&[0, 1], |i| lens[i]);
        assert_eq!(split, vec![vec![0], vec![1]]);
    }
}
