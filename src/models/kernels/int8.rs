//! Int8 weights packed once at load for `x · Wᵀ` with integer dot products (`--quantize q8`),
//! and the product over them.
//!
//! The format is CTranslate2's int8: each output feature's weights share one float32 scale
//! (`max |w| / 127`, values in [-127, 127]), and each input row is quantized the same way when
//! the product runs. The integer sums are exact 32-bit ones on every kernel path
//! ([`int8_tile`](super::int8_tile)), so the paths agree bit for bit and the only error is the
//! rounding of weights and inputs. One scale per feature rather than per block of 32 inputs
//! (GGML's q8_0) lets a dot product run over the whole input width in integers, with one
//! multiply at the end instead of one per 32 inputs.
//!
//! Layout: features in blocks of [`BLOCK`]; in a block, for each group of 4 inputs, the
//! features' 4 bytes side by side, which is what `vpdpbusd` takes (4 byte products summed into
//! each 32-bit lane). The input width is padded with zeros to a multiple of 4, the feature
//! count to a whole block, so every width can be quantized.
//!
//! Every product, a decoder step's few rows or the encoder's thousands, runs the same way: the
//! threads split the blocks and the rows ([`Grid`]); each takes one block
//! of weights, which stays in cache, past its rows a tile of up to 6 at a time. A decoder step
//! therefore streams each weight byte from memory once.

use std::sync::Arc;

use rayon::prelude::*;

use super::grid::Grid;
use super::int8_tile::{self, BLOCK, GROUP, TILE_TOKENS, Tile};
use super::packed::{SharedOut, output_of, written_by};
use super::path::{self, KernelPath};

/// An `(out, in)` float32 weight as int8 with one scale per output feature (see the module
/// header). Cloning shares the values.
#[derive(Debug, Clone)]
pub struct PackedI8 {
    // `Arc<Vec>`: an `Arc<[T]>` made from the vector would copy it (see `PackedF32`).
    blocks: Arc<Vec<i8>>,
    /// Per feature (padding included, zero there): the float32 value of one integer step.
    scales: Arc<Vec<f32>>,
    /// Per feature: the sum of its integer weights, for the `x + 128` correction.
    sums: Arc<Vec<i32>>,
    out: usize,
    inner: usize,
}

impl PackedI8 {
    /// Quantizes the row-major `(out, inner)` float32 matrix `w`.
    pub fn quantize(w: &[f32], out: usize, inner: usize) -> Self {
        assert_eq!(w.len(), out * inner, "quantize: a {out}x{inner} weight");
        let padded = padded_inner(inner);
        let features = out.div_ceil(BLOCK) * BLOCK;
        let mut blocks = vec![0i8; features * padded];
        let mut scales = vec![0f32; features];
        let mut sums = vec![0i32; features];
        blocks
            .par_chunks_mut(BLOCK * padded)
            .zip(scales.par_chunks_mut(BLOCK))
            .zip(sums.par_chunks_mut(BLOCK))
            .enumerate()
            .for_each(|(b, ((block, scales), sums))| {
                let mut row = vec![0i8; inner];
                for j in 0..BLOCK.min(out.saturating_sub(b * BLOCK)) {
                    let f = b * BLOCK + j;
                    scales[j] = quantize_row(&w[f * inner..(f + 1) * inner], &mut row);
                    sums[j] = row.iter().map(|&q| i32::from(q)).sum();
                    for (k, &q) in row.iter().enumerate() {
                        block[k / GROUP * BLOCK * GROUP + j * GROUP + k % GROUP] = q;
                    }
                }
            });
        Self {
            blocks: Arc::new(blocks),
            scales: Arc::new(scales),
            sums: Arc::new(sums),
            out,
            inner,
        }
    }

    pub fn out(&self) -> usize {
        self.out
    }

    /// The float32 matrix the integers stand for (row-major `(out, inner)`).
    #[cfg(test)]
    fn dequantize(&self) -> Vec<f32> {
        let padded = padded_inner(self.inner);
        let mut w = vec![0f32; self.out * self.inner];
        for (f, row) in w.chunks_exact_mut(self.inner).enumerate() {
            let block = &self.blocks[f / BLOCK * BLOCK * padded..];
            for (k, value) in row.iter_mut().enumerate() {
                let q = block[k / GROUP * BLOCK * GROUP + f % BLOCK * GROUP + k % GROUP];
                *value = f32::from(q) * self.scales[f];
            }
        }
        w
    }

    fn block_count(&self) -> usize {
        self.out.div_ceil(BLOCK)
    }

    /// Block `b` of the weights and its features' sums.
    fn block(&self, b: usize) -> (&[i8], &[i32]) {
        let size = BLOCK * padded_inner(self.inner);
        (
            &self.blocks[b * size..(b + 1) * size],
            &self.sums[b * BLOCK..(b + 1) * BLOCK],
        )
    }
}

