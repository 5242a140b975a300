//! How one matrix product is cut into parallel tasks: blocks of rows (tokens) times runs of
//! weight units (the float32 product's panels, the int8 product's feature blocks).
//!
//! A split by units alone left one of two threads a third more work on 1024-wide products, and
//! a split by rows alone would read every weight once per thread; both together give a few
//! threads even shares whatever the shape. Each output is still computed by one task, over the
//! inputs in order: the grid changes who computes it, never how, so results do not depend on
//! the number of rows or threads.

use std::ops::Range;

/// Rows per block: their inputs for one cache block of weights stay in L2.
pub const ROW_BLOCK: usize = 256;

/// The tasks of one product of `rows` rows with `units` weight units.
pub struct Grid {
    rows: usize,
    units: usize,
    per_task: usize,
    unit_runs: usize,
}

impl Grid {
    pub fn new(rows: usize, units: usize) -> Self {
        let row_blocks = rows.div_ceil(ROW_BLOCK).max(1);
        // Enough tasks to balance the threads, each at least one unit; a product over many rows
        // (the encoder) cuts finer, as its tasks are long.
        let per_thread = if row_blocks > 1 { 8 } else { 4 };
        let wanted = rayon::current_num_threads() * per_thread;
        let unit_runs = wanted.div_ceil(row_blocks).clamp(1, units.max(1));
        let per_task = units.div_ceil(unit_runs).max(1);
        Self {
            rows,
            units,
            per_task,
            unit_runs: units.div_ceil(per_task),
        }
    }

    pub fn tasks(&self) -> usize {
        self.rows.div_ceil(ROW_BLOCK) * self.unit_runs
    }

    /// Task `i`'s rows and units.
    pub fn task(&self, i: usize) -> (Range<usize>, Range<usize>) {
        let (block, run) = (i / self.unit_runs, i % self.unit_runs);
        let first = block * ROW_BLOCK;
        let unit = run * self.per_task;
        (
            first..self.rows.min(first + ROW_BLOCK),
            unit..self.units.min(unit + self.per_task),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_and_unit_is_in_exactly_one_task() {
        for (rows, units) in [(1, 1), (1, 11), (3, 670), (257, 32), (600, 5), (1024, 43)] {
            let grid = Grid::new(rows, units);
            let mut seen = vec![0u8; rows * units];
            for i in 0..grid.tasks() {
                let (rows_of, units_of) = grid.task(i);
                assert!(
                    !rows_of.is_empty() && !units_of.is_empty(),
                    "task {i} is empty"
                );
                for r in rows_of {
                    for u in units_of.clone() {
                        seen[r * units + u] += 1;
                    }
                }
            }
            assert!(seen.iter().all(|&n| n == 1), "{rows} rows x {units} units");
        }
    }
}
