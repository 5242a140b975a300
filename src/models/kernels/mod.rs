//! Hand-written CPU kernels for the decoder step, where candle's general kernels waste time.
//!
//! Each takes plain slices and has a plain-loop fallback, so the model code stays tensor math
//! and chooses a kernel only through small helpers like [`linear::Linear`](super::linear).
//! Which compiled variant runs is decided once, in [`path`].

pub mod attention;
pub mod gemm;
pub mod int8;
mod int8_tile;
mod microkernel;
pub mod multi_query;
pub mod norm;
pub mod packed;
pub mod path;
pub mod skinny;
pub mod softmax;

/// Deterministic, varied test inputs in [-1.5, 1.8).
#[cfg(test)]
fn test_values(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|i| {
            ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 1000) as f32 / 300.0 - 1.5
        })
        .collect()
}