fn padded_inner(inner: usize) -> usize {
    inner.div_ceil(GROUP) * GROUP
}

/// Rounds `values` to integers in [-127, 127] times the returned scale (`max |v| / 127`; 0
/// for a row of zeros). -128 is never used: the AVX2 path relies on it (see `int8_tile`).
///
/// Written so the compiler vectorises it for the baseline target: `f32::round_ties_even`
/// there is a call to `rintf` per value, which took a third of a q8 encoder's time.
fn quantize_row(values: &[f32], q: &mut [i8]) -> f32 {
    let max = max_abs(values);
    if max == 0.0 {
        q.fill(0);
        return 0.0;
    }
    let inverse = 127.0 / max;
    // Adding 1.5 · 2²³ rounds a float of magnitude below 2²² to an integer (ties to even) in
    // the low bits of its mantissa, which the subtraction reads out.
    const ROUNDER: f32 = 12_582_912.0;
    for (q, v) in q.iter_mut().zip(values) {
        let rounded = (v * inverse + ROUNDER).to_bits() as i32 - ROUNDER.to_bits() as i32;
        *q = rounded.clamp(-127, 127) as i8;
    }
    max / 127.0
}

/// The largest `|v|` in `values`, in 16 independent lanes (which vectorise).
fn max_abs(values: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let chunks = values.chunks_exact(16);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            let a = v.abs();
            *lane = if a > *lane { a } else { *lane };
        }
    }
    rest.iter().chain(&lanes).fold(0f32, |m, v| m.max(v.abs()))
}

/// Input rows quantized for `path`'s kernels: `rows` rows of the padded width, the same in the
/// path's unsigned form, and their scales.
struct QuantizedRows {
    values: Vec<i8>,
    /// [`int8_tile::unsigned_form`] of each value; empty on a path without one.
    unsigned: Vec<u8>,
    scales: Vec<f32>,
}

impl QuantizedRows {
    fn new(path: KernelPath, x: &[f32], rows: usize, inner: usize) -> Self {
        let padded = padded_inner(inner);
        let form = int8_tile::unsigned_form(path);
        let mut values = vec![0i8; rows * padded];
        let mut unsigned = vec![0u8; form.map_or(0, |_| rows * padded)];
        let mut scales = vec![0f32; rows];
        let quantize = |q: &mut [i8], scale: &mut f32, x: &[f32]| {
            *scale = quantize_row(x, &mut q[..inner]);
        };
        let rows_of = values
            .par_chunks_mut(padded)
            .zip(scales.par_iter_mut())
            .zip(x.par_chunks(inner))
            .with_min_len(64);
        // The unsigned form of a row right after it is quantized, while it is in cache.
        match form {
            Some(form) => {
                rows_of
                    .zip(unsigned.par_chunks_mut(padded))
                    .for_each(|(((q, scale), x), u)| {
                        quantize(q, scale, x);
                        form.fill(q, u);
                    })
            }
            None => rows_of.for_each(|((q, scale), x)| quantize(q, scale, x)),
        }
        Self {
            values,
            unsigned,
            scales,
        }
    }
}

/// `x (rows, inner) · Wᵀ (+ bias)`, row-major, on the kernel path in use.
pub fn matmul(x: &[f32], w: &PackedI8, bias: Option<&[f32]>, rows: usize) -> Vec<f32> {
    matmul_on(path::active(), x, w, bias, rows)
}

/// [`matmul`] on a given path, which the CPU must support.
pub(crate) fn matmul_on(
    path: KernelPath,
    x: &[f32],
    w: &PackedI8,
    bias: Option<&[f32]>,
    rows: usize,
) -> Vec<f32> {
    // SAFETY: `product_on` writes every one of the `rows x out` floats, and nothing past them.
    unsafe { written_by(rows * w.out, |y| product_on(path, x, w, bias, rows, y)) }
}

/// [`matmul`] into `y` (`rows x out`, every value overwritten), so that a caller going over a
/// big input in chunks of rows writes each chunk's product in place.
pub fn matmul_into(x: &[f32], w: &PackedI8, bias: Option<&[f32]>, rows: usize, y: &mut [f32]) {
    matmul_into_on(path::active(), x, w, bias, rows, y);
}

fn matmul_into_on(
    path: KernelPath,
    x: &[f32],
    w: &PackedI8,
    bias: Option<&[f32]>,
    rows: usize,
    y: &mut [f32],
) {
    let y = output_of(y, rows, w.out);
    // SAFETY: `y` holds the `rows x out` floats the product writes.
    unsafe { product_on(path, x, w, bias, rows, y) };
}

