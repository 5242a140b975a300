//! `x · Wᵀ` for the few rows of a decoder step (batch × beams), on the CPU, in float32.
//!
//! A decoder step multiplies a handful of rows by every weight matrix of the decoder and by the
//! vocabulary head. The general GEMM behind candle packs the weight into panels on every call —
//! a full extra copy of each matrix per step — and is tuned for big square products. Here the
//! weight is streamed once, straight from its PyTorch `(out, in)` layout: each thread takes a
//! range of output features and dots every weight row with all input rows while it is in cache.
//! At batch 1 that makes a step as fast as memory can deliver the weights.

use rayon::prelude::*;

use super::packed::SharedOut;
use super::path::{self, KernelPath};

/// Output features per parallel task: 64 rows of a 512-wide matrix are 128 KiB, enough work to
/// amortise the task and few enough that both threads stay busy on the smallest matrices.
const FEATURES_PER_TASK: usize = 64;

/// `y (rows, out) = x (rows, inner) · w (out, inner)ᵀ (+ bias)`, all row-major.
pub fn matmul_transposed(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    rows: usize,
    inner: usize,
    out: usize,
) -> Vec<f32> {
    matmul_transposed_on(path::active(), x, w, bias, rows, inner, out)
}

/// [`matmul_transposed`] on a given path, which the CPU must support.
pub(crate) fn matmul_transposed_on(
    path: KernelPath,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    rows: usize,
    inner: usize,
    out: usize,
) -> Vec<f32> {
    assert_eq!(
        x.len(),
        rows * inner,
        "matmul_transposed: {rows} rows of {inner}"
    );
    assert_eq!(
        w.len(),
        out * inner,
        "matmul_transposed: {out} features of {inner}"
    );
    let mut y = vec![0f32; rows * out];
    let dst = SharedOut(y.as_mut_ptr());
    let tasks = out.div_ceil(FEATURES_PER_TASK);
    (0..tasks).into_par_iter().for_each(|task| {
        let first = task * FEATURES_PER_TASK;
        let features = FEATURES_PER_TASK.min(out - first);
        // Computed transposed (feature-major), then written into the task's own columns of
        // every row, bias added: the tasks share the copy as well as the products.
        let mut yt = vec![0f32; features * rows];
        let w = &w[first * inner..(first + features) * inner];
        dot_block(path, x, w, rows, inner, &mut yt);
        for (j, column) in yt.chunks_exact(rows).enumerate() {
            let b = bias.map_or(0.0, |b| b[first + j]);
            for (row, value) in column.iter().enumerate() {
                // SAFETY: `row < rows` and `first + j < out`: inside `y`, in columns
                // `first..first + features`, which no other task writes.
                unsafe { *dst.at(row * out + first + j) = value + b };
            }
        }
    });
    y
}

/// `yt[f * rows + r] = dot(w[f], x[r])` for every feature row `f` of `w`.
fn dot_block(path: KernelPath, x: &[f32], w: &[f32], rows: usize, inner: usize, yt: &mut [f32]) {
    match path.vector_kernels() {
        // SAFETY (both arms): the CPU supports the path's features (`path` is one it runs).
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx512 => unsafe { avx512::dot_block(x, w, rows, inner, yt) },
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2 | KernelPath::Avx2Vnni => unsafe {
            avx2::dot_block(x, w, rows, inner, yt)
        },
        _ => dot_block_portable(x, w, rows, inner, yt),
    }
}

fn dot_block_portable(x: &[f32], w: &[f32], rows: usize, inner: usize, yt: &mut [f32]) {
    for (f, w_row) in w.chunks_exact(inner).enumerate() {
        for (r, x_row) in x.chunks_exact(inner).enumerate() {
            yt[f * rows + r] = w_row.iter().zip(x_row).map(|(a, b)| a * b).sum();
        }
    }
}

// Register tiles are indexed by position on purpose: the loops unroll into fixed registers.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::needless_range_loop)]
mod avx2 {
    use std::arch::x86_64::*;

    /// Weight rows handled together: each x chunk loaded is used for this many FMAs.
    const W_ROWS: usize = 1;
    /// Input rows handled together: each weight chunk loaded is used this many times.
    /// 4 × 2 accumulators + 4 weight registers + 1 input register fit AVX2's 16 registers.
    const X_ROWS: usize = 4;

