//! Hand-written CPU kernels for the decoder step, where candle's general kernels waste time,
//! and (with the `cuda` feature) one CUDA kernel for the attention weights.
//!
//! Each takes plain slices and has a plain-loop fallback, so the model code stays tensor math
//! and chooses a kernel only through small helpers like [`linear::Linear`](super::linear).
//! Which compiled variant runs is decided once, in [`path`].

mod amx;
pub mod attention;
pub(crate) mod awake;
pub mod bf16;
#[cfg(feature = "cuda")]
pub mod cuda_softmax;
pub mod gelu;
mod grid;
pub mod int8;
mod int8_tile;
mod microkernel;
pub mod multi_query;
pub mod norm;
pub mod packed;
pub mod path;
pub mod skinny;
pub mod softmax;
mod transpose;

/// Deterministic, varied test inputs in [-1.5, 1.8).
#[cfg(test)]
fn test_values(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|i| {
            ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 1000) as f32 / 300.0 - 1.5
        })
        .collect()
}

/// Asserts that every row of `product(x, rows)` (a `(rows, out)` result of `rows` input rows of
/// `inner`) is bit-identical to that row's product alone, for batches of many sizes (every tile
/// tail and more than one token block): batch-invariance of a kernel.
#[cfg(test)]
fn assert_rows_independent(what: &str, inner: usize, product: impl Fn(&[f32], usize) -> Vec<f32>) {
    for rows in [2, 5, 8, 9, 17, 33, 300] {
        let x = test_values(rows * inner, rows as u32);
        let together = product(&x, rows);
        let out = together.len() / rows;
        for r in [0, rows / 2, rows - 1] {
            let alone = product(&x[r * inner..(r + 1) * inner], 1);
            let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&together[r * out..(r + 1) * out]),
                bits(&alone),
                "{what}: row {r} of {rows} differs from the row alone"
            );
        }
    }
}

/// Asserts that a product written into a buffer that held NaN, 1e30 or -0.0 has the same bits
/// as a fresh one (`into` against `fresh`, both given a path, inputs, bias and row count), on
/// every path, for `rows_list` rows of `inner` inputs, with and without a bias of `out`: the
/// products write every output without reading it, so neither a stale value nor an unwritten
/// one may show.
#[cfg(test)]
fn assert_overwrites_its_output(
    (inner, out): (usize, usize),
    rows_list: &[usize],
    fresh: impl Fn(path::KernelPath, &[f32], Option<&[f32]>, usize) -> Vec<f32>,
    into: impl Fn(path::KernelPath, &[f32], Option<&[f32]>, usize, &mut [f32]),
) {
    let bias = test_values(out, 8);
    let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    for path in path::KernelPath::supported() {
        for &rows in rows_list {
            let x = test_values(rows * inner, 9);
            for bias in [None, Some(bias.as_slice())] {
                let want = fresh(path, &x, bias, rows);
                for held in [f32::NAN, 1e30, -0.0] {
                    let mut y = vec![held; rows * out];
                    into(path, &x, bias, rows, &mut y);
                    assert_eq!(
                        bits(&y),
                        bits(&want),
                        "{path}, {rows} rows, bias {}, buffer of {held}",
                        bias.is_some()
                    );
                }
            }
        }
    }
}