/// Writes every one of the `rows x out` floats at `y` (never reading them) with the product.
///
/// # Safety
/// `y` must be valid for `rows * w.out` writes, and `path` one the CPU supports.
unsafe fn product_on(
    path: KernelPath,
    x: &[f32],
    w: &PackedI8,
    bias: Option<&[f32]>,
    rows: usize,
    y: *mut f32,
) {
    let (out, inner) = (w.out, w.inner);
    assert_eq!(x.len(), rows * inner, "matmul: {rows} rows of {inner}");
    if let Some(b) = bias {
        assert_eq!(b.len(), out, "matmul: bias of {out}");
    }
    let xq = QuantizedRows::new(path, x, rows, inner);
    let dst = SharedOut(y);
    for_each_tile(path, &xq, w, rows, |block, t0, tokens, acc| {
        let first = block * BLOCK;
        let columns = BLOCK.min(out - first);
        let scales = &w.scales[first..first + columns];
        let bias = bias.map(|b| &b[first..first + columns]);
        for (t, sums) in acc.chunks_exact(BLOCK).take(tokens).enumerate() {
            let row = t0 + t;
            let x_scale = xq.scales[row];
            let y_row = dst.at(row * out + first);
            for (j, (sum, scale)) in sums.iter().zip(scales).enumerate() {
                let value = *sum as f32 * (x_scale * scale);
                let value = bias.map_or(value, |b| value + b[j]);
                // SAFETY: each (block, row) pair is visited by exactly one task, and these are
                // its columns of `y` (inside the matrix: j < columns, first + columns <= out,
                // row < rows). Written, never read: `y` may be uninitialised.
                unsafe { y_row.add(j).write(value) };
            }
        }
    });
}