    /// Each tile of [`X_ROWS`] input rows (then the rows left one by one) against the task's
    /// weight rows: the tile stays in L1 and the weights in L2 (see the AVX-512 kernel).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_block(x: &[f32], w: &[f32], rows: usize, inner: usize, yt: &mut [f32]) {
        let features = w.len() / inner;
        let mut r = 0;
        while r + X_ROWS <= rows {
            let mut f = 0;
            while f + W_ROWS <= features {
                let sums = unsafe { tile::<W_ROWS, X_ROWS>(x, w, f, r, inner) };
                for (i, row_sums) in sums.iter().enumerate() {
                    for (j, s) in row_sums.iter().enumerate() {
                        yt[(f + i) * rows + r + j] = *s;
                    }
                }
                f += W_ROWS;
            }
            while f < features {
                let sums = unsafe { tile::<1, X_ROWS>(x, w, f, r, inner) };
                for (j, s) in sums[0].iter().enumerate() {
                    yt[f * rows + r + j] = *s;
                }
                f += 1;
            }
            r += X_ROWS;
        }
        while r < rows {
            for f in 0..features {
                yt[f * rows + r] = unsafe { tile::<1, 1>(x, w, f, r, inner) }[0][0];
            }
            r += 1;
        }
    }

    /// Dot products of weight rows `f..f+WR` with input rows `r..r+XR`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn tile<const WR: usize, const XR: usize>(
        x: &[f32],
        w: &[f32],
        f: usize,
        r: usize,
        inner: usize,
    ) -> [[f32; XR]; WR] {
        // Two accumulators per pair along k, so consecutive FMAs do not wait on each other.
        let mut acc = [[[_mm256_setzero_ps(); 2]; XR]; WR];
        let vector_end = inner - inner % 16;
        let w_ptr = unsafe { w.as_ptr().add(f * inner) };
        let x_ptr = unsafe { x.as_ptr().add(r * inner) };
        let mut k = 0;
        while k < vector_end {
            for u in 0..2 {
                let mut wv = [_mm256_setzero_ps(); WR];
                for (i, wv) in wv.iter_mut().enumerate() {
                    // SAFETY: row f+i < features and k+16 <= inner: the load stays inside `w`.
                    *wv = unsafe { _mm256_loadu_ps(w_ptr.add(i * inner + k + 8 * u)) };
                }
                for j in 0..XR {
                    // SAFETY: row r+j < rows and k+16 <= inner: the load stays inside `x`.
                    let xv = unsafe { _mm256_loadu_ps(x_ptr.add(j * inner + k + 8 * u)) };
                    for i in 0..WR {
                        acc[i][j][u] = _mm256_fmadd_ps(wv[i], xv, acc[i][j][u]);
                    }
                }
            }
            k += 16;
        }
        let mut sums = [[0f32; XR]; WR];
        for i in 0..WR {
            for j in 0..XR {
                let mut s = horizontal_sum(_mm256_add_ps(acc[i][j][0], acc[i][j][1]));
                for t in vector_end..inner {
                    s += w[(f + i) * inner + t] * x[(r + j) * inner + t];
                }
                sums[i][j] = s;
            }
        }
        sums
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn horizontal_sum(v: __m256) -> f32 {
        let halves = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let pairs = _mm_add_ps(halves, _mm_movehl_ps(halves, halves));
        let single = _mm_add_ss(pairs, _mm_shuffle_ps(pairs, pairs, 1));
        _mm_cvtss_f32(single)
    }
}

// Register tiles are indexed by position on purpose: the loops unroll into fixed registers.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::needless_range_loop)]
mod avx512 {
    use std::arch::x86_64::*;

    /// Input rows handled together: each weight vector loaded is used this many times.
    /// 8 × 2 accumulators + 2 weight registers + 1 input register of AVX-512's 32.
    const X_ROWS: usize = 8;

    /// Like the AVX2 kernel, one weight row at a time (a single sequential stream per task,
    /// which the hardware prefetcher follows), against up to 8 input rows while it is in L1.
    /// Past 8 rows the task's weight rows go by once per tile of 8 input rows: the tile stays in
    /// L1 and the task's weights (a few hundred KiB at most) in L2, where taking every input row
    /// per weight row would stream all the inputs through L1 once per feature.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
    pub unsafe fn dot_block(x: &[f32], w: &[f32], rows: usize, inner: usize, yt: &mut [f32]) {
        assert!(x.len() >= rows * inner && yt.len() >= w.len() / inner * rows);
        let mut r = 0;
        while r < rows {
            let tile_rows = (rows - r).min(X_ROWS);
            for f in 0..w.len() / inner {
                let out = &mut yt[f * rows + r..];
                // SAFETY (each arm): rows r..r+XR of `x` and row f of `w` exist (assert, loop).
                match tile_rows {
                    1 => unsafe { tile::<1>(x, w, f, r, inner, out) },
                    2 => unsafe { tile::<2>(x, w, f, r, inner, out) },
                    3 => unsafe { tile::<3>(x, w, f, r, inner, out) },
                    4 => unsafe { tile::<4>(x, w, f, r, inner, out) },
                    5 => unsafe { tile::<5>(x, w, f, r, inner, out) },
                    6 => unsafe { tile::<6>(x, w, f, r, inner, out) },
                    7 => unsafe { tile::<7>(x, w, f, r, inner, out) },
                    _ => unsafe { tile::<X_ROWS>(x, w, f, r, inner, out) },
                }
            }
            r += tile_rows;
        }
    }

    /// `out[j] = dot(w[f], x[r + j])` for `j < XR`.
    ///
    /// # Safety
    /// Row `f` of `w` and rows `r..r+XR` of `x` must exist.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
    #[inline]
    unsafe fn tile<const XR: usize>(
        x: &[f32],
        w: &[f32],
        f: usize,
        r: usize,
        inner: usize,
        out: &mut [f32],
    ) {
        // Two accumulators per row along k, so consecutive FMAs do not wait on each other.
        let mut acc = [[_mm512_setzero_ps(); 2]; XR];
        let w_ptr = unsafe { w.as_ptr().add(f * inner) };
        let x_ptr = unsafe { x.as_ptr().add(r * inner) };
        let mut k = 0;
        while k + 32 <= inner {
            // SAFETY: k + 32 <= inner: every load stays inside its row.
            let wv = unsafe {
                [
                    _mm512_loadu_ps(w_ptr.add(k)),
                    _mm512_loadu_ps(w_ptr.add(k + 16)),
                ]
            };
            for j in 0..XR {
                for u in 0..2 {
                    let xv = unsafe { _mm512_loadu_ps(x_ptr.add(j * inner + k + 16 * u)) };
                    acc[j][u] = _mm512_fmadd_ps(wv[u], xv, acc[j][u]);
                }
            }
            k += 32;
        }
        while k < inner {
            // The last one or two partial vectors: masked loads stay inside the rows.
            let left = (inner - k).min(16);
            let mask = ((1u32 << left) - 1) as __mmask16;
            let wv = unsafe { _mm512_maskz_loadu_ps(mask, w_ptr.add(k)) };
            for j in 0..XR {
                let xv = unsafe { _mm512_maskz_loadu_ps(mask, x_ptr.add(j * inner + k)) };
                acc[j][0] = _mm512_fmadd_ps(wv, xv, acc[j][0]);
            }
            k += left;
        }
        for j in 0..XR {
            out[j] = _mm512_reduce_add_ps(_mm512_add_ps(acc[j][0], acc[j][1]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_values as values;
    use super::*;

    fn reference(
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        rows: usize,
        inner: usize,
    ) -> Vec<f32> {
        let out = w.len() / inner;
        let mut y = vec![0f32; rows * out];
        for r in 0..rows {
            for f in 0..out {
                let dot: f64 = (0..inner)
                    .map(|k| f64::from(x[r * inner + k]) * f64::from(w[f * inner + k]))
                    .sum();
                y[r * out + f] = dot as f32 + bias.map_or(0.0, |b| b[f]);
            }
        }
        y
    }

    #[test]
    fn a_row_gets_the_same_bits_in_a_batch_of_any_size_on_every_path() {
        let (inner, out) = (71, 67);
        let w = values(out * inner, 5);
        for path in KernelPath::supported() {
            super::super::assert_rows_independent(&format!("skinny {path}"), inner, |x, rows| {
                matmul_transposed_on(path, x, &w, None, rows, inner, out)
            });
        }
    }

    #[test]
    fn matches_a_plain_product_on_every_remainder() {
        // Odd sizes exercise every tail: every row count up to a full tile and past it,
        // features not a multiple of a tile or of a task, inner not a multiple of 8 or 16.
        for (rows, inner, out) in [
            (1, 8, 4),
            (2, 40, 9),
            (3, 13, 7),
            (4, 17, 66),
            (5, 64, 130),
            (6, 33, 3),
            (7, 48, 65),
            (8, 100, 67),
            (9, 31, 6),
            (32, 24, 5),
            // Past one tile of rows with a ragged last tile, over several tasks of features.
            (21, 70, 150),
        ] {
            let x = values(rows * inner, 1);
            let w = values(out * inner, 2);
            let bias = values(out, 3);
            for bias in [None, Some(bias.as_slice())] {
                let expected = reference(&x, &w, bias, rows, inner);
                for path in KernelPath::supported() {
                    let ours = matmul_transposed_on(path, &x, &w, bias, rows, inner, out);
                    for (a, b) in ours.iter().zip(&expected) {
                        assert!(
                            (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                            "{path} {rows}x{inner}x{out}: {a} vs {b}"
                        );
                    }
                }
            }
        }
    }
}