/// Runs every tile of the product of the quantized rows `xq` (made for `path`) with `w` in
/// parallel, calling `done(block, first_row, rows_of_the_tile, sums)` with each tile's exact sums.
fn for_each_tile(
    path: KernelPath,
    xq: &QuantizedRows,
    w: &PackedI8,
    rows: usize,
    done: impl Fn(usize, usize, usize, &[i32; TILE_TOKENS * BLOCK]) + Sync,
) {
    let padded = padded_inner(w.inner);
    let grid = Grid::new(rows, w.block_count());
    (0..grid.tasks()).into_par_iter().for_each(|task| {
        let (row_range, block_range) = grid.task(task);
        let mut acc = [0i32; TILE_TOKENS * BLOCK];
        for b in block_range {
            let (block, sums) = w.block(b);
            for t0 in row_range.clone().step_by(TILE_TOKENS) {
                let tokens = TILE_TOKENS.min(row_range.end - t0);
                let rows_of_tile = t0 * padded..(t0 + tokens) * padded;
                let tile = Tile {
                    w: block,
                    x: &xq.values[rows_of_tile.clone()],
                    x_unsigned: xq.unsigned.get(rows_of_tile).unwrap_or_default(),
                    inner: padded,
                    tokens,
                    sums,
                    first: t0 == row_range.start,
                };
                // SAFETY: the caller's path is one the CPU supports.
                unsafe { int8_tile::dots(path, &tile, &mut acc) };
                done(b, t0, tokens, &acc);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::super::test_values as values;
    use super::*;

    /// Every tile's sums of `x · Wᵀ` in integers, row-major `(rows, out)`.
    fn integer_product(
        path: KernelPath,
        xq: &QuantizedRows,
        w: &PackedI8,
        rows: usize,
    ) -> Vec<i64> {
        let out = w.out;
        let y = Mutex::new(vec![0i64; rows * out]);
        for_each_tile(path, xq, w, rows, |block, t0, tokens, acc| {
            let mut y = y.lock().unwrap();
            for t in 0..tokens {
                for j in 0..BLOCK.min(out - block * BLOCK) {
                    y[(t0 + t) * out + block * BLOCK + j] = i64::from(acc[t * BLOCK + j]);
                }
            }
        });
        y.into_inner().unwrap()
    }

    /// The integer weights of feature `f`, input `k`, read back from the packed layout.
    fn weight(w: &PackedI8, f: usize, k: usize) -> i64 {
        let padded = padded_inner(w.inner);
        let at = f / BLOCK * BLOCK * padded + k / GROUP * BLOCK * GROUP + f % BLOCK * GROUP;
        i64::from(w.blocks[at + k % GROUP])
    }

    /// Odd shapes: inputs not a multiple of 4, features not a whole block, rows not a whole
    /// tile, and more rows than one task's chunk.
    const SHAPES: [(usize, usize, usize); 6] = [
        (1, 4, 1),
        (3, 13, 50),
        (7, 301, 97),
        (13, 64, 64),
        (8, 1030, 130),
        (300, 24, 5),
    ];

    #[test]
    fn every_path_gives_the_exact_integer_sums() {
        for (rows, inner, out) in SHAPES {
            let w = PackedI8::quantize(&values(out * inner, 2), out, inner);
            let x = values(rows * inner, 1);
            let xq = QuantizedRows::new(KernelPath::Portable, &x, rows, inner);
            let padded = padded_inner(inner);
            let want: Vec<i64> = (0..rows * out)
                .map(|i| {
                    let (r, f) = (i / out, i % out);
                    (0..inner)
                        .map(|k| i64::from(xq.values[r * padded + k]) * weight(&w, f, k))
                        .sum()
                })
                .collect();
            for path in KernelPath::supported() {
                let got =
                    integer_product(path, &QuantizedRows::new(path, &x, rows, inner), &w, rows);
                assert!(
                    got == want,
                    "{path} {rows}x{inner}x{out}: integer sums differ"
                );
            }
        }
    }

    #[test]
    fn extreme_values_do_not_saturate_on_any_path() {
        // Every product ±127·127 with the same sign: the pairs `vpmaddubsw` adds reach 32258,
        // which `x + 128` would push past 16 bits; 2048 inputs sum to 33 million.
        let (rows, inner, out) = (2, 2048, 64);
        let w = PackedI8::quantize(&vec![-1.0; out * inner], out, inner);
        for sign in [1.0, -1.0] {
            let x = vec![sign; rows * inner];
            let want = (-sign as i64) * 127 * 127 * inner as i64;
            for path in KernelPath::supported() {
                let got =
                    integer_product(path, &QuantizedRows::new(path, &x, rows, inner), &w, rows);
                assert!(
                    got.iter().all(|&s| s == want),
                    "{path}: {:?} vs {want}",
                    &got[..4]
                );
            }
        }
    }

    #[test]
    fn a_row_gets_the_same_bits_in_a_batch_of_any_size_on_every_path() {
        let (inner, out) = (70, 130);
        let (w, bias) = (values(out * inner, 5), values(out, 6));
        let packed = PackedI8::quantize(&w, out, inner);
        for path in KernelPath::supported() {
            super::super::assert_rows_independent(&format!("int8 {path}"), inner, |x, rows| {
                matmul_on(path, x, &packed, Some(&bias), rows)
            });
        }
    }

    #[test]
    fn the_product_is_the_dequantized_product_plus_bias() {
        for (rows, inner, out) in SHAPES {
            let x = values(rows * inner, 1);
            let w = values(out * inner, 2);
            let bias = values(out, 3);
            let packed = PackedI8::quantize(&w, out, inner);
            let dequantized = packed.dequantize();
            // Each weight within half a step of its scale of the original.
            for (f, (row, original)) in dequantized
                .chunks_exact(inner)
                .zip(w.chunks_exact(inner))
                .enumerate()
            {
                for (a, b) in row.iter().zip(original) {
                    assert!((a - b).abs() <= 0.5 * packed.scales[f] * 1.0001);
                }
            }
            let xq = QuantizedRows::new(KernelPath::Portable, &x, rows, inner);
            let padded = padded_inner(inner);
            for bias in [None, Some(bias.as_slice())] {
                let want: Vec<f64> = (0..rows * out)
                    .map(|i| {
                        let (r, f) = (i / out, i % out);
                        let dot: f64 = (0..inner)
                            .map(|k| {
                                let xv =
                                    f64::from(xq.values[r * padded + k]) * f64::from(xq.scales[r]);
                                xv * f64::from(dequantized[f * inner + k])
                            })
                            .sum();
                        dot + bias.map_or(0.0, |b| f64::from(b[f]))
                    })
                    .collect();
                for path in KernelPath::supported() {
                    let got = matmul_on(path, &x, &packed, bias, rows);
                    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                        let g = f64::from(*g);
                        assert!(
                            (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                            "{path} {rows}x{inner}x{out} [{i}]: {g} vs {w}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_product_overwrites_whatever_its_output_held() {
        // `matmul` hands the product an unfilled buffer. 70 rows are more than one task's
        // tile of tokens, 130 features more than one block.
        let (inner, out) = (70, 130);
        let packed = PackedI8::quantize(&values(out * inner, 7), out, inner);
        super::super::assert_overwrites_its_output(
            (inner, out),
            &[3, 70],
            |path, x, bias, rows| matmul_on(path, x, &packed, bias, rows),
            |path, x, bias, rows, y| matmul_into_on(path, x, &packed, bias, rows, y),
        );
    }

    #[test]
    fn zero_rows_and_zero_weights_give_zeros() {
        let w = PackedI8::quantize(&[0.0; 12], 3, 4);
        let y = matmul(
            &[1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0],
            &w,
            Some(&[1.0, 2.0, 3.0]),
            2,
        );
        assert_eq!(y, [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
        assert!(matmul(&[], &w, None, 0).is_empty());
    }
}
